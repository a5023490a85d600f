"""The reference sweep: poses, rendering with a real MuJoCo engine, and what the runtime does with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bridge.conventions import look_at
from bridge.types import Action, InvalidArgumentError, Observation
from sim_env.generative_world import GenerativeWorld
from sim_env.memory.reference_pin import DEFAULT_MEMORY_CAPACITY, memory_capacity_for
from sim_env.reference_sweep import ReferenceViews, render_sweep, sweep_poses
from tests.sim_env.test_generative_world import H, W, batch_tensors, reference

START = look_at([0.5, -0.3, 1.2], [3.0, 0.4, 1.0])  # pitched slightly down


def _views(seed: int, count: int) -> list[Observation]:
    """A reference and ``count`` sweep views around it (random walls, sweep poses)."""
    base = reference(seed)
    poses = sweep_poses(base.pose, count + 1)
    return [base] + [
        Observation(**{**reference(seed + 10 * (k + 1)).__dict__, "pose": poses[k + 1]}) for k in range(count)
    ]


def test_sweep_poses_turn_about_the_world_vertical_in_equal_steps() -> None:
    poses = sweep_poses(START, 8)
    assert poses.shape == (8, 4, 4)
    np.testing.assert_array_equal(poses[0], START)
    np.testing.assert_allclose(poses[:, :3, 3], np.repeat(START[None, :3, 3], 8, axis=0))  # in place
    forward = poses[:, :3, 2]  # OpenCV camera z, the viewing direction
    np.testing.assert_allclose(forward[:, 2], START[2, 2])  # the same pitch all around
    headings = np.degrees(np.arctan2(forward[:, 1], forward[:, 0]))
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(headings))), math.radians(45.0), atol=1e-9)
    for pose in poses:  # still rotations
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="views"):
        sweep_poses(START, 0)


def test_render_sweep_shows_the_engine_all_around_and_puts_the_camera_back() -> None:
    from bridge.engines.mujoco_world import MujocoWorld

    plain, swept = MujocoWorld("rooms", H, W), MujocoWorld("rooms", H, W)
    try:
        start = swept.reset(seed=3)["agent_0"]
        plain.reset(seed=3)
        views = render_sweep(swept, "agent_0", start, 4)
        assert len(views) == 3 and render_sweep(swept, "agent_0", start, 1) == []
        for view, pose in zip(views, sweep_poses(start.pose, 4)[1:], strict=True):
            np.testing.assert_allclose(view.pose, pose, atol=1e-9)
            assert view.frame_id == start.frame_id  # no time passed
        assert not np.array_equal(views[1].rgb, start.rgb)  # the view behind differs
        # The episode goes on exactly as without the sweep.
        for key in (1, 5, 1):
            a = plain.step({"agent_0": Action.from_key(key)})["agent_0"]
            b = swept.step({"agent_0": Action.from_key(key)})["agent_0"]
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.pose, b.pose)
    finally:
        plain.close()
        swept.close()


def test_reference_views_check_names_the_bad_field() -> None:
    views = ReferenceViews.from_observations([_views(0, 2)[1:]])
    assert views.count == 2 and views.hands is None
    assert views.checked(1, H, W, 2) is views
    with pytest.raises(InvalidArgumentError, match="room for 1"):
        views.checked(1, H, W, 1)
    with pytest.raises(InvalidArgumentError, match=r"sweep\.depth"):
        ReferenceViews(views.rgb, views.depth[..., :8], views.K, views.pose).checked(1, H, W, 2)
    with pytest.raises(InvalidArgumentError, match="same number"):
        ReferenceViews.from_observations([_views(0, 2)[1:], _views(1, 1)[1:]])


def test_memory_grows_to_pin_every_view() -> None:
    assert memory_capacity_for(H * W) == DEFAULT_MEMORY_CAPACITY  # one view: unchanged
    world = GenerativeWorld(denoising_steps=1, reference_views=8)
    assert world.memory.capacity >= 2 * 8 * H * W and world.pin_reference
    with pytest.raises(InvalidArgumentError, match="reference_views"):
        GenerativeWorld(denoising_steps=1, reference_views=0)


def test_the_sweep_is_pinned_in_the_memory_and_shows_where_the_reference_does_not() -> None:
    views = _views(0, 3)
    world = GenerativeWorld(denoising_steps=1, reference_views=4)
    world.reset(seed=1, options={"reference": {"agent_0": views}})
    for view in views:  # every view renders back from the memory as it was given
        _, depth, mask = world.memory.render(
            torch.as_tensor(view.K)[None].float(), torch.as_tensor(view.pose)[None].float(), H, W
        )
        assert float(mask.float().mean()) > 0.9
        torch.testing.assert_close(depth[0][mask[0]], torch.as_tensor(view.depth)[mask[0]], rtol=0.05, atol=0)
    assert int(world.memory.pinned.sum()) == int(world.memory.valid.sum())  # all of it pinned
    # Fewer views on the next reset: the old sweep is gone.
    world.reset(seed=1, options={"reference": {"agent_0": views[0]}})
    behind = views[2]
    _, _, mask = world.memory.render(
        torch.as_tensor(behind.K)[None].float(), torch.as_tensor(behind.pose)[None].float(), H, W
    )
    assert not bool(mask.any())
    with pytest.raises(InvalidArgumentError, match="room for 3"):
        world.reset(seed=1, options={"reference": {"agent_0": _views(0, 4)}})


def test_sweep_reset_touches_only_the_masked_world() -> None:
    world = GenerativeWorld(denoising_steps=1, num_worlds=2, reference_views=3)
    refs = [reference(0), reference(1)]
    sweep = ReferenceViews.from_observations([_views(0, 2)[1:], _views(1, 2)[1:]])
    world.reset_batch(*batch_tensors(refs), seed=5, sweep=sweep)
    before = world.memory.valid[1].clone(), world.memory.xyz[1].clone()
    world.reset_batch(*batch_tensors(refs), sweep=sweep, world_mask=torch.tensor([True, False]))
    assert torch.equal(world.memory.valid[1], before[0]) and torch.equal(world.memory.xyz[1], before[1])


def test_the_sweeps_hands_stay_out_of_the_memory() -> None:
    """Hands turn with the camera: a sweep would otherwise leave them all around the start."""
    views = _views(0, 1)
    keypoints = np.zeros((2, 21, 3), np.float32)
    keypoints[..., 2] = 0.5  # both hands at 0.5 m, on the image centre
    keypoints[0, :, 0], keypoints[1, :, 0] = -0.05, 0.05
    views[1] = Observation(**{**views[1].__dict__, "hand_keypoints": keypoints})
    world = GenerativeWorld(denoising_steps=1, reference_views=2)
    world.reset(seed=1, options={"reference": {"agent_0": views}})
    _, _, mask = world.memory.render(
        torch.as_tensor(views[1].K)[None].float(), torch.as_tensor(views[1].pose)[None].float(), H, W
    )
    assert not bool(mask[0, H // 2, W // 2]) and bool(mask[0, 2, 2])
