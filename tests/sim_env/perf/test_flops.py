"""The analytic DiT FLOP count against torch's operator-level FlopCounterMode."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from sim_env.model.config import get_config
from sim_env.model.dit import CausalDiT
from sim_env.model.st_cache import STCache
from sim_env.perf.ceiling import matmul_ceiling_tflops
from sim_env.perf.flops import dit_forward_flops, step_flops

# The math SDPA backend decomposes attention into counted matrix products (the fused CPU
# kernels are invisible to FlopCounterMode). Not counted analytically: the timestep MLP and
# modulation projections (per frame, not per token) — a fraction of a percent.
RTOL = 0.02


def _config(chunk_frames: int):
    return dataclasses.replace(get_config("tiny64"), chunk_frames=chunk_frames, anchor_frames=1)


def _count_cached_forward(
    cfg, batch: int, context_tokens: int | None = None, cache_only: bool = False
) -> int:
    model = CausalDiT(cfg).eval()
    cache = STCache(cfg, batch)
    x = torch.randn(batch, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width)
    cond = torch.zeros(batch, cfg.condition_channels, cfg.chunk_frames, cfg.height, cfg.width)
    plucker = torch.zeros(batch, cfg.chunk_frames, *cfg.grid, 6)
    context = None if context_tokens is None else torch.zeros(batch, context_tokens, cfg.text_dim)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, torch.zeros(batch, cfg.chunk_frames), cond, plucker, cache, context, cache_only=cache_only)
    return counter.get_total_flops()


@pytest.mark.parametrize("chunk_frames", [1, 2])
def test_cached_forward_flops_match_the_operator_count(chunk_frames: int) -> None:
    cfg, batch = _config(chunk_frames), 2
    assert dit_forward_flops(cfg, batch) == pytest.approx(_count_cached_forward(cfg, batch), rel=RTOL)


def test_cache_pass_and_one_token_context_flops_match_the_operator_count() -> None:
    """The trimmed cache pass and the one-token cross-attention are counted as they run."""
    cfg, batch = dataclasses.replace(_config(1), learned_context=False), 2
    one_token = _count_cached_forward(cfg, batch, context_tokens=1)
    assert dit_forward_flops(cfg, batch, context_tokens=1) == pytest.approx(one_token, rel=RTOL)
    full = _count_cached_forward(cfg, batch, context_tokens=cfg.context_len)
    assert one_token < full
    trimmed = _count_cached_forward(cfg, batch, context_tokens=1, cache_only=True)
    assert dit_forward_flops(cfg, batch, context_tokens=1, cache_only=True) == pytest.approx(
        trimmed, rel=RTOL
    )
    assert trimmed < one_token


def test_clip_forward_flops_match_the_operator_count() -> None:
    cfg, batch, frames = _config(1), 1, 3
    model = CausalDiT(cfg).eval()
    x = torch.randn(batch, cfg.out_channels, frames, cfg.height, cfg.width)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, torch.zeros(batch, frames), None, torch.zeros(batch, frames, *cfg.grid, 6))
    # The masked clip attention runs dense (every query × every key); the analytic count is
    # the causal share, so compare the dense count with causal pairs replaced by all pairs.
    dense = dataclasses.replace(cfg, chunk_frames=frames, anchor_frames=0, memory_frames=0, window_frames=0)
    assert dit_forward_flops(dense, batch, cached=True) == pytest.approx(counter.get_total_flops(), rel=RTOL)
    assert dit_forward_flops(cfg, batch, frames, cached=False) < counter.get_total_flops()


def test_step_flops_count_the_cache_pass() -> None:
    cfg = get_config("tiny64")
    cache_pass = dit_forward_flops(cfg, 4, cache_only=True)
    assert step_flops(cfg, 4, 3) == 3 * dit_forward_flops(cfg, 4) + cache_pass
    assert step_flops(cfg, 4, 3, cache_pass=False) == 3 * dit_forward_flops(cfg, 4)


def test_matmul_ceiling_is_positive_on_the_cpu() -> None:
    assert matmul_ceiling_tflops("cpu", size=128, dtype=torch.float32, repeats=3) > 0
