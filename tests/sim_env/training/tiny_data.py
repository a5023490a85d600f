"""Tiny recorded datasets and a tiny model config shared by the training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

from bridge.recorder import record
from sim_env.model.config import DiTConfig

RES = (16, 16)
STEPS_PER_EPISODE = 8
# 16×16 frames need far fewer voxels than the runtime's 64×64 default (4 frames = 1,024 points).
MEMORY_CAPACITY = 1024

TINY_CONFIG = DiTConfig(
    name="test16",
    dim=32,
    num_layers=2,
    num_heads=2,
    ffn_dim=64,
    patch_size=(1, 4, 4),
    out_channels=4,
    hand_channels=1,
    text_dim=16,
    context_len=2,
    learned_context=True,
    freq_dim=32,
    height=RES[0],
    width=RES[1],
    image_height=RES[0],
    image_width=RES[1],
    anchor_frames=1,
    memory_frames=2,
    window_frames=2,
    chunk_frames=1,
)


def write_tiny_data(root: Path) -> dict[str, Path]:
    """Record 2 rooms episodes and 1 tabletop-with-hands episode of 8 steps at 16×16, and the config."""
    rooms, table = root / "rooms", root / "tabletop"
    record("mujoco", "rooms", 2, STEPS_PER_EPISODE, "random", rooms, resolution=RES, seed=0)
    record("mujoco", "tabletop", 1, STEPS_PER_EPISODE, "random", table, resolution=RES, seed=0)
    config = root / "test16.json"
    config.write_text(TINY_CONFIG.to_json())
    return {"rooms": rooms, "tabletop": table, "config": config}
