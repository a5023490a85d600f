"""Tasks and rewards, batched in torch over N streams, from exact geometry.

The agent's pose is exact in every world (the generative world integrates it, it does not
guess it), so rewards use poses, the scene's own facts and (for exploration) the observed
depth. The same code serves the single env (N = 1), the vector env (N = num_envs) and the
PettingZoo env (N = agents): nothing here reads a value back to the host during a step.
Formulas are documented in docs/envs.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from bridge.types import HAND_KEYPOINTS, NUM_HANDS
from sim_env.envs.backends import Frames, SceneFacts
from sim_env.envs.config import EnvConfig

# Exploration coverage: voxels are hashed into this many buckets per stream (a fixed-size bitmap:
# no data-dependent shapes; collisions make the count a slight under-estimate).
EXPLORE_BUCKETS = 1 << 16
EXPLORE_PIXEL_STRIDE = 4  # every 4th pixel in each direction is unprojected
_HASH_PRIMES = (73856093, 19349663, 83492791)
REACH_FALLBACK_AHEAD_M = 0.45  # target in front of the camera when the scene has no objects
# Finite bounds for geometric fields (Gymnasium warns on infinite ones): metres, far beyond any scene.
GEOMETRY_BOUND_M = 1.0e4


def _box(
    shape: tuple[int, ...], low: float = -GEOMETRY_BOUND_M, high: float = GEOMETRY_BOUND_M
) -> spaces.Box:
    return spaces.Box(low, high, shape, np.float32)


def heading_components(pose: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """(N, 3) [forward, right, horizontal norm] of world vectors (N, 3) in the cameras' heading frame."""
    forward = pose[:, :3, 2].clone()
    forward[:, 2] = 0.0
    forward = forward / forward.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    right = torch.stack([forward[:, 1], -forward[:, 0], torch.zeros_like(forward[:, 0])], dim=-1)
    flat = vector.clone()
    flat[:, 2] = 0.0
    return torch.stack([(flat * forward).sum(-1), (flat * right).sum(-1), flat.norm(dim=-1)], dim=-1)


def world_to_camera(pose: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 3) world points in the cameras' OpenCV frames (poses (N, 4, 4) camera-to-world)."""
    R, t = pose[:, :3, :3], pose[:, :3, 3]
    return ((points - t)[:, None, :] @ R).squeeze(1)


class Task:
    """Base: per-stream episode state on the device, rewards from `Frames`.

    Args:
        cfg: env configuration (reward constants).
        num_streams: N.
        agents_per_world: A (stream i belongs to world i // A).
        device: torch device of the state.
    """

    name = "base"

    def __init__(self, cfg: EnvConfig, num_streams: int, agents_per_world: int, device: torch.device) -> None:
        self.cfg, self.n, self.a, self.device = cfg, num_streams, agents_per_world, device

    def observation_fields(self) -> dict[str, spaces.Box]:
        """The task's entries of one agent's observation Dict."""
        return {}

    def reset(
        self, frames: Frames, facts: Sequence[SceneFacts | None], seeds: Sequence[int], world_mask: np.ndarray
    ) -> None:
        """Starts episodes of the worlds in ``world_mask`` (host work: reset time only)."""

    def observe(self, frames: Frames) -> dict[str, torch.Tensor]:
        """(N, ...) float32 task fields of the observation."""
        return {}

    def step(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(reward float32 (N,), terminated bool (N,), info tensors) after a step."""
        raise NotImplementedError

    def _stream_mask(self, world_mask: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.repeat(np.asarray(world_mask, bool), self.a), device=self.device)

    def _assign(self, buffer: torch.Tensor, values: np.ndarray, world_mask: np.ndarray) -> None:
        keep = self._stream_mask(world_mask).reshape(-1, *([1] * (buffer.dim() - 1)))
        new = torch.as_tensor(values, dtype=buffer.dtype, device=self.device)
        buffer.copy_(torch.where(keep, new, buffer))


class PointGoalTask(Task):
    """Walk to a goal position: progress reward, success radius, collision penalty."""

    name = "pointgoal"

    def __init__(self, cfg: EnvConfig, num_streams: int, agents_per_world: int, device: torch.device) -> None:
        super().__init__(cfg, num_streams, agents_per_world, device)
        self.goal = torch.zeros(num_streams, 3, dtype=torch.float64, device=device)
        self.previous_distance = torch.zeros(num_streams, dtype=torch.float64, device=device)

    def observation_fields(self) -> dict[str, spaces.Box]:
        """As `Task.observation_fields`."""
        return {"goal": _box((3,))}

    def reset(
        self, frames: Frames, facts: Sequence[SceneFacts | None], seeds: Sequence[int], world_mask: np.ndarray
    ) -> None:
        """As `Task.reset`."""
        starts = frames["pose"][:, :3, 3].cpu().numpy()
        goals = np.zeros((self.n, 3))
        for b in np.flatnonzero(world_mask):
            rng = np.random.default_rng([int(seeds[b]), 1])
            for k in range(self.a):
                i = b * self.a + k
                goals[i] = self._choose_goal(starts[i], facts[b] or SceneFacts.unknown(), rng)
        self._assign(self.goal, goals, world_mask)
        distance = heading_components(frames["pose"], self.goal - frames["pose"][:, :3, 3])[:, 2]
        self._assign(self.previous_distance, distance.cpu().numpy(), world_mask)

    def _choose_goal(self, start: np.ndarray, facts: SceneFacts, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.cfg.goal_distance
        candidates = facts.goal_candidates
        if len(candidates):
            d = np.linalg.norm((candidates - start)[:, :2], axis=-1)
            ok = np.flatnonzero((d >= lo) & (d <= hi))
            pick = rng.choice(ok) if len(ok) else int(np.argmin(np.abs(d - hi)))
            return np.array([*candidates[pick, :2], start[2]])
        bearing, distance = rng.uniform(0, 2 * np.pi), rng.uniform(lo, hi)
        return start + distance * np.array([np.cos(bearing), np.sin(bearing), 0.0])

    def observe(self, frames: Frames) -> dict[str, torch.Tensor]:
        """As `Task.observe`."""
        pose = frames["pose"]
        return {"goal": heading_components(pose, self.goal - pose[:, :3, 3]).float()}

    def step(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """As `Task.step`."""
        cfg, pose = self.cfg, frames["pose"]
        distance = heading_components(pose, self.goal - pose[:, :3, 3])[:, 2]
        success = distance < cfg.success_radius
        reward = (
            cfg.progress_scale * (self.previous_distance - distance)
            - cfg.collision_penalty * frames["collided"].double()
            + cfg.success_bonus * success.double()
        )
        self.previous_distance.copy_(distance)
        return reward.float(), success, {"distance": distance.float(), "success": success}


class ExplorationTask(Task):
    """Observe new space: reward per newly observed voxel of the depth's surfaces."""

    name = "explore"

    def __init__(self, cfg: EnvConfig, num_streams: int, agents_per_world: int, device: torch.device) -> None:
        super().__init__(cfg, num_streams, agents_per_world, device)
        # One extra bucket collects invalid pixels and is never counted.
        self.seen = torch.zeros(num_streams, EXPLORE_BUCKETS + 1, dtype=torch.bool, device=device)
        self.count = torch.zeros(num_streams, dtype=torch.int64, device=device)

    def observation_fields(self) -> dict[str, spaces.Box]:
        """As `Task.observation_fields`."""
        return {"explored": _box((1,), 0.0, float(EXPLORE_BUCKETS))}

    def reset(
        self, frames: Frames, facts: Sequence[SceneFacts | None], seeds: Sequence[int], world_mask: np.ndarray
    ) -> None:
        """As `Task.reset`."""
        keep = self._stream_mask(world_mask)
        self.seen.masked_fill_(keep[:, None], False)
        self.count.masked_fill_(keep, 0)
        fresh = self._observe_voxels(frames)
        self.seen.copy_(torch.where(keep[:, None], fresh, self.seen))
        self.count.copy_(self.seen[:, :EXPLORE_BUCKETS].sum(-1))

    def _observe_voxels(self, frames: Frames) -> torch.Tensor:
        """``seen`` with the voxels of the current frames added."""
        depth, K, pose = frames["depth"], frames["K"], frames["pose"]
        s = EXPLORE_PIXEL_STRIDE
        d = depth[:, s // 2 :: s, s // 2 :: s].double()
        v, u = torch.meshgrid(
            torch.arange(s // 2, depth.shape[1], s, device=depth.device, dtype=torch.float64),
            torch.arange(s // 2, depth.shape[2], s, device=depth.device, dtype=torch.float64),
            indexing="ij",
        )
        fx, fy, cx, cy = (K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2])
        valid = torch.isfinite(d) & (d > 0) & (d <= self.cfg.explore_max_depth)
        d = torch.where(valid, d, 0.0)
        x = (u - cx[:, None, None]) / fx[:, None, None] * d
        y = (v - cy[:, None, None]) / fy[:, None, None] * d
        cam = torch.stack([x, y, d], dim=-1).flatten(1, 2)  # (N, P, 3)
        world = cam @ pose[:, :3, :3].transpose(1, 2) + pose[:, None, :3, 3]
        cell = torch.floor(world / self.cfg.explore_voxel).long()
        h = (
            (cell[..., 0] * _HASH_PRIMES[0])
            ^ (cell[..., 1] * _HASH_PRIMES[1])
            ^ (cell[..., 2] * _HASH_PRIMES[2])
        )
        bucket = torch.where(valid.flatten(1), h.remainder(EXPLORE_BUCKETS), EXPLORE_BUCKETS)
        return self.seen.clone().scatter_(1, bucket, True)

    def observe(self, frames: Frames) -> dict[str, torch.Tensor]:
        """As `Task.observe`."""
        return {"explored": self.count.float()[:, None]}

    def step(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """As `Task.step`."""
        self.seen.copy_(self._observe_voxels(frames))
        count = self.seen[:, :EXPLORE_BUCKETS].sum(-1)
        new = count - self.count
        self.count.copy_(count)
        reward = (
            self.cfg.explore_reward * new.double() - self.cfg.collision_penalty * frames["collided"].double()
        )
        terminated = torch.zeros_like(frames["collided"])
        return reward.float(), terminated, {"new_voxels": new, "explored": count}


class HandReachTask(Task):
    """Bring a hand to a target object: progress reward, success when a palm is within reach_radius."""

    name = "reach"

    def __init__(self, cfg: EnvConfig, num_streams: int, agents_per_world: int, device: torch.device) -> None:
        super().__init__(cfg, num_streams, agents_per_world, device)
        self.target = torch.zeros(num_streams, 3, dtype=torch.float64, device=device)
        self.previous_distance = torch.zeros(num_streams, dtype=torch.float64, device=device)

    def observation_fields(self) -> dict[str, spaces.Box]:
        """As `Task.observation_fields`."""
        return {"target": _box((3,)), "hand_keypoints": _box((NUM_HANDS, HAND_KEYPOINTS, 3))}

    def reset(
        self, frames: Frames, facts: Sequence[SceneFacts | None], seeds: Sequence[int], world_mask: np.ndarray
    ) -> None:
        """As `Task.reset`."""
        poses = frames["pose"].cpu().numpy()
        targets = np.zeros((self.n, 3))
        for b in np.flatnonzero(world_mask):
            rng = np.random.default_rng([int(seeds[b]), 2])
            objects = (facts[b] or SceneFacts.unknown()).objects
            for k in range(self.a):
                i = b * self.a + k
                ahead = poses[i, :3, 3] + REACH_FALLBACK_AHEAD_M * poses[i, :3, 2]
                targets[i] = objects[rng.integers(len(objects))] if len(objects) else ahead
        self._assign(self.target, targets, world_mask)
        self._assign(self.previous_distance, self._distance(frames).cpu().numpy(), world_mask)

    def _distance(self, frames: Frames) -> torch.Tensor:
        target_cam = world_to_camera(frames["pose"], self.target)  # (N, 3)
        palms = frames["hand_keypoints"].double().mean(dim=2)  # (N, 2, 3)
        return (palms - target_cam[:, None]).norm(dim=-1).amin(dim=-1)

    def observe(self, frames: Frames) -> dict[str, torch.Tensor]:
        """As `Task.observe`."""
        return {
            "target": world_to_camera(frames["pose"], self.target).float(),
            "hand_keypoints": frames["hand_keypoints"].float(),
        }

    def step(self, frames: Frames) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """As `Task.step`."""
        cfg = self.cfg
        distance = self._distance(frames)
        success = distance < cfg.reach_radius
        reward = (
            cfg.progress_scale * (self.previous_distance - distance) + cfg.success_bonus * success.double()
        )
        self.previous_distance.copy_(distance)
        return reward.float(), success, {"distance": distance.float(), "success": success}


TASKS: dict[str, type[Task]] = {t.name: t for t in (PointGoalTask, ExplorationTask, HandReachTask)}


def make_task(cfg: EnvConfig, num_streams: int, agents_per_world: int, device: torch.device) -> Task:
    """The task ``cfg.task`` for N streams."""
    return TASKS[cfg.task](cfg, num_streams, agents_per_world, device)
