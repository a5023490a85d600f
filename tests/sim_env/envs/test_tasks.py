"""Reward formulas of the batched tasks on hand-made frames (exact geometry, known answers)."""

import numpy as np
import pytest
import torch

from sim_env.envs.backends import SceneFacts
from sim_env.envs.config import EnvConfig
from sim_env.envs.tasks import ExplorationTask, HandReachTask, PointGoalTask

H = W = 16
K = torch.tensor([[8.0, 0.0, 7.5], [0.0, 8.0, 7.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
# OpenCV camera looking along world +x, image-down = world -z.
R_LOOK_X = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


def frames(positions, depth=2.0, collided=False, keypoints=None, rotation=R_LOOK_X):
    n = len(positions)
    pose = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    pose[:, :3, :3] = rotation
    pose[:, :3, 3] = torch.tensor(positions, dtype=torch.float64)
    return {
        "rgb": torch.zeros(n, H, W, 3, dtype=torch.uint8),
        "depth": torch.full((n, H, W), depth, dtype=torch.float32),
        "pose": pose,
        "K": K.repeat(n, 1, 1),
        "collided": torch.full((n,), collided),
        "hand_keypoints": torch.zeros(n, 2, 21, 3) if keypoints is None else keypoints,
    }


def facts(candidates=(), objects=()):
    return SceneFacts(np.array(candidates, float).reshape(-1, 3), np.array(objects, float).reshape(-1, 3))


def test_point_goal_progress_collision_and_success():
    cfg = EnvConfig(world="mujoco", goal_distance=(2.0, 4.0), success_radius=0.5)
    task = PointGoalTask(cfg, 1, 1, torch.device("cpu"))
    start = frames([[0.0, 0.0, 1.5]])
    # Only one candidate lies within [2, 4] m: it must be the goal, at the start's height.
    task.reset(start, [facts([[0.5, 0.0, 1.5], [3.0, 0.0, 1.2], [9.0, 0.0, 1.5]])], [0], np.array([True]))
    assert torch.allclose(task.goal, torch.tensor([[3.0, 0.0, 1.5]], dtype=torch.float64))
    torch.testing.assert_close(task.observe(start)["goal"], torch.tensor([[3.0, 0.0, 3.0]]))
    reward, terminated, info = task.step(frames([[1.0, 0.0, 1.5]]))
    assert reward.item() == pytest.approx(cfg.progress_scale * 1.0)
    assert not terminated.item()
    reward, _, _ = task.step(frames([[1.0, 0.0, 1.5]], collided=True))
    assert reward.item() == pytest.approx(-cfg.collision_penalty)
    reward, terminated, info = task.step(frames([[2.8, 0.0, 1.5]]))
    assert terminated.item() and info["success"].item()
    assert reward.item() == pytest.approx(cfg.progress_scale * 1.8 + cfg.success_bonus)


def test_point_goal_goal_vector_is_in_the_heading_frame():
    task = PointGoalTask(EnvConfig(world="mujoco"), 1, 1, torch.device("cpu"))
    start = frames([[0.0, 0.0, 1.5]])
    task.reset(start, [facts([[0.0, -2.0, 1.5]])], [0], np.array([True]))  # 2 m to the camera's right
    torch.testing.assert_close(task.observe(start)["goal"], torch.tensor([[0.0, 2.0, 2.0]]))


def test_masked_reset_leaves_other_worlds_goals_alone():
    task = PointGoalTask(EnvConfig(world="mujoco", goal_distance=(0.0, 10.0)), 2, 1, torch.device("cpu"))
    start = frames([[0.0, 0.0, 1.5], [0.0, 0.0, 1.5]])
    task.reset(start, [facts([[2.0, 0.0, 1.5]]), facts([[3.0, 0.0, 1.5]])], [0, 1], np.array([True, True]))
    task.reset(start, [facts([[5.0, 0.0, 1.5]]), None], [0, 1], np.array([True, False]))
    assert task.goal[:, 0].tolist() == [5.0, 3.0]


def test_exploration_rewards_only_new_voxels():
    cfg = EnvConfig(world="mujoco", task="explore", action_kind="nav", explore_voxel=0.25)
    task = ExplorationTask(cfg, 1, 1, torch.device("cpu"))
    here = frames([[0.0, 0.0, 1.5]])
    task.reset(here, [None], [0], np.array([True]))
    first = int(task.count.item())
    assert first > 0
    reward, terminated, info = task.step(here)  # the same view again: nothing new
    assert info["new_voxels"].item() == 0 and reward.item() == 0.0 and not terminated.item()
    # Turning 90 degrees left shows a different wall.
    reward, _, info = task.step(frames([[0.0, 0.0, 1.5]], rotation=_look_along([0.0, 1.0, 0.0])))
    assert info["new_voxels"].item() > 0
    assert reward.item() == pytest.approx(cfg.explore_reward * info["new_voxels"].item())
    # Nothing within explore_max_depth: no voxels at all.
    task.reset(frames([[0.0, 0.0, 1.5]], depth=float("inf")), [None], [0], np.array([True]))
    assert task.count.item() == 0


def _look_along(direction):
    z = torch.tensor(direction, dtype=torch.float64)
    x = torch.linalg.cross(z, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    return torch.stack([x, torch.linalg.cross(z, x), z], dim=1)


def test_hand_reach_distance_progress_and_success():
    cfg = EnvConfig(world="mujoco", task="reach", action_kind="hand", scene="tabletop", reach_radius=0.05)
    task = HandReachTask(cfg, 1, 1, torch.device("cpu"))
    keypoints = torch.zeros(1, 2, 21, 3)
    keypoints[:, 0, :, 2] = 0.3  # left palm 0.3 m ahead of the camera, right palm far away
    keypoints[:, 1, :, 0] = 5.0
    # Target 0.5 m ahead along world +x = the camera's optical axis.
    task.reset(
        frames([[0.0, 0.0, 1.0]], keypoints=keypoints),
        [facts(objects=[[0.5, 0.0, 1.0]])],
        [0],
        np.array([True]),
    )
    torch.testing.assert_close(
        task.observe(frames([[0.0, 0.0, 1.0]]))["target"], torch.tensor([[0.0, 0.0, 0.5]])
    )
    closer = keypoints.clone()
    closer[:, 0, :, 2] = 0.48
    reward, terminated, info = task.step(frames([[0.0, 0.0, 1.0]], keypoints=closer))
    assert terminated.item() and info["success"].item()
    assert reward.item() == pytest.approx(cfg.progress_scale * 0.18 + cfg.success_bonus, abs=1e-6)
