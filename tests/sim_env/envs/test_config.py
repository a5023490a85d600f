"""Env keyword validation, registration on import and checkpoint resolution."""

import subprocess
import sys

import gymnasium as gym
import pytest

import sim_env  # noqa: F401 - registers the ids
from bridge.types import InvalidArgumentError
from sim_env.envs import world_factory
from sim_env.envs.config import EnvConfig
from sim_env.envs.registration import ENV_IDS


def test_import_registers_every_id_without_loading_torch_or_mujoco():
    code = (
        "import sys, sim_env, gymnasium as gym; "
        "print(sorted(i for i in gym.registry if i.startswith('GenWorld/'))); "
        "print('torch' in sys.modules, 'mujoco' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == str(sorted(ENV_IDS))
    assert out[1] == "False False"
    for env_id in ENV_IDS:
        assert gym.spec(env_id).vector_entry_point == "sim_env.envs.vector_env:GenWorldVectorEnv"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"wrld": "mujoco"}, "wrld"),
        ({"world": "unreal"}, "world"),
        ({"shadow": "generative"}, "shadow"),
        ({"resolution": (64,)}, "resolution"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"denoising_steps": 0}, "denoising_steps"),
        ({"reference_views": 0}, "reference_views"),
        ({"reference_views": 2.5}, "reference_views"),
        ({"reference_positions": 0}, "reference_positions"),
        ({"reference_positions": True}, "reference_positions"),
        ({"footprint_occlusion": 1}, "footprint_occlusion"),
        ({"sample_footprints": "yes"}, "sample_footprints"),
        ({"task": "reach"}, "reach"),
        ({"action_kind": "hand"}, "tabletop"),
        ({"goal_distance": (3.0, 1.0)}, "goal_distance"),
    ],
)
def test_bad_keywords_name_the_field(kwargs, field):
    with pytest.raises(InvalidArgumentError, match=field):
        EnvConfig.from_kwargs(**kwargs)


def test_bad_keyword_fails_at_make():
    with pytest.raises(InvalidArgumentError, match="resolution"):
        gym.make("GenWorld/Navigate-v0", world="mujoco", resolution=(4, 4))


def test_default_checkpoint_falls_back_to_random_weights_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(world_factory, "DEFAULT_CHECKPOINT", tmp_path / "missing.safetensors")
    with pytest.warns(UserWarning, match="RANDOM weights"):
        assert world_factory.resolve_checkpoint("default") is None
    assert world_factory.uses_random_weights("default")
    shipped = tmp_path / "tiny64.safetensors"
    shipped.write_bytes(b"x")
    monkeypatch.setattr(world_factory, "DEFAULT_CHECKPOINT", shipped)
    assert world_factory.resolve_checkpoint("default") == str(shipped)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        world_factory.resolve_checkpoint(str(tmp_path / "nope.pt"))


def test_generative_world_rejects_a_resolution_other_than_the_models():
    with pytest.raises(InvalidArgumentError, match="resolution"):
        gym.make("GenWorld/Navigate-v0", world="generative", resolution=(32, 32))
