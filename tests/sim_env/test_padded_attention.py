"""The padded ST-cache attention mirror gives the masked reference attention's outputs.

`STCache(padded_attention=True)` keeps pre-rotated keys with a validity channel so cached
attention runs without a mask (FlashAttention / cuDNN on a GPU). These CPU checks drive a
reference cache and a padded one through the same reset / chunk / roll / memory / per-world-reset
sequence, with slots still empty and slots switched off, and compare every forward's output.
"""

from __future__ import annotations

import dataclasses

import torch

from sim_env.model.config import CONFIGS
from sim_env.model.dit import CausalDiT
from sim_env.model.st_cache import DROP, MASK_CHANNELS, STCache

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


def test_padded_cache_attention_matches_masked_reference() -> None:
    torch.manual_seed(0)
    model = CausalDiT(CONFIG).eval()
    reference, padded = STCache(CONFIG, BATCH), STCache(CONFIG, BATCH, padded_attention=True)
    assert padded.attn_keys is not None
    assert padded.attn_keys.shape[-1] == CONFIG.head_dim + MASK_CHANNELS
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
