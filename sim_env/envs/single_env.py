"""`GenWorldEnv`: one agent in one world as a `gymnasium.Env` with numpy observations.

It runs the shared batched core (`BatchedSim`) with one stream and converts to numpy at the
boundary, so it passes Gymnasium's and Stable-Baselines3's `check_env` and behaves exactly like
sub-env 0 of the vector env with the same seed.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from bridge.types import InvalidArgumentError
from bridge.viz import side_by_side
from sim_env.envs.config import EnvConfig
from sim_env.envs.core import BatchedSim
from sim_env.envs.shadow import Shadow

RENDER_FPS = 10


def to_numpy(tree: dict[str, torch.Tensor], index: int) -> dict[str, np.ndarray]:
    """Row ``index`` of every (N, ...) tensor, as numpy arrays."""
    return {k: v[index].detach().cpu().numpy() for k, v in tree.items()}


class GenWorldEnv(gym.Env):
    """A GenWorld env (ids GenWorld/Navigate-v0, NavigateContinuous-v0, Manipulate-v0).

    Args:
        render_mode: None, "rgb_array" (the frame; generated | ground truth with a shadow) or "human".
        max_episode_steps: truncation inside the env; None leaves it to `gymnasium.make`'s TimeLimit.
        **kwargs: the fields of `EnvConfig` (world, checkpoint, device, resolution, shadow, task ...).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": RENDER_FPS}

    def __init__(
        self, render_mode: str | None = None, max_episode_steps: int | None = None, **kwargs: Any
    ) -> None:
        self.cfg = EnvConfig.from_kwargs(
            render_mode=render_mode, max_episode_steps=max_episode_steps, **kwargs
        )
        self.render_mode = render_mode
        self.sim = BatchedSim(self.cfg)
        self.observation_space = self.sim.single_observation_space
        self.action_space = self.sim.single_action_space
        self.shadow = Shadow(self.cfg.shadow, self.cfg) if self.cfg.shadow else None
        self._obs: dict[str, np.ndarray] | None = None
        self._viewer = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Starts an episode; the scene (and the generative noise) are functions of the seed."""
        super().reset(seed=seed)
        if options:
            raise InvalidArgumentError(f"options: GenWorldEnv.reset takes none, got {sorted(options)}")
        obs = to_numpy(self.sim.reset(seed=seed), 0)
        info: dict[str, Any] = {"scene_seed": self.sim.scene_seeds[0]}
        if self.shadow is not None:
            self.shadow.reset(self.sim.scene_seeds[0])
            info |= self._shadow_info(obs)
        self._obs = obs
        if self.render_mode == "human":
            self.render()
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One step with an action from `action_space`."""
        if self._obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        array = np.asarray(action)
        if not self.action_space.contains(array.astype(self.action_space.dtype)) or not np.all(
            np.isfinite(array)
        ):
            raise InvalidArgumentError(f"action {action!r} is not in the action space {self.action_space}")
        obs_t, reward, terminated, truncated, info_t = self.sim.step(torch.as_tensor(array)[None])
        obs = to_numpy(obs_t, 0)
        info: dict[str, Any] = {k: v.item() for k, v in to_numpy(info_t, 0).items()}
        if self.shadow is not None:
            start = time.perf_counter()
            hand = array[None].astype(np.float64) if self.cfg.action_kind == "hand" else None
            self.shadow.sync(self.sim.frames["pose"].cpu().numpy(), hand)
            info |= self._shadow_info(obs) | {"shadow_seconds": time.perf_counter() - start}
        self._obs = obs
        if self.render_mode == "human":
            self.render()
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def _shadow_info(self, obs: dict[str, np.ndarray]) -> dict[str, Any]:
        truth = self.shadow.latest[0]
        metrics = self.shadow.metrics([obs["rgb"]], [obs["depth"]])
        return {
            "gt_rgb": truth.rgb,
            "gt_depth": truth.depth[..., None],
            "psnr": float(metrics["psnr"][0]),
            "depth_error": float(metrics["depth_error"][0]),
        }

    def render(self) -> np.ndarray | None:
        """The current frame (rgb_array) or a window (human)."""
        if self._obs is None or self.render_mode is None:
            return None
        frame = self._obs["rgb"]
        if self.shadow is not None:
            frame = side_by_side([frame, self.shadow.latest[0].rgb])
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        if self._viewer is None:
            plt.ion()
            self._viewer = plt.imshow(frame)
            plt.axis("off")
        else:
            self._viewer.set_data(frame)
        plt.pause(1.0 / RENDER_FPS)

    def close(self) -> None:
        """Closes the worlds (and the shadow)."""
        self.sim.close()
        if self.shadow is not None:
            self.shadow.close()
        super().close()
