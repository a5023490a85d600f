"""The padded ST-cache attention mirror gives the masked reference attention's outputs.

`STCache(padded_attention=True)` keeps pre-rotated keys with a validity channel so cached
attention runs without a mask (FlashAttention / cuDNN on a GPU). These CPU checks drive a
reference cache and a padded one through the same reset / chunk / roll / memory / per-world-reset
sequence, with slots still empty and slots switched off, and compare every forward's output;
then two runtimes (reference / padded) through steps, a teleport and a per-world reset.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.model.config import CONFIGS
from sim_env.model.dit import CausalDiT
from sim_env.model.st_cache import DROP, MASK_CHANNELS, STCache
from sim_env.runtime import GenerativeRuntime
from sim_env.runtime_speed import SpeedOptions

# tiny16-test with a memory pool and two heads: small enough for a CPU, every region present.
CONFIG = dataclasses.replace(CONFIGS["tiny16-test"], memory_frames=2, window_frames=2, chunk_frames=1)
BATCH = 2
ATOL = 1e-5  # float32: only the order of the softmax sums differs


def _inputs(gen: torch.Generator) -> dict[str, torch.Tensor]:
    cfg = CONFIG
    h, w = cfg.grid
    return {
        "x": torch.randn(BATCH, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width, generator=gen),
        "t": torch.rand(BATCH, cfg.chunk_frames, generator=gen) * 1000,
        "cond": torch.randn(
            BATCH, cfg.condition_channels, cfg.chunk_frames, cfg.height, cfg.width, generator=gen
        ),
        "plucker": torch.randn(BATCH, cfg.chunk_frames, h, w, 6, generator=gen),
    }


def _admit_first_slot(
    slot_k: torch.Tensor, slot_v: torch.Tensor, pose: torch.Tensor, cache: STCache
) -> torch.Tensor:
    """World 0 keeps leaving frames in memory slot 0, world 1 drops them (so slots stay empty)."""
    return torch.tensor([0, DROP])


@pytest.mark.parametrize("mirror", ["padded_attention", "zero_key_attention"])
def test_fast_cache_attention_matches_masked_reference(mirror: str) -> None:
    torch.manual_seed(0)
    model = CausalDiT(CONFIG).eval()
    reference, padded = STCache(CONFIG, BATCH), STCache(CONFIG, BATCH, **{mirror: True})
    assert padded.attn_keys is not None
    extra = MASK_CHANNELS if mirror == "padded_attention" else 0
    assert padded.attn_keys.shape[-1] == CONFIG.head_dim + extra
    gen = torch.Generator().manual_seed(1)
    pose = torch.eye(4).expand(BATCH, CONFIG.chunk_frames, 4, 4)
    with torch.no_grad():
        for step in range(7):
            if step == 5:  # world 1 starts over: its history becomes invalid again
                for cache in (reference, padded):
                    cache.reset(torch.tensor([False, True]))
            if step == 6:  # a memory policy may switch a slot off
                for cache in (reference, padded):
                    cache.active[0, cache.memory.start] = False
                padded.refresh_attention()
            inputs = _inputs(gen)
            outs = [model(**inputs, cache=cache) for cache in (reference, padded)]
            torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=ATOL)
            for cache in (reference, padded):
                model(inputs["x"], torch.zeros_like(inputs["t"]), None, inputs["plucker"], cache)
                if step == 0:
                    cache.commit_anchor(pose[:, : CONFIG.anchor_frames])
                else:
                    cache.advance(pose, _admit_first_slot)
    assert torch.equal(padded.keys, reference.keys) and torch.equal(padded.valid, reference.valid)


def test_padded_mirror_marks_invalid_slots() -> None:
    cache = STCache(CONFIG, BATCH, padded_attention=True)
    assert cache.attn_keys is not None
    d, tpf = CONFIG.head_dim, CONFIG.tokens_per_frame
    score = cache.attn_keys[0, :, :, 0, d].unflatten(1, (cache.num_slots, tpf))  # (B, slots, tokens)
    assert torch.all(score[:, cache.chunk.start :] == 0)  # the chunk is always attended
    assert torch.all(score[:, : cache.chunk.start] < -1e4)  # nothing in the history yet
    assert torch.all(cache.attn_keys[..., d + 1 :] == 0) and torch.all(cache.attn_values[..., d:] == 0)


def _runtime(padded: bool) -> GenerativeRuntime:
    runtime = GenerativeRuntime(
        config="tiny16-test",
        num_worlds=BATCH,
        denoising_steps=1,
        seed=4,
        speed=SpeedOptions(padded_attention=padded),
    )
    h, w = runtime.height, runtime.width
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (BATCH, h, w, 3), dtype=torch.uint8, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, 70.0)).expand(BATCH, 3, 3)
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2])).expand(BATCH, 4, 4)
    runtime.reset_batch(rgb, 4.0 + torch.rand(BATCH, h, w, generator=gen), K, pose, seed=5)
    return runtime


def test_runtime_with_padded_cache_matches_reference_through_teleport_and_reset() -> None:
    reference, padded = _runtime(False), _runtime(True)
    assert reference.cache.attn_keys is None and padded.cache.attn_keys is not None
    gen = torch.Generator().manual_seed(6)
    only_first = torch.tensor([True, False])
    for step in range(6):
        nav = 0.5 * torch.rand(BATCH, 6, generator=gen, dtype=torch.float64) - 0.25
        outs = []
        for runtime in (reference, padded):
            if step == 2:
                target = runtime.pose.clone()
                target[:, 0, 3] += 0.2
                runtime.teleport_batch(target, only_first)
            if step == 4:
                runtime.reset_batch(
                    runtime.rgb.clone(),
                    runtime.depth.clone(),
                    runtime.K,
                    runtime.pose,
                    world_mask=~only_first,
                )
            outs.append({k: v.clone() for k, v in runtime.step_batch(nav).items()})
        torch.testing.assert_close(outs[1]["pose"], outs[0]["pose"], rtol=0, atol=1e-12)
        assert (outs[1]["rgb"].int() - outs[0]["rgb"].int()).abs().max() <= 1
        torch.testing.assert_close(outs[1]["depth"], outs[0]["depth"], rtol=1e-4, atol=1e-5)


def test_zero_key_mirror_zeroes_unattended_slots_and_counts_them() -> None:
    cache = STCache(CONFIG, BATCH, zero_key_attention=True)
    assert cache.attn_keys is not None and cache.attn_values is not None and cache.invalid_keys is not None
    tpf = CONFIG.tokens_per_frame
    cache.keys.normal_()
    cache.values.normal_()
    cache.valid[0, : cache.chunk.start] = True  # world 0: every slot filled; world 1: only the chunk
    cache.active[0, cache.memory.start] = False  # ... but one memory slot switched off
    cache.refresh_attention()
    assert cache.invalid_keys.tolist() == [tpf, cache.chunk.start * tpf]
    off = slice(cache.memory.start * tpf, (cache.memory.start + 1) * tpf)
    assert not cache.attn_keys[:, 0, off].any() and not cache.attn_values[:, 0, off].any()
    assert cache.attn_values[:, 0, : cache.memory.start * tpf].abs().sum() > 0  # the anchor is mirrored
    chunk = slice(cache.chunk.start * tpf, None)
    assert not cache.attn_values[:, :, chunk].any()  # the chunk's mirror is written by each pass ...
    k, v = cache.keys[0, :, chunk].clone(), cache.values[0, :, chunk].clone()
    cache.write_chunk(0, k, v)
    torch.testing.assert_close(cache.attn_values[0, :, chunk], v)  # ... through write_chunk
    with pytest.raises(ValueError, match="one of"):
        STCache(CONFIG, BATCH, padded_attention=True, zero_key_attention=True)
