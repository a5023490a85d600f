"""Procedural MuJoCo scene families for the ground-truth engine.

Each family turns a seeded numpy Generator into a `SceneSpec`: the MJCF text plus what
the engine needs to start an episode (candidate camera poses, the agent's collision
radius, whether there are hands and dynamics). Builders never touch MuJoCo objects, so a
spec is cheap to make and easy to inspect in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

SCENE_FAMILIES = ("rooms", "tabletop")


@dataclass(frozen=True)
class SceneSpec:
    """A generated scene, ready to compile.

    Attributes:
        family: "rooms" or "tabletop".
        xml: the MJCF document.
        start_candidates: camera-to-world OpenCV poses in order of preference; agent i
            takes the i-th one that the engine's collision check accepts.
        agent_radius: the camera body's collision radius in metres.
        has_hands: whether each agent has two simulated hands (bodies named by
            `bridge.engines.scenes.hand_mjcf`).
        dynamic: whether physics must be stepped (free objects, hands); static scenes
            only update cameras.
        settle_time: seconds of physics simulated at reset before frame 0, so objects
            rest and hands reach their targets before anything is observed.
        metadata: family-specific facts for tests and tools (e.g. skylight centres).
    """

    family: str
    xml: str
    start_candidates: tuple[NDArray[np.float64], ...]
    agent_radius: float
    has_hands: bool
    dynamic: bool
    settle_time: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


def build_scene(
    family: str, rng: np.random.Generator, num_agents: int, fov_deg: float, offscreen_size: tuple[int, int]
) -> SceneSpec:
    """Generates one scene of `family` from `rng`.

    Args:
        family: one of SCENE_FAMILIES.
        rng: the only source of randomness, so one seed gives one scene.
        num_agents: cameras to create (named agent_0 ...).
        fov_deg: vertical field of view of every camera.
        offscreen_size: (width, height) framebuffer size to declare in the MJCF.
    """
    if family == "rooms":
        from bridge.engines.scenes.rooms import build_rooms

        return build_rooms(rng, num_agents, fov_deg, offscreen_size)
    if family == "tabletop":
        from bridge.engines.scenes.tabletop import build_tabletop

        return build_tabletop(rng, num_agents, fov_deg, offscreen_size)
    raise ValueError(f"unknown scene family {family!r}; expected one of {SCENE_FAMILIES}")
