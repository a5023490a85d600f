"""Small siblings of tiny64 shared by the model tests (same structure, fast on a CPU)."""

import dataclasses

from sim_env.model import CONFIGS

TINY = CONFIGS["tiny64"]
# 32x32, 2 layers, width 64: for tests that run several passes.
MICRO = dataclasses.replace(
    TINY,
    name="micro",
    dim=64,
    num_layers=2,
    num_heads=2,
    ffn_dim=128,
    height=32,
    width=32,
    image_height=32,
    image_width=32,
    chunk_frames=1,
)
