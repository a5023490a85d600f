"""The latent path (wan2.1-style chunks) on ``tiny-latent-test`` with random weights (CPU).

Pieces: pull-push depth hole filling, latent-grid mask, chunk poses; the runtime: chunk shapes
(12 video frames per step from 3 latent frames), exact per-frame poses, depth from the memory,
determinism, fixed-size decoder state, teleports, and the World wrapper's last-frame Observation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from bridge.actions import NavLimits, integrate_nav
from bridge.conventions import intrinsics_from_fov, look_at
from bridge.types import Action, Observation
from sim_env.generative_world import GenerativeWorld
from sim_env.latent_chunk import chunk_poses, fill_depth_holes, latent_mask
from sim_env.runtime import GenerativeRuntime

CONFIG = "tiny-latent-test"
H, W = 32, 48  # image size of tiny-latent-test (4×6 latents)
VIDEO_FRAMES = 12  # 3 latent frames × 4
WALL_M = 4.0


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny kernels: one torch thread avoids hand-off overhead on a busy 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_fill_depth_holes_takes_nearest_valid_and_keeps_valid_pixels() -> None:
    depth = torch.full((2, 8, 8), float("inf"))
    depth[0, 1, 1] = 2.0  # top-left quadrant
    depth[0, 6, 6] = 5.0  # bottom-right quadrant
    depth[0, 6, 1] = 3.0  # bottom-left quadrant
    filled = fill_depth_holes(depth)
    assert filled.shape == depth.shape and torch.isfinite(filled[0]).all()
    assert filled[0, 1, 1] == 2.0 and filled[0, 6, 6] == 5.0 and filled[0, 6, 1] == 3.0
    assert (filled[0, :4, :4] == 2.0).all()  # each hole takes its own quadrant's surface
    assert (filled[0, 4:, :4] == 3.0).all() and (filled[0, 4:, 4:] == 5.0).all()
    assert (filled[0, :4, 4:] == 2.0).all()  # an empty quadrant: the nearest (minimum) one above
    assert torch.isinf(filled[1]).all()  # nothing known at all: stays +inf (no collision)
    odd = torch.full((1, 5, 7), float("inf"))
    odd[0, 4, 6] = 1.5
    assert (fill_depth_holes(odd) == 1.5).all()  # sizes that do not halve evenly


def test_latent_mask_is_the_covered_fraction_per_latent_cell() -> None:
    mask = torch.zeros(1, 8, 16, 16, dtype=torch.bool)
    mask[:, :4, :8, :8] = True  # first latent frame, top-left cell fully covered
    mask[:, 4, 8:, 8:] = True  # second latent frame, bottom-right cell in 1 of 4 frames
    out = latent_mask(mask, 4, 8)
    assert out.shape == (1, 2, 2, 2)
    expected = torch.zeros(1, 2, 2, 2)
    expected[0, 0, 0, 0], expected[0, 1, 1, 1] = 1.0, 0.25
    torch.testing.assert_close(out, expected)


def test_chunk_poses_apply_the_action_at_every_video_frame() -> None:
    start = look_at([0.0, 0.0, 1.2], [3.0, 1.0, 1.2])
    nav = np.array([0.5, 0.2, 0.0, 0.3, 0.1, 0.0])
    poses = chunk_poses(torch.as_tensor(start)[None], torch.as_tensor(nav)[None], NavLimits(), 12)
    expected, pose = [], start
    for _ in range(12):
        pose = integrate_nav(pose, nav, NavLimits())
        expected.append(pose)
    np.testing.assert_allclose(poses[0].numpy(), np.stack(expected), atol=1e-9)


def _reference(n: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (n, H, W, 3), dtype=torch.uint8, generator=gen)
    depth = WALL_M + torch.rand(n, H, W, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0)).expand(n, 3, 3)
    pose = torch.stack([torch.as_tensor(look_at([0, 0.2 * i, 1.2], [3, 0.2 * i, 1.2])) for i in range(n)])
    return rgb, depth, K, pose


def _runtime(num_worlds: int = 2, **kw) -> GenerativeRuntime:
    runtime = GenerativeRuntime(config=CONFIG, num_worlds=num_worlds, denoising_steps=2, **kw)
    runtime.reset_batch(*_reference(num_worlds), seed=4)
    return runtime


NAV = torch.tensor([[0.4, 0.0, 0.0, 0.5, 0.0, 0.0], [0.0, 0.3, 0.0, -0.5, 0.0, 0.0]], dtype=torch.float64)


def test_chunk_step_shapes_poses_and_depth() -> None:
    runtime = _runtime(collision_depth_m=0.0)
    assert runtime.video_frames == VIDEO_FRAMES and (runtime.height, runtime.width) == (H, W)
    before = runtime.pose.clone()
    out = runtime.step_batch(NAV)
    assert out["rgb"].shape == (2, VIDEO_FRAMES, H, W, 3) and out["rgb"].dtype == torch.uint8
    assert out["depth"].shape == (2, VIDEO_FRAMES, H, W) and out["depth"].dtype == torch.float32
    assert out["pose"].shape == (2, VIDEO_FRAMES, 4, 4) and out["pose"].dtype == torch.float64
    assert out["frame_id"].tolist() == [VIDEO_FRAMES] * 2
    expected = chunk_poses(before, NAV, NavLimits(), VIDEO_FRAMES)
    torch.testing.assert_close(out["pose"], expected, rtol=0, atol=1e-12)
    assert torch.equal(runtime.pose, out["pose"][:, -1]) and torch.equal(runtime.rgb, out["rgb"][:, -1])
    # Depth is the memory reprojected (a surface 4-5 m ahead, seen from <= 0.72 m closer and
    # turned up to ~34°, so planar depth changes across the view), holes filled.
    assert torch.isfinite(out["depth"]).all()
    assert float(out["depth"].min()) > 1.5 and float(out["depth"].max()) < 10.0
    out = runtime.step_batch(NAV)
    assert out["frame_id"].tolist() == [2 * VIDEO_FRAMES] * 2


def test_chunk_rollout_is_deterministic_and_state_is_fixed_size() -> None:
    def rollout(seed: int) -> tuple[torch.Tensor, GenerativeRuntime]:
        runtime = GenerativeRuntime(config=CONFIG, num_worlds=2, denoising_steps=1, seed=1)
        runtime.reset_batch(*_reference(2), seed=seed)
        state = [(s.data_ptr(), s.shape) for s in runtime.latent.codec.state]
        frames = [runtime.step_batch(NAV)["rgb"].clone() for _ in range(3)]
        assert [(s.data_ptr(), s.shape) for s in runtime.latent.codec.state] == state
        return torch.stack(frames), runtime

    a, runtime = rollout(7)
    b, _ = rollout(7)
    c, _ = rollout(8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert bool(runtime.cache.valid[:, runtime.cache.window.start : runtime.cache.window.stop].all())


def test_forward_into_a_wall_is_blocked_before_the_chunk_would_pass_it() -> None:
    runtime = _runtime(num_worlds=1, collision_depth_m=0.3)
    forward = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    for _ in range(4):  # 12 frames × 0.15 m per chunk towards a wall 4-5 m ahead
        out = runtime.step_batch(forward)
    assert bool(out["collided"][0])
    assert float(out["depth"][0, -1].min()) > 0.3  # stopped short of the wall, not inside it


def test_teleport_moves_only_the_masked_stream() -> None:
    runtime = _runtime()
    runtime.step_batch(NAV)
    keep = {k: v.clone() for k, v in runtime._outputs().items()}
    state = [s.clone() for s in runtime.latent.codec.state]
    target = runtime.pose.clone()
    target[1] = torch.as_tensor(look_at([0.5, 0.0, 1.2], [3.0, 0.5, 1.2]))
    out = runtime.teleport_batch(target, torch.tensor([False, True]))
    torch.testing.assert_close(out["pose"][1], target[1].expand(VIDEO_FRAMES, 4, 4), rtol=0, atol=0)
    assert torch.equal(out["rgb"][0], keep["rgb"][0]) and torch.equal(out["pose"][0], keep["pose"][0])
    assert out["frame_id"].tolist() == keep["frame_id"].tolist()
    assert all(torch.equal(s[0], t[0]) for s, t in zip(runtime.latent.codec.state, state, strict=True))


def test_world_wrapper_returns_the_chunk_last_frame() -> None:
    world = GenerativeWorld(config=CONFIG, denoising_steps=1, collision_depth_m=0.0)
    rgb, depth, K, pose = (t[0].numpy() for t in _reference(1))
    reference = Observation(rgb=rgb, depth=depth, pose=pose, K=K, frame_id=0, sim_time=0.0)
    world.reset(seed=2, options={"reference": {"agent_0": reference}})
    obs = world.step({"agent_0": Action.from_nav([0.5, 0, 0, 0, 0.2, 0])})["agent_0"]
    obs.validate()
    assert obs.rgb.shape == (H, W, 3) and obs.depth.shape == (H, W)
    assert obs.frame_id == VIDEO_FRAMES and obs.sim_time == pytest.approx(VIDEO_FRAMES * world.dt)
    np.testing.assert_array_equal(obs.rgb, world.frames_rgb[0, -1].numpy())
    np.testing.assert_allclose(obs.pose, world.frames_pose[0, -1].numpy())


def test_masked_reset_restarts_only_that_worlds_chunk_state() -> None:
    runtime = _runtime()
    runtime.step_batch(NAV)
    frames = runtime.frames_rgb.clone()
    state = [s.clone() for s in runtime.latent.codec.state]
    rgb, depth, K, pose = _reference(2)
    out = runtime.reset_batch(rgb, depth, K, pose, seed=9, world_mask=torch.tensor([False, True]))
    assert torch.equal(out["rgb"][0], frames[0]) and out["frame_id"].tolist() == [VIDEO_FRAMES, 0]
    assert torch.equal(out["rgb"][1], rgb[1].expand(VIDEO_FRAMES, -1, -1, -1))  # the reference, held
    assert all(torch.equal(s[0], t[0]) for s, t in zip(runtime.latent.codec.state, state, strict=True))
    assert not all(torch.equal(s[1], t[1]) for s, t in zip(runtime.latent.codec.state, state, strict=True))
