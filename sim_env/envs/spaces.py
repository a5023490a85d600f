"""Observation and action spaces of one agent, shared by the single, vector and PettingZoo envs."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from bridge.types import HAND_DIM, NAV_DIM, NUM_NAV_KEYS
from sim_env.envs.config import EnvConfig
from sim_env.envs.tasks import GEOMETRY_BOUND_M

GRIP_INDICES = (6, 13)  # grip targets of the two hands live in [0, 1], everything else in [-1, 1]


def action_space(action_kind: str) -> spaces.Space:
    """Discrete(9) keys, Box(6) continuous navigation or Box(14) hands (ARCHITECTURE.md §4)."""
    if action_kind == "keys":
        return spaces.Discrete(NUM_NAV_KEYS)
    if action_kind == "nav":
        return spaces.Box(-1.0, 1.0, (NAV_DIM,), np.float32)
    low = -np.ones(HAND_DIM, np.float32)
    low[list(GRIP_INDICES)] = 0.0
    return spaces.Box(low, np.ones(HAND_DIM, np.float32), dtype=np.float32)


def observation_space(cfg: EnvConfig, task_fields: dict[str, spaces.Box]) -> spaces.Dict:
    """Rgb (H, W, 3) uint8, depth (H, W, 1) float32 in [0, depth_far], pose (4, 4) float32, task fields."""
    h, w = cfg.resolution
    return spaces.Dict(
        {
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, cfg.depth_far, (h, w, 1), np.float32),
            "pose": spaces.Box(-GEOMETRY_BOUND_M, GEOMETRY_BOUND_M, (4, 4), np.float32),
            **task_fields,
        }
    )
