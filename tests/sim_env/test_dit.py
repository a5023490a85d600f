"""CausalDiT on tiny configs: shapes, dtypes, determinism, chunk causality, Plücker rays."""

import dataclasses

import pytest
import torch

from sim_env.model import (
    CausalDiT,
    STCache,
    count_parameters,
    decode_depth,
    encode_depth,
    plucker_rays,
)
from sim_env.model.rope import apply_rope, grid_positions, rope_cos_sin, rope_split
from tests.sim_env.micro_configs import MICRO, TINY


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return CausalDiT(cfg).eval()


def _inputs(cfg, batch, frames, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.out_channels, frames, cfg.height, cfg.width, generator=g)
    cond = torch.randn(batch, cfg.condition_channels, frames, cfg.height, cfg.width, generator=g)
    t = torch.rand(batch, frames, generator=g) * 1000
    return x, t, cond


def test_tiny64_forward_shapes_and_dtype():
    assert TINY.in_channels == 4 + 4 + 1 + 1 and TINY.tokens_per_frame == 256
    model = _model(TINY)
    assert 1_000_000 < count_parameters(model) < 5_000_000
    x, t, cond = _inputs(TINY, 2, 2)
    with torch.no_grad():
        v = model(x, t, cond)
    assert v.shape == x.shape and v.dtype == torch.float32 and torch.isfinite(v).all()


def test_deterministic_under_seed():
    x, t, cond = _inputs(MICRO, 1, 2)
    with torch.no_grad():
        a = _model(MICRO, seed=3)(x, t, cond)
        b = _model(MICRO, seed=3)(x, t, cond)
        c = _model(MICRO, seed=4)(x, t, cond)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_per_frame_timesteps_matter():
    model = _model(MICRO)
    x, t, cond = _inputs(MICRO, 1, 2)
    t2 = t.clone()
    t2[:, 1] += 100
    with torch.no_grad():
        a, b = model(x, t, cond), model(x, t2, cond)
    assert torch.allclose(a[:, :, 0], b[:, :, 0], atol=1e-5)  # frame 0 earlier: unaffected
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])


def test_uncached_path_is_chunk_causal():
    model = _model(MICRO)
    x, t, cond = _inputs(MICRO, 1, 3)
    x2, cond2 = x.clone(), cond.clone()
    x2[:, :, 2] += 1.0
    cond2[:, :, 2] -= 1.0
    with torch.no_grad():
        a, b = model(x, t, cond), model(x2, t, cond2)
    assert torch.allclose(a[:, :, :2], b[:, :, :2], atol=1e-5)
    assert not torch.allclose(a[:, :, 2], b[:, :, 2])


def test_cached_path_is_causal_and_uses_history():
    model = _model(MICRO)
    x, t, cond = _inputs(MICRO, 1, 3)
    pose = torch.eye(4).expand(1, 1, 4, 4)

    def rollout(frames):
        cache = STCache(MICRO, batch_size=1)
        outs = []
        with torch.no_grad():
            for f in range(frames.shape[2]):
                outs.append(
                    model(frames[:, :, f : f + 1], t[:, f : f + 1], cond[:, :, f : f + 1], cache=cache)
                )
                cache.advance(pose)
        return torch.cat(outs, dim=2)

    x2 = x.clone()
    x2[:, :, 2] += 1.0
    a, b = rollout(x), rollout(x2)
    assert torch.equal(a[:, :, :2], b[:, :, :2])
    x3 = x.clone()
    x3[:, :, 0] += 1.0
    assert not torch.allclose(rollout(x3)[:, :, 1], a[:, :, 1])  # frame 1 attends to frame 0 in the window


def test_learned_context_or_text_required():
    wan_like = dataclasses.replace(MICRO, learned_context=False, text_dim=16, context_len=4)
    model = _model(wan_like)
    x, t, cond = _inputs(wan_like, 1, 1)
    with pytest.raises(ValueError):
        model(x, t, cond)
    with torch.no_grad():
        assert model(x, t, cond, context=torch.randn(1, 4, 16)).shape == x.shape


def test_identical_context_tokens_attend_like_one_token():
    """The runtime passes Wan's identical "no prompt" tokens as one (`CrossAttention` shortcut)."""
    wan_like = dataclasses.replace(MICRO, learned_context=False, text_dim=16, context_len=6)
    model = _model(wan_like)
    x, t, cond = _inputs(wan_like, 2, 1)
    token = torch.randn(2, 1, 16)
    with torch.no_grad():
        full = model(x, t, cond, context=token.expand(-1, 6, -1), cache=STCache(wan_like, 2))
        one = model(x, t, cond, context=token, cache=STCache(wan_like, 2))
        different = model(x, t, cond, context=torch.randn(2, 6, 16), cache=STCache(wan_like, 2))
    torch.testing.assert_close(one, full, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(different, full, atol=1e-3)


def test_fused_qkv_projection_gives_the_separate_products():
    separate, fused = _model(MICRO), _model(MICRO)
    for block in fused.blocks:
        block.self_attn.fuse_projections()
        block.self_attn.fuse_projections()  # idempotent
        assert not hasattr(block.self_attn, "q") and block.self_attn.qkv is not None
    x, t, cond = _inputs(MICRO, 2, 1)
    caches = STCache(MICRO, 2), STCache(MICRO, 2)
    with torch.no_grad():
        outs = [m(x, t, cond, cache=c) for m, c in zip((separate, fused), caches, strict=True)]
        for m, c in zip((separate, fused), caches, strict=True):
            m(x, torch.zeros_like(t), None, cache=c, cache_only=True)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(caches[1].keys, caches[0].keys, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(caches[1].values, caches[0].values, rtol=1e-5, atol=1e-5)


def test_cache_only_pass_writes_the_same_cache_without_the_last_block_and_head():
    model = _model(MICRO)
    x, _, _ = _inputs(MICRO, 2, 1)
    t0 = torch.zeros(2, 1)
    full, trimmed = STCache(MICRO, 2), STCache(MICRO, 2)
    with torch.no_grad():
        assert model(x, t0, None, cache=full) is not None
        assert model(x, t0, None, cache=trimmed, cache_only=True) is None
        with pytest.raises(ValueError, match="cache_only needs a cache"):
            model(x, t0, None, cache_only=True)
    assert torch.equal(trimmed.keys, full.keys) and torch.equal(trimmed.values, full.values)
    assert full.keys[-1].abs().sum() > 0  # the last layer's keys were written


def test_plucker_rays_geometry():
    K = torch.tensor([[32.0, 0, 31.5], [0, 32.0, 31.5], [0, 0, 1]])
    pose = torch.eye(4)
    pose[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    rays = plucker_rays(K[None], pose[None], grid=(16, 16), image_size=(64, 64))
    assert rays.shape == (1, 16, 16, 6)
    moment, d = rays[..., :3], rays[..., 3:]
    assert torch.allclose(d.norm(dim=-1), torch.ones(1, 16, 16))
    assert (d[..., 2] > 0).all()  # OpenCV: the camera looks down +z
    assert (d[0, :, 0, 0] < 0).all() and (d[0, 0, :, 1] < 0).all()  # left column looks left, top row up
    assert torch.allclose((moment * d).sum(-1), torch.zeros(1, 16, 16), atol=1e-6)  # m ⟂ d
    assert torch.allclose(moment, torch.linalg.cross(pose[:3, 3].expand_as(d), d, dim=-1))


def test_plucker_embedding_changes_output_once_trained():
    model = _model(MICRO)
    torch.nn.init.normal_(model.camera_embedding[2].weight, std=0.1)
    x, t, cond = _inputs(MICRO, 1, 1)
    K = torch.tensor([[16.0, 0, 15.5], [0, 16.0, 15.5], [0, 0, 1]]).expand(1, 1, 3, 3)
    rays = plucker_rays(K, torch.eye(4).expand(1, 1, 4, 4), MICRO.grid, (32, 32))
    with torch.no_grad():
        assert not torch.allclose(model(x, t, cond), model(x, t, cond, plucker=rays))


def test_rope_split_and_relative_property():
    assert rope_split(128) == (22, 21, 21)  # Wan2.1-1.3B head_dim 128
    pos = grid_positions(torch.tensor([0, 5]), 2, 3)
    assert pos.shape == (12, 3) and pos[:, 0].max() == 5
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)
    cos_a, sin_a = rope_cos_sin(torch.tensor([[3, 1, 2]]), 32, 1e4)
    cos_b, sin_b = rope_cos_sin(torch.tensor([[7, 4, 6]]), 32, 1e4)
    cos_c, sin_c = rope_cos_sin(torch.tensor([[0, 0, 0]]), 32, 1e4)
    cos_d, sin_d = rope_cos_sin(torch.tensor([[4, 3, 4]]), 32, 1e4)
    dot_ab = (apply_rope(q, cos_a, sin_a) * apply_rope(k, cos_b, sin_b)).sum()
    dot_cd = (apply_rope(q, cos_c, sin_c) * apply_rope(k, cos_d, sin_d)).sum()
    assert torch.allclose(dot_ab, dot_cd, atol=1e-5)  # only the offset matters


def test_depth_encoding_round_trip():
    d = torch.tensor([0.05, 0.5, 3.0, 100.0, float("inf")])
    e = encode_depth(d)
    assert e.min() >= -1 and e.max() <= 1
    assert torch.allclose(decode_depth(e)[:4], d[:4], rtol=1e-5)
