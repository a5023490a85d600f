"""The RL tiers of `sim_env.bench_rl` on the CPU: the PPO loop runs and learns something."""

from __future__ import annotations

import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.bench_rl import ActorCritic, PPOLoop, bench_tiers, observation
from sim_env.runtime import GenerativeRuntime

WORLDS = 2


def _runtime() -> GenerativeRuntime:
    runtime = GenerativeRuntime(config="tiny64", num_worlds=WORLDS, denoising_steps=1)
    n, h, w = WORLDS, runtime.height, runtime.width
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, 70.0)).expand(n, 3, 3)
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2])).expand(n, 4, 4)
    runtime.reset_batch(rgb, 4.0 + torch.rand(n, h, w, generator=gen), K, pose, seed=1)
    return runtime


def test_observation_shape_and_range() -> None:
    runtime = _runtime()
    obs = observation(runtime.step_batch(torch.zeros(WORLDS, 6, dtype=torch.float64)))
    assert obs.shape == (WORLDS, 4, 64, 64)
    assert obs.min() >= -1.0 and obs.max() <= 1.0


def test_ppo_update_changes_the_policy() -> None:
    torch.manual_seed(0)
    runtime = _runtime()
    policy = ActorCritic()
    before = [p.detach().clone() for p in policy.parameters()]
    loop = PPOLoop(policy, runtime.step_batch, runtime.step_batch(torch.zeros(WORLDS, 6)), 2, 1, 2)
    batch = loop.rollout()
    assert batch["obs"].shape == (2 * WORLDS, 4, 64, 64) and batch["returns"].shape == (2 * WORLDS,)
    loop.update(batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))


def test_bench_tiers_reports_positive_rates() -> None:
    runtime = _runtime()
    first = runtime.step_batch(torch.zeros(WORLDS, 6, dtype=torch.float64))
    result = bench_tiers(runtime, runtime.step_batch, first, steps=1, repeats=1, rollout_steps=1, epochs=1)
    assert result.num_streams == WORLDS
    assert min(result.env_steps_per_s, result.with_policy_steps_per_s, result.with_ppo_steps_per_s) > 0
