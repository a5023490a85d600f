"""A short Stable-Baselines3 PPO run on GenWorld/Navigate-v0 in the MuJoCo and the generative world.

Small on purpose (one epoch; 2,048 steps in MuJoCo and 2,048 batched steps of the world model, whose
CPU step dominates): the test proves the envs train end to end (rollouts, autoreset with terminal
observations, episode statistics, updates), not that PPO converges.
"""

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import sim_env  # noqa: F401 - registers the ids
from sim_env.envs.sb3 import SB3VecEnv
from tests.sim_env.envs.conftest import FAST_GENERATIVE, MUJOCO

EPISODE_STEPS = 32


def train_and_check(env, total_steps: int) -> None:
    model = PPO(
        "MultiInputPolicy", env, n_steps=total_steps // env.num_envs, batch_size=256, n_epochs=1, seed=0
    )
    model.learn(total_timesteps=total_steps)
    assert model.num_timesteps >= total_steps
    assert len(model.ep_info_buffer) >= total_steps // EPISODE_STEPS // 2  # episodes ended and were reset
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert all(env.action_space.contains(np.int64(a)) for a in np.atleast_1d(actions))


def test_ppo_on_the_mujoco_single_env():
    env = Monitor(gym.make("GenWorld/Navigate-v0", max_episode_steps=EPISODE_STEPS, **MUJOCO))
    vec = DummyVecEnv([lambda: env])
    try:
        train_and_check(vec, 2048)
    finally:
        vec.close()


def test_ppo_on_the_batched_generative_vector_env():
    vector = gym.make_vec(
        "GenWorld/Navigate-v0",
        num_envs=16,
        vectorization_mode="vector_entry_point",
        autoreset_mode="SameStep",
        max_episode_steps=EPISODE_STEPS,
        **FAST_GENERATIVE,
    )
    vec = VecMonitor(SB3VecEnv(vector))
    try:
        train_and_check(vec, 2048)
    finally:
        vec.close()
