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
# 8x8 frames, patch 4 -> 4 tokens per frame; one layer: 2,000 real model steps in a few seconds.
NANO = dataclasses.replace(
    TINY,
    name="nano",
    dim=32,
    num_layers=1,
    num_heads=2,
    ffn_dim=64,
    height=8,
    width=8,
    image_height=8,
    image_width=8,
    anchor_frames=1,
    memory_frames=2,
    window_frames=2,
    chunk_frames=1,
)
