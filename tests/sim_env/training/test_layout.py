"""Training clips sit at the ST-cache slots the runtime uses, and the clip forward matches the cache."""

from __future__ import annotations

import torch

from sim_env.conditioning import plucker_input
from sim_env.model.config import get_config
from sim_env.model.dit import CausalDiT
from sim_env.model.st_cache import STCache
from sim_env.training.layout import runtime_layout
from tests.sim_env.training.tiny_data import TINY_CONFIG


def test_layout_fills_window_from_the_end_then_the_memory_pool() -> None:
    cfg = get_config("tiny64")  # anchor 1 | memory 4 (slots 1-4) | window 2 (5, 6) | chunk 7
    g = torch.Generator().manual_seed(0)
    assert runtime_layout(cfg, 0, g).positions == (0, 7)
    assert runtime_layout(cfg, 1, g).frame_indices == (0, 1, 2)
    assert runtime_layout(cfg, 1, g).positions == (0, 6, 7)
    assert runtime_layout(cfg, 2, g).positions == (0, 5, 6, 7)
    five = runtime_layout(cfg, 5, g)  # frames 1-3 left the window, 4-5 are in it, 6 is generated
    assert five.frame_indices == (0, 1, 2, 3, 4, 5, 6)
    assert five.positions == (0, 1, 2, 3, 5, 6, 7)
    many = runtime_layout(cfg, 20, g)  # the pool holds 4 of the 18 frames that left the window
    assert many.positions == (0, 1, 2, 3, 4, 5, 6, 7)
    assert many.frame_indices[-3:] == (19, 20, 21)
    assert all(1 <= i <= 18 for i in many.frame_indices[1:5])
    assert list(many.frame_indices) == sorted(many.frame_indices)


def test_clip_forward_at_slot_positions_equals_the_cached_step() -> None:
    """Reference + first generated frame: the training clip reproduces the runtime's cached forward."""
    cfg = TINY_CONFIG
    torch.manual_seed(0)
    model = CausalDiT(cfg).eval()
    b, c, h, w = 2, cfg.out_channels, cfg.height, cfg.width
    K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 7.5], [0, 0, 1]]).repeat(b, 1, 1)
    pose = torch.eye(4).repeat(b, 2, 1, 1)
    pose[:, 1, 0, 3] = 0.3
    reference, noisy = torch.randn(b, c, 1, h, w), torch.randn(b, c, 1, h, w)
    cond = torch.randn(b, cfg.condition_channels, 1, h, w)
    t = torch.full((b, 1), 700.0)
    cache = STCache(cfg, b)
    with torch.no_grad():
        model(reference, torch.zeros(b, 1), None, plucker_input(K, pose[:, 0], cfg), cache)
        cache.commit_anchor(pose[:, :1])
        cached = model(noisy, t, cond, plucker_input(K, pose[:, 1], cfg), cache)
        layout = runtime_layout(cfg, 0, torch.Generator())
        clip_cond = torch.cat([torch.zeros_like(cond), cond], dim=2)
        plucker = torch.cat([plucker_input(K, pose[:, 0], cfg), plucker_input(K, pose[:, 1], cfg)], dim=1)
        clip = model(
            torch.cat([reference, noisy], dim=2),
            torch.cat([torch.zeros(b, 1), t], dim=1),
            clip_cond,
            plucker,
            frame_positions=layout.position_tensor(),
        )
    torch.testing.assert_close(clip[:, :, -1:], cached, rtol=1e-4, atol=1e-5)
    plain = model(
        torch.cat([reference, noisy], dim=2), torch.cat([torch.zeros(b, 1), t], dim=1), clip_cond, plucker
    )
    assert not torch.allclose(plain[:, :, -1:], cached, atol=1e-3)  # positions 0, 1 are NOT the cache's
