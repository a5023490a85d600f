"""One DiT pass in bf16, in FP8 with PyTorch's activation quantisation, and with the Triton kernel.

The speed table times the runtime's own FP8 form against bf16; this isolates what the one-pass
row kernel (`sim_env.model.fp8_kernel`) adds over Inductor's fused quantisation, on identical
weights, inputs and a full zero-key cache:

    python -m sim_env.perf.fp8_forms --config wan2.1-1.3b --compile-blocks

Prints ms per pass (median after warm-up) and each FP8 form's PSNR against bf16. Forms the
machine cannot run (the row kernel without Triton and CUDA) are left out.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from sim_env.bench_speed import graph_replay_ms
from sim_env.model.config import get_config
from sim_env.model.dit import CausalDiT
from sim_env.model.fp8 import fp8_supported, to_fp8_linears
from sim_env.model.fp8_kernel import triton_available
from sim_env.model.st_cache import STCache

FORMS = ("bf16", "fp8 PyTorch quantisation", "fp8 row kernel")


def _psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    mse = (test.float() - reference.float()).pow(2).mean().item()
    peak = (reference.max() - reference.min()).item()
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def compare_fp8_forms(
    config: str,
    device: torch.device,
    num_layers: int | None = None,
    compile_blocks: bool = False,
    warmup: int = 3,
    repeats: int = 15,
) -> dict[str, dict[str, float]]:
    """{form: {"ms": median ms per pass, "psnr_db": against bf16}} for the forms this machine runs."""
    cfg = get_config(config)
    if num_layers is not None:
        cfg = dataclasses.replace(cfg, num_layers=num_layers)
    dtype = torch.bfloat16
    torch.manual_seed(0)
    base = CausalDiT(cfg).to(device, dtype).eval()
    if device.type == "cuda":
        for block in base.blocks:
            block.self_attn.fuse_projections()
    gen = torch.Generator(device=device).manual_seed(1)
    grid = (cfg.chunk_frames, cfg.height, cfg.width)
    x = torch.randn(1, cfg.out_channels, *grid, device=device, generator=gen).to(dtype)
    cond = torch.randn(1, cfg.condition_channels, *grid, device=device, generator=gen)
    plucker = torch.randn(1, cfg.chunk_frames, *cfg.grid, 6, device=device, generator=gen)
    context = None if cfg.learned_context else torch.zeros(1, 1, cfg.text_dim, device=device, dtype=dtype)
    t = torch.full((1, cfg.chunk_frames), 500.0, device=device)
    zero_key = device.type == "cuda"
    cache = STCache(cfg, 1, device, dtype, zero_key_attention=zero_key)
    cache.keys.normal_(generator=gen)
    cache.values.normal_(generator=gen)
    cache.valid[:] = True
    cache.refresh_attention()
    forms = ["bf16"]
    if fp8_supported(device):
        forms.append("fp8 PyTorch quantisation")
        if device.type == "cuda" and triton_available():
            forms.append("fp8 row kernel")
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, torch.Tensor] = {}
    for form in forms:
        model = base if form == "bf16" else copy.deepcopy(base)
        if form != "bf16":
            to_fp8_linears(model.blocks, row_kernel=form == "fp8 row kernel")
        if compile_blocks:
            for block in model.blocks:
                block.compile(dynamic=False)
        outputs[form], results[form] = _time_pass(
            lambda m=model: m(x, t, cond, plucker, cache, context), device, warmup, repeats
        )
    for form in forms:
        results[form]["psnr_db"] = _psnr(outputs[form], outputs["bf16"])
    return results


def _time_pass(
    run: Callable[[], torch.Tensor], device: torch.device, warmup: int, repeats: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """(output, {"ms": median}) of ``run()``: graph replays on a GPU, wall clock elsewhere.

    CUDA-graph replays as in the speed table's DiT-pass rows, so launch overhead is not counted.
    """
    with torch.no_grad():
        for _ in range(warmup):
            out = run()
        if device.type == "cuda":
            return out.float(), {"ms": graph_replay_ms(run, repeats)}
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            run()
            times.append(1e3 * (time.perf_counter() - began))
    return out.float(), {"ms": statistics.median(times)}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(prog="python -m sim_env.perf.fp8_forms", description=__doc__)
    parser.add_argument("--config", default="wan2.1-1.3b")
    parser.add_argument("--layers", type=int, default=None, help="DiT blocks (default: the config's)")
    parser.add_argument("--compile-blocks", action="store_true")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    results = compare_fp8_forms(
        args.config, torch.device(args.device), args.layers, args.compile_blocks, repeats=args.repeats
    )
    bf16_ms = results["bf16"]["ms"]
    print(f"| {args.config} one DiT pass | ms | speed-up vs bf16 | PSNR vs bf16 dB |")
    print("|---|---:|---:|---:|")
    for form, r in results.items():
        psnr = "—" if form == "bf16" else f"{r['psnr_db']:.1f}"
        print(f"| {form} | {r['ms']:.2f} | {bf16_ms / r['ms']:.3f}× | {psnr} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
