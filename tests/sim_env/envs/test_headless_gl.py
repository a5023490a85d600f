"""The envs render headless with MUJOCO_GL unset (a user's plain `python`, not pytest's setup)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import gymnasium as gym
import sim_env
env = gym.make("GenWorld/Navigate-v0", world="mujoco")
obs, _ = env.reset(seed=0)
print(obs["rgb"].shape, obs["rgb"].std() > 0)
"""


def test_env_picks_a_headless_gl_backend_before_mujoco_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(64, 64, 3) True" in result.stdout
