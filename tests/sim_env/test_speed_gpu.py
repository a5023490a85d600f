"""Optimised runtime paths give the reference outputs on fixed inputs (CUDA only).

The speed work (issue 7) swaps the masked SDPA over the ST-cache for the padded mask-free form
(`STCache(padded_attention=True)`, the CUDA default) and runs the world in bfloat16. These checks
pin that down on fixed inputs:

- a cached DiT forward at the Wan width (2 layers of wan2.1-1.3b's blocks, bfloat16) through the
  padded mirror and through the zero-key mirror (cuDNN with the log-sum-exp correction, the
  CUDA default for wan2.1-1.3b) vs. the masked reference, with a third of the history slots empty: PSNR bound;
- `GenerativeRuntime` steps with the padded path vs. the reference path (float32, eager), for the
  pixel path (tiny64) and the latent chunk path (tiny-latent-test): same frames within rounding;
- FP8 dense layers (`sim_env.model.fp8`) at the Wan width, eager and compiled, against bf16;
- the compiled zero-key mirror refresh and the compiled TAEHV codec against their eager forms.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.conditioning import PoolAdmission
from sim_env.latent_chunk import LatentCodec
from sim_env.memory.pool_policy import MemoryPoolPolicy
from sim_env.model.config import CONFIGS
from sim_env.model.dit import CausalDiT
from sim_env.model.fp8 import quantize_rows, to_fp8_linears
from sim_env.model.fp8_kernel import gelu_tanh, quantize_rows_fast
from sim_env.model.st_cache import STCache
from sim_env.runtime import GenerativeRuntime
from sim_env.runtime_speed import SpeedOptions

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

NUM_WORLDS = 2
STEPS = 3
MIN_PSNR_DB = 40.0  # bfloat16 kernels differ in rounding only; a wrong mask gives < 20 dB
RGB_ATOL = 2
DEPTH_RTOL = 1e-3


def _psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    ref = reference.float()
    mse = (test.float() - ref).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10((ref.max() - ref.min()).item() ** 2 / mse)


@pytest.mark.parametrize("mirror", ["padded_attention", "zero_key_attention"])
def test_fast_attention_matches_masked_at_wan_width(mirror: str) -> None:
    cfg = dataclasses.replace(CONFIGS["wan2.1-1.3b"], num_layers=2, height=20, width=32, context_len=16)
    torch.manual_seed(0)
    model = CausalDiT(cfg).to("cuda", torch.bfloat16).eval()
    gen = torch.Generator(device="cuda").manual_seed(1)
    mirror_kw: dict[str, bool] = {mirror: True}
    caches = [STCache(cfg, 1, "cuda", torch.bfloat16), STCache(cfg, 1, "cuda", torch.bfloat16, **mirror_kw)]
    keys = torch.randn(caches[0].keys.shape, device="cuda", generator=gen).to(torch.bfloat16)
    values = torch.randn(caches[0].values.shape, device="cuda", generator=gen).to(torch.bfloat16)
    for cache in caches:
        cache.keys.copy_(keys)
        cache.values.copy_(values)
        cache.valid[:, : cache.memory.stop] = True  # anchor + memory hold data, the window is empty
        cache.refresh_attention()
    x = torch.randn(
        1, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width, device="cuda", generator=gen
    )
    cond = torch.randn(1, cfg.condition_channels, *x.shape[2:], device="cuda", generator=gen)
    plucker = torch.randn(1, cfg.chunk_frames, *cfg.grid, 6, device="cuda", generator=gen)
    context = torch.randn(1, cfg.context_len, cfg.text_dim, device="cuda", generator=gen)
    t = torch.full((1, cfg.chunk_frames), 700.0, device="cuda")
    with torch.no_grad():
        reference, fast = (
            model(x.bfloat16(), t, cond, plucker, cache, context.bfloat16()) for cache in caches
        )
    assert torch.isfinite(fast).all()
    assert _psnr(fast, reference) > MIN_PSNR_DB


def _runtime(config: str, padded: bool, **kw: bool) -> GenerativeRuntime:
    speed = SpeedOptions(padded_attention=padded, **kw)
    runtime = GenerativeRuntime(
        config=config, device="cuda", num_worlds=NUM_WORLDS, denoising_steps=2, speed=speed
    )
    h, w = runtime.height, runtime.width
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (NUM_WORLDS, h, w, 3), dtype=torch.uint8, generator=gen)
    depth = 4.0 + torch.rand(NUM_WORLDS, h, w, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, 70.0)).expand(NUM_WORLDS, 3, 3)
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2])).expand(NUM_WORLDS, 4, 4)
    runtime.reset_batch(rgb, depth, K, pose, seed=3)
    return runtime


def _assert_same_frames(reference: GenerativeRuntime, test: GenerativeRuntime) -> None:
    """Step both runtimes with the same actions: the same poses, and frames within rounding."""
    gen = torch.Generator().manual_seed(2)
    for _ in range(STEPS):
        nav = (0.5 * torch.rand(NUM_WORLDS, 6, generator=gen, dtype=torch.float64) - 0.25).cuda()
        expected = {k: v.clone() for k, v in reference.step_batch(nav).items()}
        got = test.step_batch(nav)
        torch.testing.assert_close(got["pose"], expected["pose"], rtol=0, atol=1e-9)
        torch.testing.assert_close(got["rgb"].int(), expected["rgb"].int(), rtol=0, atol=RGB_ATOL)
        torch.testing.assert_close(got["depth"], expected["depth"], rtol=DEPTH_RTOL, atol=1e-4)


@pytest.mark.parametrize("config", ["tiny64", "tiny-latent-test"])
def test_padded_runtime_matches_reference_runtime(config: str) -> None:
    reference, fast = _runtime(config, padded=False), _runtime(config, padded=True)
    assert fast.cache.attn_keys is not None and reference.cache.attn_keys is None
    _assert_same_frames(reference, fast)


def test_compiled_blocks_match_eager_runtime() -> None:
    """`compile_blocks=True` (one torch.compile graph for every block) gives the eager frames."""
    eager = _runtime("tiny-latent-test", padded=False)
    _assert_same_frames(eager, _runtime("tiny-latent-test", padded=False, compile_blocks=True))


FP8_MIN_PSNR_DB = 30.0  # e4m3 row-wise products through two Wan-width blocks; a wrong scale gives < 10 dB


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9),
    reason="needs FP8 tensor cores",
)
def test_fp8_linears_match_bf16_at_wan_width_eager_and_compiled() -> None:
    """FP8 blocks (`to_fp8_linears`) against the bf16 blocks on fixed inputs, eager and compiled."""
    cfg = dataclasses.replace(CONFIGS["wan2.1-1.3b"], num_layers=2, height=20, width=32)
    torch.manual_seed(0)
    bf16 = CausalDiT(cfg).to("cuda", torch.bfloat16).eval()
    fp8 = copy.deepcopy(bf16)
    assert to_fp8_linears(fp8.blocks) == cfg.num_layers * 10
    gen = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(
        1, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width, device="cuda", generator=gen
    )
    cond = torch.randn(1, cfg.condition_channels, *x.shape[2:], device="cuda", generator=gen)
    plucker = torch.randn(1, cfg.chunk_frames, *cfg.grid, 6, device="cuda", generator=gen)
    context = torch.zeros(1, 1, cfg.text_dim, device="cuda", dtype=torch.bfloat16)
    t = torch.full((1, cfg.chunk_frames), 700.0, device="cuda")

    def run(model: CausalDiT) -> torch.Tensor:
        cache = STCache(cfg, 1, "cuda", torch.bfloat16, zero_key_attention=True)
        with torch.no_grad():
            return model(x.bfloat16(), t, cond, plucker, cache, context)

    reference, eager = run(bf16), run(fp8)
    for block in fp8.blocks:
        block.compile(dynamic=False)
    compiled = run(fp8)
    psnr = _psnr(eager, reference)
    print(f"FP8 vs bf16 at Wan width: {psnr:.1f} dB; compiled vs eager FP8 {_psnr(compiled, eager):.1f} dB")
    assert psnr > FP8_MIN_PSNR_DB
    assert _psnr(compiled, reference) > FP8_MIN_PSNR_DB
    # The one-pass Triton quantisation (GELU folded into the FFN's second layer), compiled.
    kernel = copy.deepcopy(bf16)
    to_fp8_linears(kernel.blocks, row_kernel=True)
    for block in kernel.blocks:
        block.compile(dynamic=False)
    row_kernel = run(kernel)
    print(f"row kernel vs PyTorch quantisation: {_psnr(row_kernel, eager):.1f} dB")
    assert _psnr(row_kernel, reference) > FP8_MIN_PSNR_DB


def test_compiled_zero_key_mirror_matches_eager() -> None:
    """`STCache(compile_mirror=True)` writes the eager zero-key mirror (Wan width, 2 layers)."""
    cfg = dataclasses.replace(CONFIGS["wan2.1-1.3b"], num_layers=2, height=20, width=32)
    caches = [
        STCache(cfg, 2, "cuda", torch.bfloat16, zero_key_attention=True, compile_mirror=compiled)
        for compiled in (False, True)
    ]
    gen = torch.Generator(device="cuda").manual_seed(4)
    keys = torch.randn(caches[0].keys.shape, device="cuda", generator=gen).to(torch.bfloat16)
    for cache in caches:
        cache.keys.copy_(keys)
        cache.values.copy_(keys.flip(-1))
        cache.valid[0, : cache.chunk.start] = True  # world 0 full, world 1 only its anchor
        cache.valid[1, : cache.memory.start] = True
        cache.refresh_attention()
    eager, compiled = caches
    torch.testing.assert_close(compiled.attn_keys, eager.attn_keys, rtol=1e-2, atol=1e-2)
    assert torch.equal(compiled.attn_values, eager.attn_values)
    assert torch.equal(compiled.invalid_keys, eager.invalid_keys)


def test_compiled_codec_matches_eager() -> None:
    """`LatentCodec(compile_codec=True)` encodes and decodes like the eager TAEHV (bf16)."""
    cfg = CONFIGS["tiny-latent-test"]
    codecs = [
        LatentCodec(cfg, 2, torch.device("cuda"), torch.bfloat16, compile_codec=compiled)
        for compiled in (False, True)
    ]
    gen = torch.Generator(device="cuda").manual_seed(5)
    frames = (cfg.chunk_frames * codecs[0].frames_per_latent, cfg.image_height, cfg.image_width)
    rgb = torch.randint(0, 256, (2, *frames, 3), device="cuda", generator=gen, dtype=torch.uint8)
    mask = torch.rand(2, *frames, device="cuda", generator=gen) > 0.2
    latents = [codec.encode(rgb, mask) for codec in codecs]
    torch.testing.assert_close(latents[1], latents[0], rtol=2e-2, atol=2e-2)
    for _ in range(2):  # the streaming state advances identically
        decoded = [codec.decode(latents[0]) for codec in codecs]
        assert (decoded[1].int() - decoded[0].int()).abs().max() <= RGB_ATOL


def test_decode_overlapped_with_the_cache_pass_gives_the_serial_frames() -> None:
    """`overlap_decode=True` (decode + memory insert on a side stream) changes no frame."""
    serial = _runtime("tiny-latent-test", padded=False, overlap_decode=False)
    overlapped = _runtime("tiny-latent-test", padded=False, overlap_decode=True)
    assert overlapped._side_stream is not None and serial._side_stream is None
    _assert_same_frames(serial, overlapped)
    torch.testing.assert_close(overlapped.memory.rgb, serial.memory.rgb, rtol=0, atol=RGB_ATOL)
    # The cache roll ran on the side stream beside the conditioning: the caches agree too.
    assert overlapped._roll.pending
    for runtime in (serial, overlapped):
        runtime.flush_cache_roll()
    for name in ("keys", "values", "valid", "poses"):
        torch.testing.assert_close(
            getattr(overlapped.cache, name), getattr(serial.cache, name), rtol=0, atol=0
        )


@pytest.mark.parametrize("width", [1536, 8960])
@pytest.mark.parametrize("gelu", [False, True])
def test_fp8_row_kernel_matches_the_reference_quantisation(width: int, gelu: bool) -> None:
    """The one-pass Triton kernel gives the PyTorch reference's scales and e4m3 rows (GELU folded or not)."""
    gen = torch.Generator(device="cuda").manual_seed(7)
    x = (3 * torch.randn(4680, width, device="cuda", generator=gen)).to(torch.bfloat16)
    x[0] = 0  # an all-zero row stays zero
    rows, scale = quantize_rows_fast(x, gelu=gelu)
    ref_rows, ref_scale = quantize_rows(gelu_tanh(x.float()) if gelu else x)
    torch.testing.assert_close(scale, ref_scale, rtol=1e-5, atol=0)
    # Triton's float32 division and the kernel's GELU (x·sigmoid(2u)) may round apart from
    # torch's by an ulp, which can move a value to the neighbouring e4m3 step: allow one step
    # (2⁻³ of the value's binade, 2⁻⁹ among the subnormals below 2⁻⁶), on a tiny share of entries.
    got, want = rows.float(), ref_rows.float()
    e4m3_step = torch.exp2(torch.floor(torch.log2(want.abs().clamp_min(2.0**-6))) - 3)
    assert ((got - want).abs() <= e4m3_step).all()
    assert (got != want).float().mean() < 1e-3
    assert not rows[0].float().any()


def test_compiled_pool_admission_matches_eager() -> None:
    """`PoolAdmission(compile_policy=True)` picks the eager slots, pool filling up and full."""
    cfg = dataclasses.replace(CONFIGS["wan2.1-1.3b"], num_layers=1, height=4, width=4)
    cache = STCache(cfg, 8, "cuda", torch.bfloat16)
    gen = torch.Generator(device="cuda").manual_seed(6)
    eager, compiled = (
        PoolAdmission(MemoryPoolPolicy(cfg.memory_frames), compile_policy=c) for c in (False, True)
    )
    memory = slice(cache.memory.start, cache.memory.stop)
    for step in range(12):
        pose = torch.eye(4, device="cuda").repeat(8, 1, 1)
        pose[:, :3, :3] = torch.linalg.qr(torch.randn(8, 3, 3, device="cuda", generator=gen)).Q
        pose[:, :3, 3] = torch.rand(8, 3, device="cuda", generator=gen)
        k = cache.keys[:, :, :1]
        index = eager(k, k, pose, cache)
        assert torch.equal(compiled(k, k, pose, cache), index), step
        cache.write_memory(index, cache.frame_keys()[:, :, 0], cache.frame_values()[:, :, 0], pose)
    assert cache.valid[:, memory].all()  # the pool filled up, so pruning was exercised
