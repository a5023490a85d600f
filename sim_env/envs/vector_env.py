"""`GenWorldVectorEnv`: N sub-envs in one batched world model, torch tensors on the device.

`gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", device=...)` builds
it. Every step is ONE batched forward over all sub-envs (`BatchedSim` with B = N worlds);
observations, rewards, terminations, truncations and infos are (N, ...) tensors on the device.

Autoreset (`autoreset_mode`, fixed at construction and stored in ``metadata``):

- NEXT_STEP (default): a sub-env that ended at step t is reset by step t + 1, which ignores its
  action and returns its first observation with reward 0. The end mask of step t is copied to
  the host asynchronously (a CUDA event) and read at step t + 1, so the step itself never waits.
- SAME_STEP: a sub-env that ends is reset inside the same step; the returned observation is the
  new episode's first one, and ``info["final_obs"]`` / ``info["final_info"]`` (with
  ``_final_obs`` / ``_final_info`` masks) hold the last one. Deciding which worlds to reset needs
  the end mask on the host, so this mode reads N booleans back every step.
- DISABLED: never resets by itself; call ``reset(options={"reset_mask": mask})``.

Resetting a sub-env re-renders its MuJoCo reference scene on the host (reset time only) and
resets just that world's streams in the runtime (`GenerativeRuntime.reset_batch(world_mask=...)`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from bridge.types import InvalidArgumentError
from sim_env.envs.config import EnvConfig
from sim_env.envs.core import BatchedSim
from sim_env.envs.single_env import RENDER_FPS

Tensors = dict[str, torch.Tensor]


def parse_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An `AutoresetMode` from the enum, its value ("NextStep") or its name ("NEXT_STEP")."""
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if mode in (member.value, member.name, member.name.lower()):
            return member
    raise InvalidArgumentError(
        f"autoreset_mode must be one of {[m.name for m in AutoresetMode]}, got {mode!r}"
    )


class _DeferredMask:
    """A device bool mask copied to the host without waiting; read one step later."""

    def __init__(self, num: int) -> None:
        self._host = torch.zeros(num, dtype=torch.bool)
        self._event: torch.cuda.Event | None = None

    def put(self, mask: torch.Tensor) -> None:
        if mask.device.type == "cuda":
            self._host = mask.to("cpu", non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = mask.clone()

    def get(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy().copy()

    def clear(self, mask: np.ndarray | None = None) -> None:
        if self._event is not None:
            self._event.synchronize()  # the pending copy must land before it is edited
        self._event = None
        self._host = torch.zeros_like(self._host) if mask is None else self._host & ~torch.as_tensor(mask)


class GenWorldVectorEnv(VectorEnv):
    """N GenWorld sub-envs stepped in one batched forward.

    Args:
        num_envs: N.
        autoreset_mode: AutoresetMode (or its name/value); NEXT_STEP by default.
        render_mode: None or "rgb_array" (a tuple of N frames, as the vector `RecordVideo` expects).
        **kwargs: the fields of `EnvConfig` (world, checkpoint, device, max_episode_steps, task ...).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": RENDER_FPS,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or int(num_envs) != num_envs or num_envs < 1:
            raise InvalidArgumentError(f"num_envs must be a positive int, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise InvalidArgumentError(
                f"render_mode must be None or 'rgb_array' for the vector env, got {render_mode!r}"
            )
        self.cfg = EnvConfig.from_kwargs(**kwargs)
        if self.cfg.shadow is not None:
            raise InvalidArgumentError("shadow: use the single env or the PettingZoo env for shadow mode")
        self.num_envs = int(num_envs)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.sim = BatchedSim(self.cfg, num_worlds=self.num_envs)
        self.device = self.sim.device
        self.single_observation_space = self.sim.single_observation_space
        self.single_action_space = self.sim.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._ended = _DeferredMask(self.num_envs)
        self._obs: Tensors | None = None

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Tensors, dict[str, Any]]:
        """Resets all sub-envs (seeds ``seed + i``), or those in ``options["reset_mask"]``."""
        options = dict(options or {})
        unknown = set(options) - {"reset_mask"}
        if unknown:
            raise InvalidArgumentError(f"options has unknown keys {sorted(unknown)}")
        mask = options.get("reset_mask")
        if mask is not None:
            mask = torch.as_tensor(mask).cpu().numpy().astype(bool)
            if mask.shape != (self.num_envs,):
                raise InvalidArgumentError(
                    f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}"
                )
        if seed is not None and mask is None:
            self._np_random_seed = seed if isinstance(seed, int) else None
        self._obs = self.sim.reset(seed=seed, world_mask=mask)
        self._ended.clear(mask)
        return self._obs, {}

    def step(self, actions: Any) -> tuple[Tensors, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One batched step of every sub-env (see the module docstring for autoreset)."""
        if self._obs is None:
            raise InvalidArgumentError("call reset() before step()")
        actions = torch.as_tensor(actions, device=self.device)
        obs, reward, terminated, truncated, info = self.sim.step(actions)
        infos = _with_masks(info)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            restart = self._ended.get()
            if restart.any():
                obs = self.sim.reset(world_mask=restart)
                keep = torch.as_tensor(~restart, device=self.device)
                reward = torch.where(keep, reward, 0.0)
                terminated, truncated = terminated & keep, truncated & keep
            self._ended.put(terminated | truncated)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            ended = terminated | truncated
            ended_host = ended.cpu().numpy()
            if ended_host.any():
                infos["final_obs"], infos["_final_obs"] = obs, ended
                infos["final_info"], infos["_final_info"] = _with_masks(info), ended
                obs = self.sim.reset(world_mask=ended_host)
        self._obs = obs
        return obs, reward, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One (H, W, 3) uint8 frame per sub-env (host copies), for `RecordVideo`."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return tuple(self._obs["rgb"].cpu().numpy())

    def close_extras(self, **kwargs: Any) -> None:
        """Closes the worlds."""
        self.sim.close()


def _with_masks(info: Tensors) -> dict[str, Any]:
    """Gymnasium's vector info layout: every key as an (N, ...) array plus an all-True ``_key`` mask."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        out[key] = value
        out[f"_{key}"] = torch.ones(value.shape[0], dtype=torch.bool, device=value.device)
    return out
