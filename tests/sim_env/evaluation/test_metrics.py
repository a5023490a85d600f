"""Metrics with known answers, the reprojection hole fill and the mirrored (closed) loop trajectory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bridge.actions import FORWARD, NavLimits, action_to_nav, integrate_nav
from bridge.conventions import look_at
from bridge.types import Observation
from sim_env.evaluation.baselines import fill_nearest
from sim_env.evaluation.metrics import (
    PSNR_CAP_DB,
    collision_agreement,
    depth_absrel,
    memory_symmetry,
    psnr,
    ssim,
)
from sim_env.evaluation.trajectories import closed_loop, loop_navs, make_trajectory


def test_psnr_of_known_noise() -> None:
    target = np.full((16, 16, 3), 128, dtype=np.uint8)
    noise = np.where(np.indices((16, 16, 3)).sum(0) % 2 == 0, 5, -5)  # |error| = 5 everywhere
    pred = (target.astype(int) + noise).astype(np.uint8)
    assert psnr(pred, target) == pytest.approx(10 * math.log10(255**2 / 25))
    assert psnr(target, target) == PSNR_CAP_DB
    mask = np.zeros((16, 16), dtype=bool)
    mask[:4] = True
    assert psnr(pred, target, mask) == pytest.approx(10 * math.log10(255**2 / 25))


def test_ssim_identity_and_degradation() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image.astype(int) + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)
    assert ssim(noisy, image) < 0.9
    assert ssim(255 - image, image) < 0.0  # inverted structure correlates negatively
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(image, image[:16])


def test_depth_absrel_ignores_pixels_without_ground_truth() -> None:
    gt = np.full((8, 8), 2.0, dtype=np.float32)
    gt[0] = np.inf
    pred = gt * 1.1
    pred[0] = 0.5
    assert depth_absrel(pred, gt) == pytest.approx(0.1, rel=1e-5)


def test_memory_symmetry() -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8) for _ in range(4)]
    palindrome = frames + frames[::-1]
    assert memory_symmetry(palindrome) == pytest.approx(1.0)
    assert memory_symmetry(frames + frames) < 0.5  # unrelated random frames: MSE ≈ 10,000 ≫ 1,000


def test_collision_agreement() -> None:
    assert collision_agreement([True, False, False, True], [True, False, True, True]) == 0.75


def test_fill_nearest_copies_the_closest_valid_pixel() -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    depth = np.full((4, 4), np.inf, dtype=np.float32)
    mask = np.zeros((4, 4), dtype=bool)
    rgb[0, 0], depth[0, 0], mask[0, 0] = 10, 1.0, True
    rgb[3, 3], depth[3, 3], mask[3, 3] = 200, 3.0, True
    out_rgb, out_depth = fill_nearest(rgb, depth, mask)
    assert out_rgb[0, 1, 0] == 10 and out_depth[0, 1] == 1.0
    assert out_rgb[3, 2, 0] == 200 and out_depth[2, 3] == 3.0
    empty_rgb, empty_depth = fill_nearest(rgb, depth, np.zeros_like(mask))
    assert not empty_rgb.any() and np.isinf(empty_depth).all()


def test_loop_is_mirrored_and_returns_to_the_start() -> None:
    navs, back = loop_navs(32)
    poses = [look_at([0.0, 0.0, 1.2], [1.0, 0.0, 1.2])]
    for nav in navs:
        poses.append(integrate_nav(poses[-1], nav, NavLimits()))
    np.testing.assert_allclose(poses[back], poses[0], atol=1e-9)
    for i in range(back + 1):
        np.testing.assert_allclose(poses[i], poses[back - i], atol=1e-9)


def _walk_blocked(horizon: int, blocked_steps: set[int], shortened: dict[int, float]) -> list[np.ndarray]:
    """Poses of a world that follows the closed loop but stops or shortens some forward steps."""
    act = closed_loop(horizon)
    poses = [look_at([0.0, 0.0, 1.2], [1.0, 0.0, 1.2])]
    frame = np.zeros((2, 2, 3), np.uint8)
    for t in range(horizon):
        obs = Observation(frame, np.ones((2, 2), np.float32), poses[-1], np.eye(3), t, 0.1 * t)
        nav = action_to_nav(act(obs))
        if nav[FORWARD] > 0:
            nav[FORWARD] = 0.0 if t in blocked_steps else nav[FORWARD] * shortened.get(t, 1.0)
        poses.append(integrate_nav(poses[-1], nav, NavLimits()))
    return poses


def test_closed_loop_undoes_the_moves_actually_made() -> None:
    # The scripted loop overshoots when a wall stopped the way out; the closed loop does not.
    navs, back = loop_navs(32)
    scripted = [look_at([0.0, 0.0, 1.2], [1.0, 0.0, 1.2])]
    for t, nav in enumerate(navs):
        nav = nav.copy()
        if t in range(4, 9) and nav[FORWARD] > 0:
            nav[FORWARD] = 0.0
        scripted.append(integrate_nav(scripted[-1], nav, NavLimits()))
    overshoot = np.linalg.norm(scripted[back][:3, 3] - scripted[0][:3, 3])
    assert overshoot == pytest.approx(5 * NavLimits().max_translation)
    blocked, shortened = set(range(4, 9)), {2: 0.5}
    poses = _walk_blocked(32, blocked, shortened)
    np.testing.assert_allclose(poses[back], poses[0], atol=1e-9)
    for i in range(back + 1):
        np.testing.assert_allclose(poses[i], poses[back - i], atol=1e-9)
    unblocked = _walk_blocked(32, set(), {})
    moved = np.linalg.norm(unblocked[12][:3, 3] - unblocked[0][:3, 3])
    assert moved == pytest.approx(12 * NavLimits().max_translation)
    np.testing.assert_allclose(unblocked[back], unblocked[0], atol=1e-9)


def test_loop_trajectory_is_the_closed_loop() -> None:
    traj = make_trajectory("loop", 32, 5)
    _, back = loop_navs(32)
    assert traj.return_step == back
    start = look_at([0.0, 0.0, 1.2], [1.0, 0.0, 1.2])
    obs = Observation(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32), start, np.eye(3), 0, 0.0)
    assert action_to_nav(traj.act(obs))[FORWARD] == 1.0
