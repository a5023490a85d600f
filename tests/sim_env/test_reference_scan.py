"""The reference scan: where it looks from (synthetic views) and what it renders (a real MuJoCo engine)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bridge.conventions import look_at
from bridge.types import Action, InvalidArgumentError, Observation
from sim_env.reference_scan import (
    SCAN_CLEARANCE_M,
    SCAN_MAX_STEP_M,
    SCAN_MIN_SEPARATION_M,
    farthest_candidate,
    horizon_candidates,
    render_scan,
)
from sim_env.reference_sweep import render_sweep, sweep_poses

H = W = 64
FX = 45.7  # about a 70° view at 64 px


def _view(pose: np.ndarray, depth: float | np.ndarray) -> Observation:
    K = np.array([[FX, 0.0, (W - 1) / 2], [0.0, FX, (H - 1) / 2], [0.0, 0.0, 1.0]])
    planar = np.broadcast_to(np.asarray(depth, dtype=np.float32), (H, W)).copy()
    rgb = np.zeros((H, W, 3), np.uint8)
    return Observation(rgb=rgb, depth=planar, pose=pose, K=K, frame_id=0, sim_time=0.0)


def _wall_ahead(distance: float, pitch_deg: float = 0.0) -> tuple[Observation, np.ndarray]:
    """A camera at 1.5 m looking along +X (pitched down by ``pitch_deg``) at a wall ``distance`` away."""
    eye = np.array([0.0, 0.0, 1.5])
    target = eye + np.array([1.0, 0.0, -math.tan(math.radians(pitch_deg))])
    pose = look_at(eye, target)
    # Planar depth of the plane x = distance for each pixel's ray.
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - (W - 1) / 2) / FX, (v - (H - 1) / 2) / FX, np.ones_like(u)], axis=-1)
    along_x = (rays @ pose[:3, :3].T)[..., 0]
    return _view(pose, distance / along_x), eye


def test_candidates_stop_short_of_the_wall_at_the_cameras_height() -> None:
    view, eye = _wall_ahead(3.0)
    points = horizon_candidates(view)
    assert len(points) == 7
    np.testing.assert_allclose(points[:, 2], eye[2], atol=1e-9)  # level rays
    # Every point lies on its ray, the clearance short of the wall.
    reach = np.linalg.norm(points[:, :2] - eye[:2], axis=1)
    hit = reach / (points[:, 0] - eye[0]) * 3.0  # where the same ray meets x = 3
    np.testing.assert_allclose(hit - reach, SCAN_CLEARANCE_M, atol=1e-6)
    centre = points[np.argmin(np.abs(points[:, 1]))]
    np.testing.assert_allclose(centre, [3.0 - SCAN_CLEARANCE_M, 0.0, eye[2]], atol=1e-6)


def test_candidates_follow_the_horizon_of_a_pitched_camera() -> None:
    view, eye = _wall_ahead(3.0, pitch_deg=12.0)
    points = horizon_candidates(view)
    assert len(points) == 7
    np.testing.assert_allclose(points[:, 2], eye[2], atol=1e-9)
    # The horizon row's depth is rounded to a pixel row, so the clearance holds to a few cm.
    centre = points[np.argmin(np.abs(points[:, 1]))]
    assert abs(centre[0] - (3.0 - SCAN_CLEARANCE_M)) < 0.1


def test_far_rays_end_at_the_step_limit_and_open_or_blocked_ones_give_nothing() -> None:
    far, eye = _wall_ahead(20.0)
    reach = np.linalg.norm(horizon_candidates(far)[:, :2] - eye[:2], axis=1)
    np.testing.assert_allclose(reach, SCAN_MAX_STEP_M)
    assert horizon_candidates(_view(far.pose, np.inf)).shape == (0, 3)  # leaves the scene
    near, _ = _wall_ahead(SCAN_CLEARANCE_M * 0.75)  # even the edge rays meet it within the clearance
    assert horizon_candidates(near).shape == (0, 3)
    down = _view(look_at([0.0, 0.0, 1.5], [0.0, 0.001, 0.0]), 1.5)  # no horizon in view
    assert horizon_candidates(down).shape == (0, 3)


def test_the_farthest_candidate_wins_unless_all_are_near() -> None:
    positions = np.array([[0.0, 0.0, 1.5]])
    candidates = np.array([[1.5, 0.0, 1.5], [0.0, -3.0, 1.5], [2.0, 2.0, 1.5]])
    assert farthest_candidate(candidates, positions) == 1
    positions = np.concatenate([positions, [[0.0, -3.0, 1.5]]])
    assert farthest_candidate(candidates, positions) == 2
    near = np.array([[SCAN_MIN_SEPARATION_M * 0.5, 0.0, 1.5]])
    assert farthest_candidate(near, positions) is None
    assert farthest_candidate(np.zeros((0, 3)), positions) is None


def test_render_scan_sweeps_several_positions_and_puts_the_camera_back() -> None:
    from bridge.engines.mujoco_world import MujocoWorld

    plain, scanned = MujocoWorld("rooms", H, W), MujocoWorld("rooms", H, W)
    try:
        start = scanned.reset(seed=3)["agent_0"]
        plain.reset(seed=3)
        views = render_scan(scanned, "agent_0", start, 4, 3)
        assert len(views) == 4 * 3 - 1
        # Position 0 is the start's sweep, exactly as render_sweep renders it.
        sweep = render_sweep(scanned, "agent_0", start, 4)
        for a, b in zip(views[:3], sweep, strict=True):
            np.testing.assert_array_equal(a.rgb, b.rgb)
        # Then two more sweeps, each about its own position, spread apart, at the start's height.
        centres = [start.pose[:3, 3]] + [views[3 + 4 * k].pose[:3, 3] for k in range(2)]
        for k in range(2):
            group = views[3 + 4 * k : 7 + 4 * k]
            for view, pose in zip(group, sweep_poses(group[0].pose, 4), strict=True):
                np.testing.assert_allclose(view.pose, pose, atol=1e-9)
                assert view.frame_id == start.frame_id  # no time passed
            # A position the views showed free: nothing in its views' centres within the collision range.
            assert min(float(np.min(v.depth[H // 3 : -H // 3, W // 3 : -W // 3])) for v in group) > 0.3
        centres = np.array(centres)
        np.testing.assert_allclose(centres[:, 2], start.pose[2, 3])
        gaps = np.linalg.norm(centres[:, None, :2] - centres[None, :, :2], axis=-1)
        assert gaps[~np.eye(3, dtype=bool)].min() >= SCAN_MIN_SEPARATION_M
        # Deterministic: the same scene gives the same scan.
        again = render_scan(scanned, "agent_0", start, 4, 3)
        np.testing.assert_array_equal(np.stack([v.pose for v in again]), np.stack([v.pose for v in views]))
        # The episode goes on exactly as without the scan.
        for key in (1, 5, 1):
            a = plain.step({"agent_0": Action.from_key(key)})["agent_0"]
            b = scanned.step({"agent_0": Action.from_key(key)})["agent_0"]
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.pose, b.pose)
        with pytest.raises(InvalidArgumentError, match="positions"):
            render_scan(scanned, "agent_0", start, 4, 0)
    finally:
        plain.close()
        scanned.close()


def test_a_scan_lets_the_world_show_what_the_start_could_not_see() -> None:
    """Reprojection at a scan position matches the engine there; from the start's sweep alone it cannot."""
    from bridge.engines.mujoco_world import MujocoWorld
    from sim_env.evaluation.baselines import AGENT
    from sim_env.evaluation.metrics import psnr
    from sim_env.evaluation.runner import EvalSettings, _open_world, run_episode
    from sim_env.evaluation.trajectories import make_trajectory

    engine = MujocoWorld("rooms", H, W)
    try:
        start = engine.reset(seed=905)["agent_0"]
        far = render_scan(engine, AGENT, start, 8, 3)[-4].pose  # a view of the last position's sweep
        scores = {}
        for positions in (1, 3):
            settings = EvalSettings(
                checkpoint=None,
                episodes=1,
                horizon=2,
                seed_offset=905,
                reference_views=8,
                reference_positions=positions,
            )
            world = _open_world("reprojection", settings)
            assert world.reference_views == 8 * positions
            traj = make_trajectory("random_walk", 2, 3)
            run_episode(world, engine, traj, 905, 2, False, reference_views=8, reference_positions=positions)
            scores[positions] = psnr(world.set_pose(AGENT, far).rgb, engine.set_pose(AGENT, far).rgb)
        assert scores[3] > scores[1] + 5.0, scores
    finally:
        engine.close()


def test_a_generative_world_renders_its_own_scan() -> None:
    from sim_env.generative_world import GenerativeWorld

    with pytest.raises(InvalidArgumentError, match="divide"):
        GenerativeWorld(denoising_steps=1, reference_views=4, reference_positions=3)
    counts = {}
    for positions in (1, 2):  # two views each: the start's pair, then another pair elsewhere
        views = 2 * positions
        world = GenerativeWorld(denoising_steps=1, reference_views=views, reference_positions=positions)
        assert world.reference_positions == positions
        world.reset(seed=3)  # MuJoCo renders the reference and its scan
        counts[positions] = int(world.memory.pinned.sum())
    assert counts[2] > counts[1] * 1.2  # the second position's sweep adds surface the first did not hold


def test_the_world_leaves_other_spots_voxels_in_the_starts_gaps_to_the_model(monkeypatch) -> None:
    """Each step's render goes through `primary_gaps`: with a scan it empties pixels, with one spot none."""
    import sim_env.memory.primary_gaps as gaps_module
    from sim_env.generative_world import GenerativeWorld
    from sim_env.memory.primary_gaps import primary_gaps

    hidden_per_step: list[int] = []

    def counted(pin_level, valid):
        hidden = primary_gaps(pin_level, valid)
        hidden_per_step.append(int(hidden.sum()))
        return hidden

    monkeypatch.setattr(gaps_module, "primary_gaps", counted)  # what the runtime's step calls
    walk = {"agent_0": Action(nav_vector=np.array([0.5, 0.0, 0.0, 0.3, 0.0, 0.0]))}
    hidden = {}
    for positions in (1, 3):
        world = GenerativeWorld(
            denoising_steps=1,
            reference_views=8 * positions,
            reference_positions=positions,
            footprint_occlusion=True,
        )
        world.reset(seed=3)  # a start whose first steps look where the other spots' sweeps reach
        hidden_per_step.clear()
        for _ in range(3):
            world.step(walk)
        assert len(hidden_per_step) == 3  # every step
        hidden[positions] = sum(hidden_per_step)
    assert hidden[1] == 0 and hidden[3] > 0, hidden
