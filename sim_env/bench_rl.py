"""Isaac-Lab-style three-tier throughput of the batched generative world for RL.

Isaac Lab reports env-steps/s three ways: the env step alone, the step plus policy inference,
and the whole PPO loop (rollout with the policy, then the update). This module measures the
same tiers on `GenerativeRuntime.step_batch` (N streams of one world each, observations and
actions on the device, the step replayed from a CUDA graph on CUDA):

1. ``env``: `step_batch` with fixed actions;
2. ``env+policy``: a small CNN actor-critic reads the RGB-D observation and samples the action
   (Gaussian, clipped to the [-1, 1] action box) before every step;
3. ``env+policy+ppo``: rollouts of ``rollout_steps`` steps into a device buffer, then clipped
   PPO (GAE, ``epochs`` × ``minibatches``) with Adam; the rate counts rollout plus update time.

The reward is a placeholder with the env's shape of work (forward speed minus a collision
penalty); it is not the task reward of ``sim_env.envs``, which runs the same runtime.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bridge.actions import FORWARD
from bridge.types import NAV_DIM
from sim_env.model.config import encode_depth
from sim_env.runtime import GenerativeRuntime

OBS_CHANNELS = 4  # RGB in [0, 1] + normalised log-depth
COLLISION_PENALTY = 1.0
GAMMA, GAE_LAMBDA, CLIP, VALUE_COEF, ENTROPY_COEF, LR = 0.99, 0.95, 0.2, 0.5, 0.01, 3e-4


class ActorCritic(nn.Module):
    """Nature-CNN-sized actor-critic on 64×64 RGB-D: Gaussian nav actions and a value."""

    def __init__(self, action_dim: int = NAV_DIM, size: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(OBS_CHANNELS, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            features = self.encoder(torch.zeros(1, OBS_CHANNELS, size, size)).shape[1]
        self.trunk = nn.Sequential(nn.Linear(features, 256), nn.ReLU())
        self.mean = nn.Linear(256, action_dim)
        self.value = nn.Linear(256, 1)
        self.log_std = nn.Parameter(torch.full((action_dim,), -0.5))

    def forward(self, obs: torch.Tensor) -> tuple[torch.distributions.Normal, torch.Tensor]:
        """Action distribution and value (N,) of observations (N, 4, H, W)."""
        h = self.trunk(self.encoder(obs))
        dist = torch.distributions.Normal(torch.tanh(self.mean(h)), self.log_std.exp().expand(h.shape[0], -1))
        return dist, self.value(h)[:, 0]


def observation(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """The runtime's rgb (N, H, W, 3) uint8 and depth (N, H, W) → (N, 4, H, W) float32 in [−1, 1]."""
    rgb = out["rgb"].permute(0, 3, 1, 2).float() / 255.0
    return torch.cat([rgb, encode_depth(out["depth"])[:, None]], dim=1)


def reward(out: dict[str, torch.Tensor], nav: torch.Tensor) -> torch.Tensor:
    """Placeholder reward (N,): commanded forward speed, minus a penalty where the step collided."""
    return nav[:, FORWARD].float().clamp_min(0.0) - COLLISION_PENALTY * out["collided"].float()


@dataclass(frozen=True)
class TierResult:
    """Env-steps/s of the three tiers (medians over repeats)."""

    num_streams: int
    env_steps_per_s: float
    with_policy_steps_per_s: float
    with_ppo_steps_per_s: float
    rollout_steps: int
    ppo_epochs: int
    ppo_minibatches: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(device: torch.device, steps: int, fn: Callable[[], None], repeats: int) -> float:
    """Median steps/s of ``fn`` (which performs ``steps`` env-steps of the whole batch) over repeats."""
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


class PPOLoop:
    """Rollout buffer and clipped-PPO update on the device for one `ActorCritic`."""

    def __init__(
        self,
        policy: ActorCritic,
        step: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        first_out: dict[str, torch.Tensor],
        rollout_steps: int,
        epochs: int,
        minibatches: int,
    ) -> None:
        self.policy, self.step, self.out = policy, step, first_out
        self.rollout_steps, self.epochs, self.minibatches = rollout_steps, epochs, minibatches
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=LR)

    @torch.no_grad()
    def rollout(self) -> dict[str, torch.Tensor]:
        """``rollout_steps`` policy steps; returns the flattened batch with advantages and returns."""
        obs, actions, logp, values, rewards = [], [], [], [], []
        for _ in range(self.rollout_steps):
            o = observation(self.out)
            dist, value = self.policy(o)
            action = dist.sample()
            nav = action.clamp(-1.0, 1.0).to(torch.float64)
            self.out = self.step(nav)
            obs.append(o)
            actions.append(action)
            logp.append(dist.log_prob(action).sum(-1))
            values.append(value)
            rewards.append(reward(self.out, nav))
        _, last_value = self.policy(observation(self.out))
        advantages = torch.zeros_like(torch.stack(rewards))
        gae = torch.zeros_like(last_value)
        for t in reversed(range(self.rollout_steps)):
            next_value = last_value if t == self.rollout_steps - 1 else values[t + 1]
            delta = rewards[t] + GAMMA * next_value - values[t]
            gae = delta + GAMMA * GAE_LAMBDA * gae
            advantages[t] = gae
        returns = advantages + torch.stack(values)
        return {
            "obs": torch.stack(obs).flatten(0, 1),
            "actions": torch.stack(actions).flatten(0, 1),
            "logp": torch.stack(logp).flatten(0, 1),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
        }

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        """Clipped PPO over the batch: ``epochs`` passes of ``minibatches`` shuffled minibatches."""
        size = batch["obs"].shape[0]
        adv = (batch["advantages"] - batch["advantages"].mean()) / (batch["advantages"].std() + 1e-8)
        for _ in range(self.epochs):
            for index in torch.randperm(size, device=adv.device).chunk(self.minibatches):
                dist, value = self.policy(batch["obs"][index])
                ratio = (dist.log_prob(batch["actions"][index]).sum(-1) - batch["logp"][index]).exp()
                a = adv[index]
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - CLIP, 1 + CLIP) * a).mean()
                value_loss = F.mse_loss(value, batch["returns"][index])
                loss = policy_loss + VALUE_COEF * value_loss - ENTROPY_COEF * dist.entropy().sum(-1).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), 0.5)
                self.optimizer.step()

    def iteration(self) -> None:
        """One PPO iteration: rollout, then update."""
        self.update(self.rollout())


def bench_tiers(
    runtime: GenerativeRuntime,
    step: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    first_out: dict[str, torch.Tensor],
    steps: int = 20,
    repeats: int = 3,
    rollout_steps: int = 16,
    epochs: int = 2,
    minibatches: int = 4,
    seed: int = 0,
) -> TierResult:
    """Env-steps/s of the three tiers on a reset runtime.

    Args:
        runtime: a reset `GenerativeRuntime` with one agent per world (RGB-D observations).
        step: ``nav (N, 6) → outputs``: the runtime's step (eager or a graph replay); its outputs
            must be the runtime's live buffers.
        first_out: the outputs after reset (or after the warm-up steps).
        steps: env steps per timed repeat of tiers 1 and 2.
        repeats: timed repeats (median).
        rollout_steps: steps per PPO rollout (tier 3 times one rollout + update per repeat).
        epochs: PPO epochs per update.
        minibatches: minibatches per epoch.
        seed: seeds the policy and the fixed actions.
    """
    if steps < 1 or repeats < 1 or rollout_steps < 1 or epochs < 1 or minibatches < 1:
        raise ValueError("steps, repeats, rollout_steps, epochs and minibatches must be positive")
    device, n = runtime.device, runtime.num_streams
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        policy = ActorCritic(size=runtime.height).to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
        fixed = 0.25 * (2 * torch.rand(n, NAV_DIM, generator=gen, device=device, dtype=torch.float64) - 1)

        def env_only() -> None:
            for _ in range(steps):
                step(fixed)

        out = {"value": first_out}

        @torch.no_grad()
        def with_policy() -> None:
            for _ in range(steps):
                dist, _ = policy(observation(out["value"]))
                out["value"] = step(dist.sample().clamp(-1.0, 1.0).to(torch.float64))

        loop = PPOLoop(policy, step, first_out, rollout_steps, epochs, minibatches)
        env_only()  # warm-up of each tier (kernel loading, autotuning, allocator)
        with_policy()
        loop.iteration()
        tier1 = _rate(device, steps, env_only, repeats)
        tier2 = _rate(device, steps, with_policy, repeats)
        tier3 = _rate(device, rollout_steps, loop.iteration, repeats)
    return TierResult(
        num_streams=n,
        env_steps_per_s=tier1 * n,
        with_policy_steps_per_s=tier2 * n,
        with_ppo_steps_per_s=tier3 * n,
        rollout_steps=rollout_steps,
        ppo_epochs=epochs,
        ppo_minibatches=minibatches,
    )
