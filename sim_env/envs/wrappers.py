"""Small wrappers around the GenWorld envs: keyboard keys, numpy views of the vector env.

Rendering needs no wrapper: the vector env's `render()` returns one frame per sub-env, the layout
Gymnasium's `gymnasium.wrappers.vector.RecordVideo` tiles into a video.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.vector import VectorEnv

from bridge.types import InvalidArgumentError

# WorldScape keys (ARCHITECTURE.md §4): space/empty = noop, WASD move, Q/E yaw, R/F pitch.
KEY_BINDINGS: dict[str, int] = {"": 0, " ": 0, "w": 1, "a": 2, "s": 3, "d": 4, "q": 5, "e": 6, "r": 7, "f": 8}


class KeyboardActions(gym.ActionWrapper):
    """Lets a person (or a script) drive a Discrete(9) env with keyboard characters ("w", "q" ...)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Discrete) or env.action_space.n != len(
            set(KEY_BINDINGS.values())
        ):
            raise InvalidArgumentError("KeyboardActions needs a Discrete(9) env (GenWorld/Navigate-v0)")
        self.action_space = gym.spaces.Text(max_length=1, min_length=0, charset="wasdqerfWASDQERF ")

    def action(self, action: Any) -> int:
        """The key index of one character (case-insensitive)."""
        key = str(action).lower()
        if key not in KEY_BINDINGS:
            raise InvalidArgumentError(f"action: unknown key {action!r}; keys are {sorted(KEY_BINDINGS)}")
        return KEY_BINDINGS[key]


def vector_to_numpy(env: VectorEnv) -> VectorEnv:
    """The torch vector env seen through numpy (observations, rewards, infos; numpy actions accepted).

    Uses Gymnasium's `ArrayConversion` (needs `array-api-compat`): for numpy-only consumers such as
    checkers or SB3-style code. Each call copies device tensors to the host.
    """
    import numpy as np
    import torch
    from gymnasium.wrappers.vector import ArrayConversion

    return ArrayConversion(env, env_xp=torch, target_xp=np)


def numpy_to_torch(env: VectorEnv, device: str | None = None) -> VectorEnv:
    """A numpy vector env (e.g. `SyncVectorEnv` of MuJoCo envs) seen through torch on ``device``."""
    import numpy as np
    import torch
    from gymnasium.wrappers.vector import ArrayConversion

    return ArrayConversion(env, env_xp=np, target_xp=torch, target_device=device)
