"""PettingZoo parallel env: API test, space containment, multi-step seeding, one shared world."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from bridge.types import InvalidArgumentError
from sim_env.multi_agent import parallel_env
from tests.sim_env.envs.conftest import FAST_GENERATIVE, MUJOCO

NUM_AGENTS = 3


def test_parallel_api_test_1000_cycles_on_mujoco():
    """1000 cycles really run: the horizon is 1000 steps."""
    parallel_api_test(parallel_env(num_agents=2, max_episode_steps=1000, **MUJOCO), num_cycles=1000)


def test_parallel_api_test_on_the_generative_world():
    """The same test on the world model; its 4-step horizon ends the episode (and the test) early."""
    parallel_api_test(parallel_env(num_agents=2, max_episode_steps=4, **FAST_GENERATIVE), num_cycles=1000)


def random_actions(env, rng):
    return {a: _sample(env.action_space(a), rng) for a in env.agents}


def _sample(space, rng):
    space.seed(int(rng.integers(2**31)))
    return space.sample()


@pytest.mark.parametrize(
    ("world", "steps"), [(MUJOCO, 30), (FAST_GENERATIVE, 3)], ids=["mujoco", "generative"]
)
def test_observations_stay_in_their_spaces(world, steps):
    env = parallel_env(num_agents=NUM_AGENTS, action_kind="nav", task="explore", **world)
    rng = np.random.default_rng(0)
    try:
        observations, _ = env.reset(seed=5)
        for _ in range(steps):
            for agent, obs in observations.items():
                assert env.observation_space(agent).contains(obs), agent
            observations, *_ = env.step(random_actions(env, rng))
    finally:
        env.close()


@pytest.mark.parametrize(
    ("world", "steps"), [(MUJOCO, 20), (FAST_GENERATIVE, 3)], ids=["mujoco", "generative"]
)
def test_same_seed_same_multi_step_rollout(world, steps):
    """PettingZoo's parallel_seed_test compares one step only; this compares whole rollouts."""

    def rollout(seed, steps):
        env = parallel_env(num_agents=2, **world)
        rng = np.random.default_rng(1)
        try:
            history = [env.reset(seed=seed)[0]]
            for _ in range(steps):
                history.append(env.step(random_actions(env, rng))[:2])
            return history
        finally:
            env.close()

    a, b, other = rollout(9, steps), rollout(9, steps), rollout(10, 0)
    for step_a, step_b in zip(a[1:], b[1:], strict=True):
        (obs_a, rewards_a), (obs_b, rewards_b) = step_a, step_b
        assert rewards_a == rewards_b
        for agent in obs_a:
            for key in obs_a[agent]:
                np.testing.assert_array_equal(obs_a[agent][key], obs_b[agent][key])
    assert not np.array_equal(a[0]["agent_0"]["rgb"], other[0]["agent_0"]["rgb"])


def test_agents_share_one_generated_world_and_one_batched_forward():
    env = parallel_env(num_agents=NUM_AGENTS, **FAST_GENERATIVE)
    runtime = env.sim.backend.runtime
    assert (runtime.num_worlds, runtime.agents_per_world) == (1, NUM_AGENTS)
    batches = []
    handle = runtime.model.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    try:
        env.reset(seed=0)
        batches.clear()
        env.step({a: 1 for a in env.agents})
        assert batches == [NUM_AGENTS, NUM_AGENTS]
        # One world memory: every agent's frames went into the same point cloud.
        assert runtime.memory.valid.shape[0] == 1
    finally:
        handle.remove()
        env.close()


def test_shadow_reports_per_agent_fidelity():
    env = parallel_env(num_agents=2, shadow="mujoco", **MUJOCO)
    try:
        env.reset(seed=1)
        _, _, _, _, infos = env.step({"agent_0": 1, "agent_1": 5})
        for agent in ("agent_0", "agent_1"):
            assert infos[agent]["psnr"] == float("inf") and infos[agent]["depth_error"] == 0.0
    finally:
        env.close()


def test_bad_arguments_name_the_field():
    with pytest.raises(InvalidArgumentError, match="num_agents"):
        parallel_env(num_agents=0, **MUJOCO)
    env = parallel_env(num_agents=2, **MUJOCO)
    try:
        env.reset(seed=0)
        with pytest.raises(InvalidArgumentError, match="agent_7"):
            env.step({"agent_7": 1})
        with pytest.raises(InvalidArgumentError, match="agent_0"):
            env.step({"agent_0": 11})
    finally:
        env.close()
