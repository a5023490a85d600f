"""Gymnasium ids of GenWorld, registered with entry-point strings (importing stays cheap)."""

from __future__ import annotations

import gymnasium as gym

SINGLE_ENTRY_POINT = "sim_env.envs.single_env:GenWorldEnv"
VECTOR_ENTRY_POINT = "sim_env.envs.vector_env:GenWorldVectorEnv"
DEFAULT_MAX_EPISODE_STEPS = 500

ENV_IDS: dict[str, dict[str, str]] = {
    "GenWorld/Navigate-v0": {"action_kind": "keys", "task": "pointgoal", "scene": "rooms"},
    "GenWorld/NavigateContinuous-v0": {"action_kind": "nav", "task": "pointgoal", "scene": "rooms"},
    "GenWorld/Manipulate-v0": {"action_kind": "hand", "task": "reach", "scene": "tabletop"},
}


def register_envs() -> None:
    """Registers every GenWorld id once (re-imports are no-ops)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=SINGLE_ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
            kwargs=dict(kwargs),
        )
