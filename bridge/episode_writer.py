"""Writing one episode to disk: memory-mapped .npy fields, fsync, atomic JSON.

Split from `bridge.recorder` (which schedules episodes and owns the manifest) so that the
on-disk mechanics — what is flushed when, and why a rename is safe — read in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zstandard
from numpy.lib.format import open_memmap

from bridge.trajectory_format import ACTION_DIM, ZSTD_SUFFIX, encode_action
from bridge.types import HAND_KEYPOINTS, NUM_HANDS, Action, Observation

TMP_PREFIX = ".tmp-"
ZSTD_LEVEL = 3  # fast; RGB of rendered scenes compresses well even at low levels


def fsync_path(path: Path) -> None:
    """Flushes a file or directory entry to disk: a rename is durable only after this."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Writes JSON through a temp file and `os.replace`: readers see the old or the new file."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def field_specs(obs: Observation, num_agents: int, frames: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """(shape, dtype) of every field, derived from the reset observation."""
    lead = (frames, num_agents)
    specs: dict[str, tuple[tuple[int, ...], Any]] = {
        "rgb": ((*lead, *obs.rgb.shape), np.uint8),
        "depth": ((*lead, *obs.depth.shape), np.float32),
        "pose": ((*lead, 4, 4), np.float64),
        "K": ((*lead, 3, 3), np.float64),
        "frame_id": (lead, np.int64),
        "sim_time": (lead, np.float64),
        "collided": (lead, np.bool_),
        "actions": ((*lead, ACTION_DIM), np.float32),
    }
    if obs.hand_keypoints is not None:
        specs["hand_keypoints"] = ((*lead, NUM_HANDS, HAND_KEYPOINTS, 3), np.float32)
    return specs


class EpisodeWriter:
    """Streams frames straight into memory-mapped .npy files, so RAM stays flat at any size."""

    def __init__(self, directory: Path, specs: Mapping[str, tuple[tuple[int, ...], Any]]) -> None:
        self.directory = directory
        self.arrays = {
            name: open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
            for name, (shape, dtype) in specs.items()
        }
        if "hand_keypoints" in self.arrays:
            self.arrays["hand_keypoints"][:] = np.nan  # frames without hands stay NaN

    def write(
        self,
        t: int,
        agent_ids: tuple[str, ...],
        obs: Mapping[str, Observation],
        actions: Mapping[str, Action] | None,
    ) -> None:
        """Stores frame t of every agent; validating here keeps a bad World out of the dataset."""
        for a, agent in enumerate(agent_ids):
            o = obs[agent]
            o.validate()
            arr = self.arrays
            arr["rgb"][t, a] = o.rgb
            arr["depth"][t, a] = o.depth
            arr["pose"][t, a] = o.pose
            arr["K"][t, a] = o.K
            arr["frame_id"][t, a] = o.frame_id
            arr["sim_time"][t, a] = o.sim_time
            arr["collided"][t, a] = o.collided
            arr["actions"][t, a] = encode_action(None if actions is None else actions.get(agent))
            if "hand_keypoints" in arr and o.hand_keypoints is not None:
                arr["hand_keypoints"][t, a] = o.hand_keypoints

    def finish(self, rgb_codec: str) -> None:
        """Flushes everything to disk (and compresses RGB if asked) before the rename."""
        for array in self.arrays.values():
            array.flush()
        names, self.arrays = list(self.arrays), {}  # drops the maps; the files stay
        for name in names:
            fsync_path(self.directory / f"{name}.npy")
        if rgb_codec == "zstd":
            raw = self.directory / "rgb.npy"
            packed = raw.with_name(raw.name + ZSTD_SUFFIX)
            with open(raw, "rb") as src, open(packed, "wb") as dst:
                zstandard.ZstdCompressor(level=ZSTD_LEVEL).copy_stream(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            raw.unlink()
