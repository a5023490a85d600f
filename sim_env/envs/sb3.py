"""Stable-Baselines3 view of the batched vector env: SB3 algorithms on one batched forward per step.

SB3 wraps single envs in `DummyVecEnv`, which steps them one by one; `SB3VecEnv` instead
exposes `GenWorldVectorEnv` (SAME_STEP autoreset, SB3's convention) as an SB3 `VecEnv`:
numpy observations, per-env info dicts with ``terminal_observation`` and
``TimeLimit.truncated``. Stable-Baselines3 is imported only when this module is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from bridge.types import InvalidArgumentError
from sim_env.envs.vector_env import GenWorldVectorEnv


def _host(tree: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in tree.items()}


class SB3VecEnv(VecEnv):
    """An SB3 `VecEnv` over a SAME_STEP `GenWorldVectorEnv`.

    Args:
        env: the vector env; it must use AutoresetMode.SAME_STEP.
    """

    def __init__(self, env: GenWorldVectorEnv) -> None:
        if env.autoreset_mode != AutoresetMode.SAME_STEP:
            raise InvalidArgumentError(
                "SB3VecEnv needs autoreset_mode=SAME_STEP (SB3 resets in the same step)"
            )
        self.env = env
        self._actions: Any = None
        self._seed: int | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> dict[str, np.ndarray]:
        """Resets every sub-env (seeded by the last `seed` call)."""
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return _host(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Stores the actions for `step_wait`."""
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """One batched step; ended sub-envs carry their last observation in their info."""
        obs, reward, terminated, truncated, info = self.env.step(torch.as_tensor(self._actions))
        term, trunc = terminated.cpu().numpy(), truncated.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if "final_obs" in info:
            final = _host(info["final_obs"])
            for i in np.flatnonzero(term | trunc):
                infos[i]["terminal_observation"] = {k: v[i] for k, v in final.items()}
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
        return _host(obs), reward.cpu().numpy(), term | trunc, infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds the next reset (sub-env i gets ``seed + i``)."""
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def close(self) -> None:
        """Closes the vector env."""
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """An attribute of the (single, batched) env, once per index."""
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Sets an attribute of the batched env (shared by every index)."""
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        """Calls a method of the batched env once, reporting its result per index."""
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Sub-envs are never Gymnasium-wrapped individually."""
        return [False] * len(self._get_indices(indices))
