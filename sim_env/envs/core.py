"""`BatchedSim`: backend + task + action decoding for N streams, shared by every env class.

The single env runs it with one stream, the vector env with one stream per sub-env, the
PettingZoo env with one stream per agent of one world. Steps stay on the device: actions are
decoded with table gathers and clamps, rewards and terminations come from `tasks`, and
truncation counts steps in a device tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bridge.types import InvalidArgumentError
from sim_env.envs.backends import Frames, GenerativeBackend, HostWorldBackend
from sim_env.envs.config import EnvConfig
from sim_env.envs.spaces import GRIP_INDICES, action_space, observation_space
from sim_env.envs.tasks import make_task
from sim_env.envs.world_factory import build_backend
from sim_env.kinematics import key_table

_SEED_BOUND = 2**31 - 1


class BatchedSim:
    """N = B worlds × A agents stepped together.

    Args:
        cfg: env configuration.
        num_worlds: B independent worlds (vector env sub-envs).
        agents_per_world: A agents sharing one world (PettingZoo).
        backend: an already built backend (tests); default: from ``cfg.world``.
    """

    def __init__(
        self,
        cfg: EnvConfig,
        num_worlds: int = 1,
        agents_per_world: int = 1,
        backend: GenerativeBackend | HostWorldBackend | None = None,
    ) -> None:
        self.cfg = cfg
        self.num_worlds, self.agents_per_world = int(num_worlds), int(agents_per_world)
        self.num_streams = self.num_worlds * self.agents_per_world
        self.backend = backend or build_backend(cfg, self.num_worlds, self.agents_per_world)
        self.device = torch.device(cfg.device)
        self.task = make_task(cfg, self.num_streams, self.agents_per_world, self.device)
        self.single_action_space = action_space(cfg.action_kind)
        self.single_observation_space = observation_space(cfg, self.task.observation_fields())
        self.elapsed = torch.zeros(self.num_streams, dtype=torch.int64, device=self.device)
        self.frames: Frames | None = None
        self._keys = key_table(self.device)
        self._episode_rngs = [np.random.default_rng(b) for b in range(self.num_worlds)]
        self.scene_seeds = [0] * self.num_worlds

    # ------------------------------------------------------------------ episodes
    def reset(
        self, seed: int | Sequence[int | None] | None = None, world_mask: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        """Starts new episodes in the masked worlds (default all).

        Args:
            seed: an int (world b's scene seed is ``seed + b``), one seed (or None) per world, or None.
                Without a seed each world draws its next scene seed from its own generator (seeded
                by its last explicit seed), so seeded runs stay reproducible across autoresets.
            world_mask: (B,) bool, the worlds to reset; None: all.
        """
        mask = np.ones(self.num_worlds, bool) if world_mask is None else np.asarray(world_mask, bool)
        if mask.shape != (self.num_worlds,):
            raise InvalidArgumentError(f"reset_mask must have shape ({self.num_worlds},), got {mask.shape}")
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + b for b in range(self.num_worlds)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_worlds:
                raise InvalidArgumentError(
                    f"seed must be an int or {self.num_worlds} seeds, got {len(seeds)}"
                )
        for b in np.flatnonzero(mask):
            if seeds[b] is not None:
                self._episode_rngs[b] = np.random.default_rng(int(seeds[b]))
                self.scene_seeds[b] = int(seeds[b])
            else:
                self.scene_seeds[b] = int(self._episode_rngs[b].integers(_SEED_BOUND))
        frames, facts = self.backend.reset(self.scene_seeds, mask)
        self.task.reset(frames, facts, self.scene_seeds, mask)
        stream_mask = torch.as_tensor(np.repeat(mask, self.agents_per_world), device=self.device)
        self.elapsed.masked_fill_(stream_mask, 0)
        self.frames = frames
        return self.observe(frames)

    def step(
        self, actions: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One step of every stream: (obs, reward, terminated, truncated, info), all (N, ...) tensors."""
        nav, hand = self.decode_actions(actions)
        frames = self.backend.step(nav, hand)
        reward, terminated, info = self.task.step(frames)
        self.elapsed += 1
        horizon = self.cfg.max_episode_steps
        truncated = (
            (self.elapsed >= horizon) & ~terminated if horizon is not None else torch.zeros_like(terminated)
        )
        self.frames = frames
        info = {"collided": frames["collided"].clone(), **info}
        return self.observe(frames), reward, terminated, truncated, info

    def decode_actions(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N,) keys / (N, 6) nav / (N, 14) hands → (nav (N, 6), hand (N, 14) or None), clamped."""
        actions = torch.as_tensor(actions, device=self.device)
        n = self.num_streams
        if self.cfg.action_kind == "keys":
            return self._keys[actions.reshape(n).long()], None
        if self.cfg.action_kind == "nav":
            return actions.reshape(n, -1).double().clamp(-1.0, 1.0), None
        hand = actions.reshape(n, -1).double().clamp(-1.0, 1.0)
        hand[:, list(GRIP_INDICES)] = hand[:, list(GRIP_INDICES)].clamp(0.0, 1.0)
        return torch.zeros(n, 6, dtype=torch.float64, device=self.device), hand

    def observe(self, frames: Frames) -> dict[str, torch.Tensor]:
        """(N, ...) observation tensors (copies: the backend's buffers change in place)."""
        depth = torch.nan_to_num(frames["depth"].float(), posinf=self.cfg.depth_far).clamp(
            0.0, self.cfg.depth_far
        )
        return {
            "rgb": frames["rgb"].clone(),
            "depth": depth[..., None],
            "pose": frames["pose"].float(),
            **self.task.observe(frames),
        }

    def close(self) -> None:
        """Closes the backend's worlds."""
        self.backend.close()
