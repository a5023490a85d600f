"""Batched torch kinematics agree with the numpy reference in bridge.actions / bridge.hands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridge.actions import FORWARD, YAW, NavLimits, integrate_nav, key_to_nav
from bridge.conventions import look_at, rot_x, rot_z, se3
from bridge.hands import apply_hand_action, default_wrist_poses_cam, hands_keypoints
from sim_env import kinematics as kin

TOL = 1e-6


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    poses = []
    for _ in range(n):
        R = rot_z(rng.uniform(-np.pi, np.pi)) @ look_at([0, 0, 0], [1, 0, 0])[:3, :3]
        R = R @ rot_x(rng.uniform(-1.3, 1.3)) @ rot_z(rng.uniform(-0.5, 0.5))
        poses.append(se3(R, rng.normal(size=3)))
    # Degenerate headings: looking straight down and straight up.
    poses.append(look_at([0, 0, 2], [0, 0, 0], up=(0, 1, 0)))
    poses.append(look_at([0, 0, 0], [0, 0, 2], up=(0, 1, 0)))
    return np.stack(poses)


@pytest.mark.parametrize("limits", [NavLimits(), NavLimits(0.5, 0.7, 0.6)])
def test_integrate_nav_matches_bridge(limits: NavLimits) -> None:
    rng = np.random.default_rng(0)
    poses = random_poses(rng, 64)
    navs = rng.uniform(-1, 1, size=(len(poses), 6))
    got = kin.integrate_nav(torch.from_numpy(poses), torch.from_numpy(navs), limits).numpy()
    want = np.stack([integrate_nav(p, a, limits) for p, a in zip(poses, navs, strict=True)])
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_key_table_matches_bridge() -> None:
    table = kin.key_table()
    keys = torch.arange(9)
    got = kin.keys_to_nav(keys, table).numpy()
    np.testing.assert_array_equal(got, np.stack([key_to_nav(k) for k in range(9)]))


def test_hand_actions_and_keypoints_match_bridge() -> None:
    rng = np.random.default_rng(1)
    n = 16
    wrists = np.stack([default_wrist_poses_cam()] * n)
    grips = rng.uniform(0, 1, size=(n, 2))
    actions = rng.uniform(-1, 1, size=(n, 14))
    actions[:, [6, 13]] = rng.uniform(0, 1, size=(n, 2))
    actions[0, :6] = 0.0  # zero rotation vector (first-order Rodrigues branch)
    new_w, new_g = kin.apply_hand_actions(
        torch.from_numpy(wrists), torch.from_numpy(grips), torch.from_numpy(actions)
    )
    hands = kin.HandKinematics()
    kp = hands.keypoints(new_w, new_g).numpy()
    for i in range(n):
        ref = [apply_hand_action(wrists[i, s], grips[i, s], actions[i, 7 * s : 7 * s + 7]) for s in (0, 1)]
        np.testing.assert_allclose(new_w[i].numpy(), np.stack([r[0] for r in ref]), atol=TOL, rtol=0)
        np.testing.assert_allclose(new_g[i].numpy(), [r[1] for r in ref], atol=TOL, rtol=0)
        want_kp = hands_keypoints(np.stack([r[0] for r in ref]), [r[1] for r in ref])
        np.testing.assert_allclose(kp[i], want_kp, atol=1e-6, rtol=0)  # reference is float32


def test_block_forward_reads_the_nearest_view_and_the_path_still_to_travel() -> None:
    far, near = torch.full((3, 6, 6), 5.0), torch.full((3, 6, 6), 5.0)
    near[0, 2:4, 2:4] = 0.2  # stream 0: a wall ahead only in the second view
    near[1, 2:4, 2:4] = 0.5  # stream 1: beyond the threshold, but within reach of a long chunk
    near[2, 0, 0] = 0.1  # stream 2: near, but outside the centre third
    nav = torch.tensor([[1.0, 0, 0, 0.3, 0, 0]] * 3, dtype=torch.float64)
    out, blocked = kin.block_forward(nav, [far, near], 0.3)
    assert blocked.tolist() == [True, False, False]
    assert out[0, FORWARD] == 0.0 and out[0, YAW] == 0.3 and torch.equal(out[1:], nav[1:])
    _, blocked = kin.block_forward(nav, [far, near], 0.3, travel_m=0.3)
    assert blocked.tolist() == [True, True, False]
    backward = nav.clone()
    backward[:, FORWARD] = -1.0
    out, blocked = kin.block_forward(backward, [near], 0.3)
    assert not blocked.any() and torch.equal(out, backward)  # backing away is never blocked
    _, alone = kin.block_forward(nav, [far], 0.3)
    assert not alone.any()
