"""PettingZoo `ParallelEnv`: N agents in ONE generated world, sharing its memory.

`parallel_env(num_agents=N, ...)` runs the shared batched core with one world of N agents, so
all agents are generated in one batched forward and write into (and read from) the same
point-cloud memory: what one agent has seen conditions what the others see. Every agent has the
task of the env (its own goal / target / coverage); agents that terminate leave ``agents`` and
take the noop until the episode ends (when all have left, or at truncation).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from bridge.types import InvalidArgumentError
from bridge.viz import side_by_side
from sim_env.envs.config import EnvConfig
from sim_env.envs.core import BatchedSim
from sim_env.envs.shadow import Shadow
from sim_env.envs.single_env import RENDER_FPS


class GenWorldParallelEnv(ParallelEnv):
    """Several agents in one GenWorld world (see the module docstring).

    Args:
        num_agents: agents of the world (agent_0 ... agent_{N-1}).
        render_mode: None or "rgb_array" (all agents' frames side by side).
        **kwargs: the fields of `EnvConfig` (world, action_kind, task, scene, shadow ...).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "genworld_parallel_v0",
        "render_modes": ["rgb_array"],
        "render_fps": RENDER_FPS,
    }

    def __init__(self, num_agents: int = 2, render_mode: str | None = None, **kwargs: Any) -> None:
        if isinstance(num_agents, bool) or int(num_agents) != num_agents or num_agents < 1:
            raise InvalidArgumentError(f"num_agents must be a positive int, got {num_agents!r}")
        if render_mode not in (None, "rgb_array"):
            raise InvalidArgumentError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.cfg = EnvConfig.from_kwargs(**kwargs)
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(int(num_agents))]
        self.agents: list[str] = []
        self.sim = BatchedSim(self.cfg, num_worlds=1, agents_per_world=int(num_agents))
        self._observation_spaces = {a: self.sim.single_observation_space for a in self.possible_agents}
        self._action_spaces = {a: self.sim.single_action_space for a in self.possible_agents}
        self.shadow = Shadow(self.cfg.shadow, self.cfg, int(num_agents)) if self.cfg.shadow else None
        self._noop = np.zeros(self.sim.single_action_space.shape or (), self.sim.single_action_space.dtype)
        self._obs: dict[str, torch.Tensor] | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        """Every agent observes the same Dict (rgb, depth, pose, task fields)."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """Every agent acts with the env's action kind."""
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        """Starts an episode in one world; the scene and the generation are functions of ``seed``.

        ``options`` is accepted for API compatibility and has no keys yet (PettingZoo's API test
        passes a dummy one), so it is ignored.
        """
        self.agents = list(self.possible_agents)
        self._obs = self.sim.reset(seed=seed)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        if self.shadow is not None:
            self.shadow.reset(self.sim.scene_seeds[0])
            self._add_shadow(infos)
        return self._per_agent(self._obs), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """One batched step of all agents; agents missing from ``actions`` (or gone) take the noop."""
        if self._obs is None:
            raise InvalidArgumentError("call reset() before step()")
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise InvalidArgumentError(f"actions: unknown agents {sorted(unknown)}")
        batch = []
        for agent in self.possible_agents:
            action = actions.get(agent, self._noop) if agent in self.agents else self._noop
            if not self.action_space(agent).contains(
                np.asarray(action, dtype=self.action_space(agent).dtype)
            ):
                raise InvalidArgumentError(
                    f"actions[{agent!r}] = {action!r} is not in {self.action_space(agent)}"
                )
            batch.append(np.asarray(action))
        obs, reward, terminated, truncated, info = self.sim.step(torch.as_tensor(np.stack(batch)))
        self._obs = obs
        live = list(self.agents)
        index = {a: i for i, a in enumerate(self.possible_agents)}
        reward_np, term_np, trunc_np = (t.cpu().numpy() for t in (reward, terminated, truncated))
        info_np = {k: v.cpu().numpy() for k, v in info.items()}
        per_agent = self._per_agent(obs)
        observations = {a: per_agent[a] for a in live}
        rewards = {a: float(reward_np[index[a]]) for a in live}
        terminations = {a: bool(term_np[index[a]]) for a in live}
        truncations = {a: bool(trunc_np[index[a]]) for a in live}
        infos = {a: {k: v[index[a]].item() for k, v in info_np.items()} for a in live}
        if self.shadow is not None:
            hands = np.stack(batch).astype(np.float64) if self.cfg.action_kind == "hand" else None
            self.shadow.sync(self.sim.frames["pose"].cpu().numpy(), hands)
            self._add_shadow(infos)
        self.agents = [a for a in live if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos

    def _per_agent(self, obs: dict[str, torch.Tensor]) -> dict[str, dict[str, np.ndarray]]:
        host = {k: v.cpu().numpy() for k, v in obs.items()}
        return {a: {k: v[i].copy() for k, v in host.items()} for i, a in enumerate(self.possible_agents)}

    def _add_shadow(self, infos: dict[str, dict[str, Any]]) -> None:
        obs = self._per_agent(self._obs)
        agents = list(self.possible_agents)
        metrics = self.shadow.metrics([obs[a]["rgb"] for a in agents], [obs[a]["depth"] for a in agents])
        for i, agent in enumerate(agents):
            if agent in infos:
                truth = self.shadow.latest[i]
                infos[agent] |= {
                    "gt_rgb": truth.rgb,
                    "gt_depth": truth.depth[..., None],
                    "psnr": float(metrics["psnr"][i]),
                    "depth_error": float(metrics["depth_error"][i]),
                }

    def render(self) -> np.ndarray | None:
        """All agents' current frames side by side (rgb_array)."""
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return side_by_side(list(self._obs["rgb"].cpu().numpy()))

    def state(self) -> np.ndarray:
        """The global state: every agent's frame side by side."""
        if self._obs is None:
            raise InvalidArgumentError("call reset() before state()")
        return side_by_side(list(self._obs["rgb"].cpu().numpy()))

    def close(self) -> None:
        """Closes the world (and the shadow)."""
        self.sim.close()
        if self.shadow is not None:
            self.shadow.close()


def parallel_env(num_agents: int = 2, **kwargs: Any) -> GenWorldParallelEnv:
    """PettingZoo constructor: ``sim_env.multi_agent.parallel_env(num_agents=N, world=..., ...)``."""
    return GenWorldParallelEnv(num_agents=num_agents, **kwargs)
