"""Tiny recorded datasets and a tiny model config shared by the training and evaluation tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bridge.recorder import record
from sim_env.model.config import get_config

RES = (16, 16)
STEPS_PER_EPISODE = 8
# 16×16 frames need far fewer voxels than the runtime's 64×64 default (4 frames = 1,024 points).
MEMORY_CAPACITY = 1024

# The runtime's 16×16 test config with a second block, so training has depth to fit.
TINY_CONFIG = dataclasses.replace(get_config("tiny16-test"), name="test16", num_layers=2)


def write_tiny_data(root: Path) -> dict[str, Path]:
    """Record 2 rooms episodes and 1 tabletop-with-hands episode of 8 steps at 16×16, and the config."""
    rooms, table = root / "rooms", root / "tabletop"
    record("mujoco", "rooms", 2, STEPS_PER_EPISODE, "random", rooms, resolution=RES, seed=0)
    record("mujoco", "tabletop", 1, STEPS_PER_EPISODE, "random", table, resolution=RES, seed=0)
    config = root / "test16.json"
    config.write_text(TINY_CONFIG.to_json())
    return {"rooms": rooms, "tabletop": table, "config": config}
