"""`TrajectoryDataset`: windows of consecutive frames from a recorded dataset, for torch.

The dataset indexes (episode, agent, window start) triples from the manifest alone, so
constructing it is cheap and only finished episodes are ever visible (an episode being
written, or left half-written by a crash, is not in the manifest). Arrays are opened
lazily with `np.load(mmap_mode="r")` on first access in each process and never pickled,
which is what lets `DataLoader(num_workers>0)` fork or spawn workers that each map the
files themselves instead of copying gigabytes of frames through pipes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bridge.trajectory_format import load_field, read_manifest

# Fields a window holds by default (hand_keypoints only where recorded).
DEFAULT_FIELDS = ("rgb", "depth", "pose", "K", "actions", "hand_keypoints")
PER_FRAME_FIELDS = (*DEFAULT_FIELDS, "frame_id", "sim_time", "collided")
# Open arrays kept per process; a window touches ~6 per episode, so this spans ~10 episodes.
MAX_OPEN_ARRAYS = 64


class TrajectoryDataset(Dataset):
    """Windows of `window` consecutive frames of one agent within one episode.

    Index order is episode (manifest order) x agent x window start, with starts
    0, stride, 2 * stride ... while the window fits; windows never cross episodes.

    Args:
        root: dataset directory written by `bridge.recorder.record`.
        window: frames per item (W).
        stride: frames between consecutive window starts.
        agent: only this agent id; None takes every agent.
        fields: per-frame fields to return (default: rgb, depth, pose, K, actions and
            hand_keypoints where recorded); also frame_id, sim_time, collided.

    Items are dicts of tensors: rgb uint8 (W, H, Wd, 3), depth float32 (W, H, Wd), pose
    float64 (W, 4, 4), K float64 (W, 3, 3), actions float32 (W, 22) (row t is the action
    that led into frame t; see `bridge.recorder.encode_action`), hand_keypoints float32
    (W, 2, 21, 3), plus int64 scalars `episode` (position in the manifest), `agent`
    (index into `agent_ids`) and `start` (first frame).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        window: int,
        stride: int = 1,
        agent: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
        self.root = Path(root)
        self.window, self.stride = int(window), int(stride)
        manifest = read_manifest(self.root)
        self.agent_ids: tuple[str, ...] = tuple(manifest.get("agent_ids") or ())
        self.resolution = tuple(manifest.get("resolution") or ())
        self.episodes: list[dict[str, Any]] = list(manifest["episodes"])
        if agent is not None and agent not in self.agent_ids:
            raise ValueError(f"agent {agent!r} is not in this dataset; agents are {list(self.agent_ids)}")
        agents = [self.agent_ids.index(agent)] if agent is not None else list(range(len(self.agent_ids)))
        self._explicit_fields = fields is not None
        self.fields = tuple(fields) if fields is not None else DEFAULT_FIELDS
        unknown = [f for f in self.fields if f not in PER_FRAME_FIELDS]
        if unknown:
            raise ValueError(f"unknown fields {unknown}; choose from {list(PER_FRAME_FIELDS)}")
        rows = []
        for e, episode in enumerate(self.episodes):
            missing = [f for f in self.fields if self._explicit_fields and f not in episode["fields"]]
            if missing:
                raise ValueError(f"episode {episode['name']} has no fields {missing}")
            starts = np.arange(0, episode["frames"] - self.window + 1, self.stride)
            for a in agents:
                rows.append(np.stack([np.full_like(starts, e), np.full_like(starts, a), starts], axis=1))
        # (N, 3) int64 table of (episode, agent, start): compact, picklable, O(1) lookup.
        self._index = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} windows")
        e, a, start = (int(v) for v in self._index[i])
        item: dict[str, torch.Tensor] = {}
        for field in self.fields:
            if field not in self.episodes[e]["fields"]:
                continue  # optional default field (hand_keypoints) this episode lacks
            frames = self._array(e, field)[start : start + self.window, a]
            item[field] = torch.from_numpy(np.array(frames))  # copy: maps are read-only
        item["episode"] = torch.tensor(e, dtype=torch.int64)
        item["agent"] = torch.tensor(a, dtype=torch.int64)
        item["start"] = torch.tensor(start, dtype=torch.int64)
        return item

    def locate(self, i: int) -> tuple[str, str, int]:
        """(episode name, agent id, start frame) of item i, for logs and debugging."""
        e, a, start = (int(v) for v in self._index[i])
        return self.episodes[e]["name"], self.agent_ids[a], start

    def _array(self, episode: int, field: str) -> np.ndarray:
        """The (memory-mapped) array of one field, through a small LRU of open files.

        Each map holds a file descriptor (and a zstd-coded field a decoded copy), so the
        cache is bounded rather than growing with the number of episodes touched.
        """
        key = (episode, field)
        array = self._arrays.pop(key, None)
        if array is None:
            array = load_field(self.root, self.episodes[episode]["name"], field)
            while len(self._arrays) >= MAX_OPEN_ARRAYS:
                self._arrays.pop(next(iter(self._arrays)))
        self._arrays[key] = array  # re-insert: most recently used last
        return array

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are per process: a worker re-opens what it touches.
        state = self.__dict__.copy()
        state["_arrays"] = {}
        return state
