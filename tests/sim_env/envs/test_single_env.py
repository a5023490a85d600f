"""GenWorldEnv: Gymnasium and SB3 conformance, determinism, shadow mode, rendering."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim_env  # noqa: F401 - registers the ids
from bridge.types import InvalidArgumentError
from sim_env.envs.registration import ENV_IDS
from tests.sim_env.envs.conftest import FAST_GENERATIVE, MUJOCO

WORLDS = {"mujoco": MUJOCO, "generative": FAST_GENERATIVE}


@pytest.mark.parametrize("world", sorted(WORLDS))
@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_gymnasium_check_env_on_every_id(env_id, world):
    env = gym.make(env_id, render_mode="rgb_array", **WORLDS[world])
    try:
        check_env(env.unwrapped, skip_render_check=False)
    finally:
        env.close()


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_sb3_check_env_on_the_numpy_single_env(world):
    env = gym.make("GenWorld/Navigate-v0", **WORLDS[world])
    try:
        sb3_check_env(env.unwrapped, warn=False)
    finally:
        env.close()


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    frames, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        frames.append(obs)
        rewards.append(reward)
    return frames, rewards


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_same_seed_same_episode_other_seed_other_episode(world):
    actions = [1, 5, 1]
    a = gym.make("GenWorld/Navigate-v0", **WORLDS[world])
    b = gym.make("GenWorld/Navigate-v0", **WORLDS[world])
    try:
        frames_a, rewards_a = rollout(a, 7, actions)
        frames_b, rewards_b = rollout(b, 7, actions)
        for fa, fb in zip(frames_a, frames_b, strict=True):
            for key in fa:
                np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)
        assert rewards_a == rewards_b
        other, _ = b.reset(seed=8)
        assert not np.array_equal(other["rgb"], frames_a[0]["rgb"])
        # Seedless resets continue the last seeded sequence deterministically.
        a.reset(seed=8)
        assert np.array_equal(a.reset()[0]["rgb"], b.reset()[0]["rgb"])
    finally:
        a.close()
        b.close()


def test_shadow_of_mujoco_by_mujoco_is_exact():
    env = gym.make("GenWorld/Navigate-v0", shadow="mujoco", render_mode="rgb_array", **MUJOCO)
    try:
        obs, info = env.reset(seed=2)
        for key in (1, 5, 1, 3):
            obs, _, _, _, info = env.step(key)
            np.testing.assert_array_equal(info["gt_rgb"], obs["rgb"])
            assert info["psnr"] == math.inf and info["depth_error"] == 0.0
        frame = env.render()
        assert frame.shape == (64, 2 * 64 + 2, 3)
        np.testing.assert_array_equal(frame[:, 66:], info["gt_rgb"])
    finally:
        env.close()


def test_shadow_of_the_generative_world_reports_fidelity_against_ground_truth():
    env = gym.make("GenWorld/Manipulate-v0", shadow="mujoco", **FAST_GENERATIVE)
    try:
        obs, info = env.reset(seed=4)
        # Frame 0 is the reference the generator starts from, rendered by the same engine.
        np.testing.assert_array_equal(obs["rgb"], info["gt_rgb"])
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert info["gt_rgb"].shape == obs["rgb"].shape and info["gt_depth"].shape == obs["depth"].shape
        assert math.isfinite(info["psnr"]) and info["depth_error"] >= 0.0
        assert env.unwrapped.shadow.world.camera_pose("agent_0") == pytest.approx(obs["pose"], abs=1e-5)
    finally:
        env.close()


def test_bad_actions_and_options_name_the_problem():
    env = gym.make("GenWorld/Navigate-v0", **MUJOCO)
    try:
        with pytest.raises(gym.error.ResetNeeded):
            env.unwrapped.step(1)
        env.reset(seed=0)
        with pytest.raises(InvalidArgumentError, match="action"):
            env.step(9)
        with pytest.raises(InvalidArgumentError, match="options"):
            env.reset(options={"scene": "tabletop"})
    finally:
        env.close()


def test_time_limit_truncates():
    env = gym.make("GenWorld/NavigateContinuous-v0", max_episode_steps=3, **MUJOCO)
    try:
        env.reset(seed=0)
        flags = [env.step(np.zeros(6, np.float32))[3] for _ in range(3)]
        assert flags == [False, False, True]
    finally:
        env.close()


def test_the_generative_env_starts_from_the_engines_sweep_around_the_start():
    """By default the world's memory holds the whole turn around the start, not one wedge."""
    from sim_env.envs.config import EnvConfig
    from sim_env.reference_sweep import FULL_SWEEP_VIEWS, sweep_poses

    assert EnvConfig().reference_views == FULL_SWEEP_VIEWS
    pinned = {}
    for views in (1, FULL_SWEEP_VIEWS):
        env = gym.make("GenWorld/Navigate-v0", reference_views=views, **FAST_GENERATIVE)
        try:
            env.reset(seed=11)
            runtime = env.unwrapped.sim.backend.runtime
            assert runtime.reference_views == views
            assert not runtime.footprint_occlusion  # opt-in (docs/model.md)
            pinned[views] = int(runtime.memory.pinned.sum())
            behind = torch.as_tensor(sweep_poses(runtime.pose[0].numpy(), 2)[1])[None].float()
            _, _, shown = runtime.memory.render(runtime.K.float(), behind, runtime.height, runtime.width)
            # Voxels splat sparsely near walls (the surfels fill that in); one view shows nothing here.
            assert (float(shown.float().mean()) > 0.2) == (views > 1) and bool(shown.any()) == (views > 1)
        finally:
            env.close()
    assert pinned[FULL_SWEEP_VIEWS] > 3 * pinned[1]  # 8 views, less what their overlaps share


def test_the_generative_env_takes_a_scan_and_footprint_occlusion_when_asked():
    """Opt-in: the sweep from several spots (sim_env.reference_scan) and footprint occlusion."""
    from sim_env.envs.config import EnvConfig

    assert EnvConfig().reference_positions == 1 and not EnvConfig().footprint_occlusion
    assert not EnvConfig().sample_footprints
    env = gym.make(
        "GenWorld/Navigate-v0",
        reference_views=2,
        reference_positions=2,
        footprint_occlusion=True,
        sample_footprints=True,
        **FAST_GENERATIVE,
    )
    try:
        env.reset(seed=11)
        backend = env.unwrapped.sim.backend
        assert backend.runtime.reference_views == 4 and backend.reference_positions == 2
        assert backend.runtime.footprint_occlusion and backend.runtime.sample_footprints
        spots = {tuple(np.round(view.pose[:3, 3], 6)) for view in backend._sweep[0]}
        assert len(spots) == 2  # the start's own spot and one more
    finally:
        env.close()
