"""GenWorldVectorEnv: autoreset modes (after Gymnasium's tests/vector/test_autoreset_mode.py), seeds,
one batched forward per step, masked resets, TorchRL specs, numpy view and RecordVideo.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordVideo

import sim_env  # noqa: F401 - registers the ids
from bridge.types import InvalidArgumentError
from sim_env.envs.single_env import GenWorldEnv
from sim_env.envs.wrappers import vector_to_numpy
from tests.sim_env.envs.conftest import FAST_GENERATIVE, MUJOCO

NUM_ENVS = 2
HORIZON = 2  # every episode truncates after two steps, so resets happen within a short test
NAVIGATE = {"action_kind": "keys", "task": "pointgoal", "scene": "rooms"}


def make_vec(mode, world=MUJOCO, num_envs=NUM_ENVS, **kwargs):
    return gym.make_vec(
        "GenWorld/Navigate-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        max_episode_steps=HORIZON,
        **world,
        **kwargs,
    )


def reference_steps(mode, seed, actions):
    """What Gymnasium's semantics prescribe, built from independent single envs seeded seed + i."""
    envs = [GenWorldEnv(max_episode_steps=HORIZON, **MUJOCO, **NAVIGATE) for _ in range(NUM_ENVS)]
    first = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    ended = [False] * NUM_ENVS
    steps = []
    for action in actions:
        row = []
        for i, env in enumerate(envs):
            final = None
            if mode == AutoresetMode.NEXT_STEP and ended[i]:
                obs, _ = env.reset()
                reward, terminated, truncated = 0.0, False, False
            else:
                obs, reward, terminated, truncated, _ = env.step(int(action[i]))
                if mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                    final, (obs, _) = obs, env.reset()
            ended[i] = terminated or truncated
            row.append((obs, reward, terminated, truncated, final))
        steps.append(row)
    for env in envs:
        env.close()
    return first, steps


def assert_obs_equal(batched, index, single):
    for key, value in single.items():
        np.testing.assert_allclose(batched[key][index].numpy(), value, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_autoreset_mode_matches_gymnasium_semantics(mode):
    actions = np.array([[1, 2], [5, 1], [1, 1], [6, 3], [1, 1]])
    first, expected = reference_steps(mode, 10, actions)
    env = make_vec(mode)
    assert env.metadata["autoreset_mode"] == mode
    try:
        obs, _ = env.reset(seed=10)
        for i in range(NUM_ENVS):
            assert_obs_equal(obs, i, first[i])
        for t, action in enumerate(actions):
            if mode == AutoresetMode.DISABLED and t == HORIZON:
                break  # checked separately below: without a reset the episode just continues
            obs, reward, terminated, truncated, info = env.step(torch.as_tensor(action))
            assert isinstance(reward, torch.Tensor) and reward.shape == (NUM_ENVS,)
            for i, (e_obs, e_reward, e_term, e_trunc, e_final) in enumerate(expected[t]):
                assert_obs_equal(obs, i, e_obs)
                assert reward[i].item() == pytest.approx(e_reward, abs=1e-5)
                assert (terminated[i].item(), truncated[i].item()) == (e_term, e_trunc)
                if mode == AutoresetMode.SAME_STEP:
                    has_final = "final_obs" in info and bool(info["_final_obs"][i])
                    assert has_final == (e_final is not None)
                    if has_final:
                        assert_obs_equal(info["final_obs"], i, e_final)
                        assert bool(info["_final_info"][i]) and "distance" in info["final_info"]
            assert all(bool(info[f"_{k}"].all()) for k in ("collided", "distance", "success"))
    finally:
        env.close()


def test_disabled_mode_resets_only_the_masked_sub_envs():
    env = make_vec(AutoresetMode.DISABLED)
    single = GenWorldEnv(max_episode_steps=HORIZON, **MUJOCO, **NAVIGATE)
    try:
        env.reset(seed=3)
        single.reset(seed=3)
        for _ in range(HORIZON + 1):
            before, *_ = env.step(torch.tensor([1, 1]))
            single.step(1)
        after, _ = env.reset(options={"reset_mask": np.array([True, False])})
        assert_obs_equal(after, 0, single.reset()[0])  # sub-env 0: its next episode
        for key in before:
            torch.testing.assert_close(after[key][1], before[key][1])  # sub-env 1: untouched
        with pytest.raises(InvalidArgumentError, match="reset_mask"):
            env.reset(options={"reset_mask": np.array([True])})
    finally:
        env.close()
        single.close()


def test_generative_vector_env_is_one_batched_forward_of_device_tensors():
    env = make_vec(AutoresetMode.NEXT_STEP, FAST_GENERATIVE, num_envs=3, device="cpu")
    runtime = env.unwrapped.sim.backend.runtime
    batches = []
    handle = runtime.model.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    try:
        obs, _ = env.reset(seed=0)
        batches.clear()
        obs, reward, terminated, truncated, info = env.step(torch.tensor([1, 5, 0]))
        # One denoising step + the clean cache pass, each over all three sub-envs at once.
        assert batches == [3, 3]
        for value in (*obs.values(), reward, terminated, truncated, info["distance"]):
            assert isinstance(value, torch.Tensor) and value.device == torch.device("cpu")
        assert obs["rgb"].shape == (3, 64, 64, 3) and obs["rgb"].dtype == torch.uint8
        assert obs["depth"].shape == (3, 64, 64, 1) and obs["depth"].dtype == torch.float32
    finally:
        handle.remove()
        env.close()


def test_generative_masked_reset_leaves_the_other_worlds_generation_unchanged():
    """Sub-env 1 generates the same frames whether or not sub-env 0 was reset meanwhile."""
    keys = torch.tensor([1, 5])
    plain, masked = (make_vec(AutoresetMode.DISABLED, FAST_GENERATIVE) for _ in range(2))
    try:
        plain.reset(seed=1)
        masked.reset(seed=1)
        for _ in range(2):
            plain.step(keys)
            masked.step(keys)
        reset_obs, _ = masked.reset(options={"reset_mask": np.array([True, False])})
        obs_plain, *_ = plain.step(keys)
        obs_masked, *_ = masked.step(keys)
        torch.testing.assert_close(obs_masked["rgb"][1], obs_plain["rgb"][1], rtol=0, atol=0)
        torch.testing.assert_close(obs_masked["depth"][1], obs_plain["depth"][1])
        # Sub-env 0 restarted from its next scene's reference frame (rendered by MuJoCo).
        engine_frame = masked.unwrapped.sim.backend._ref_rgb[0]
        torch.testing.assert_close(reset_obs["rgb"][0], engine_frame)
    finally:
        plain.close()
        masked.close()


def test_torchrl_check_env_specs_in_same_step_mode():
    from torchrl.envs.libs.gym import GymWrapper
    from torchrl.envs.utils import check_env_specs

    env = GymWrapper(make_vec(AutoresetMode.SAME_STEP, FAST_GENERATIVE))
    try:
        check_env_specs(env, seed=0)
    finally:
        env.close()


def test_numpy_view_stays_in_the_declared_spaces_and_records_video(tmp_path):
    env = make_vec(AutoresetMode.NEXT_STEP, render_mode="rgb_array")
    env = vector_to_numpy(RecordVideo(env, str(tmp_path), episode_trigger=lambda e: e == 0, video_length=4))
    try:
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        env.action_space.seed(0)
        for _ in range(4):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
            assert isinstance(reward, np.ndarray) and isinstance(info["distance"], np.ndarray)
    finally:
        env.close()
    assert list(tmp_path.glob("*.mp4"))


def test_bad_construction_arguments_name_the_field():
    with pytest.raises(InvalidArgumentError, match="autoreset_mode"):
        make_vec("sometimes")
    with pytest.raises(InvalidArgumentError, match="shadow"):
        make_vec(AutoresetMode.NEXT_STEP, shadow="mujoco")
