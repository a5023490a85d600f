"""Recorded trajectory windows → training batches in a deterministic, resumable order.

`TrainingData` concatenates one or more `bridge.dataset.TrajectoryDataset` directories (e.g.
``rooms`` and ``tabletop``-with-hands recordings). The batch at global step s is a pure function
of (seed, s): `StepBatchSampler` draws a fresh permutation per epoch from the seed and slices it
by step, so a resumed run sees exactly the batches the uninterrupted run would have seen, with
any number of loader workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import ConcatDataset, Sampler

from bridge.dataset import TrajectoryDataset
from bridge.types import HAND_KEYPOINTS, NUM_HANDS
from sim_env.model.config import DiTConfig

FIELDS = ("rgb", "depth", "pose", "K", "hand_keypoints")


def open_datasets(roots: Sequence[str | os.PathLike[str]], span: int, stride: int) -> ConcatDataset:
    """All windows of ``span`` frames (start every ``stride`` frames) of the given recordings."""
    if not roots:
        raise ValueError("data: give at least one recorded dataset directory")
    parts = [TrajectoryDataset(root, window=span, stride=stride) for root in roots]
    empty = [str(r) for r, p in zip(roots, parts, strict=True) if len(p) == 0]
    if empty:
        raise ValueError(f"data: no window of {span} frames in {empty} (record longer episodes)")
    return ConcatDataset(parts)


def check_resolution(data: ConcatDataset, config: DiTConfig) -> None:
    """Pixel-space configs generate frames at the recorded resolution; anything else is an error."""
    for part in data.datasets:
        resolution = tuple(part.resolution)
        if resolution != (config.height, config.width) or resolution != (
            config.image_height,
            config.image_width,
        ):
            raise ValueError(
                f"data: {part.root} is recorded at {resolution}, config {config.name!r} needs "
                f"({config.height}, {config.width})"
            )


@dataclass
class WindowBatch:
    """A collated batch of recorded windows (B windows of T frames).

    Attributes:
        rgb: (B, T, H, W, 3) uint8.
        depth: (B, T, H, W) float32 metres.
        pose: (B, T, 4, 4) float64 camera-to-world.
        K: (B, T, 3, 3) float64.
        hand_keypoints: (B, T, 2, 21, 3) float32 camera-frame keypoints (zeros without hands).
        has_hands: (B,) bool, windows recorded with hands.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    pose: torch.Tensor
    K: torch.Tensor
    hand_keypoints: torch.Tensor
    has_hands: torch.Tensor

    def to(self, device: torch.device | str) -> WindowBatch:
        """The batch on ``device`` (non-blocking where the source is pinned)."""
        return WindowBatch(
            *(getattr(self, f).to(device, non_blocking=True) for f in self.__dataclass_fields__)
        )

    def pin_memory(self) -> WindowBatch:
        """Page-locked copy (called by ``DataLoader(pin_memory=True)``) for asynchronous uploads."""
        return WindowBatch(*(getattr(self, f).pin_memory() for f in self.__dataclass_fields__))

    def frames(self, count: int) -> WindowBatch:
        """The first ``count`` frames of every window."""
        return WindowBatch(
            self.rgb[:, :count],
            self.depth[:, :count],
            self.pose[:, :count],
            self.K[:, :count],
            self.hand_keypoints[:, :count],
            self.has_hands,
        )

    def reference_hands(self) -> torch.Tensor:
        """(B, 2, 21, 3) keypoints of each window's first (reference) frame, NaN without hands."""
        keypoints = self.hand_keypoints[:, 0]
        return torch.where(self.has_hands[:, None, None, None], keypoints, float("nan"))


def collate_windows(items: Sequence[dict[str, torch.Tensor]]) -> WindowBatch:
    """Stack dataset items; windows without hands get zero keypoints and ``has_hands`` False."""
    span = items[0]["rgb"].shape[0]
    no_hands = torch.zeros(span, NUM_HANDS, HAND_KEYPOINTS, 3, dtype=torch.float32)
    return WindowBatch(
        rgb=torch.stack([it["rgb"] for it in items]),
        depth=torch.stack([it["depth"] for it in items]),
        pose=torch.stack([it["pose"] for it in items]),
        K=torch.stack([it["K"] for it in items]),
        hand_keypoints=torch.stack([it.get("hand_keypoints", no_hands).to(torch.float32) for it in items]),
        has_hands=torch.tensor(["hand_keypoints" in it for it in items], dtype=torch.bool),
    )


class StepBatchSampler(Sampler[list[int]]):
    """Index batches for global steps ``start_step .. total_steps − 1``, a pure function of (seed, step).

    Args:
        size: number of dataset items.
        batch_size: items per batch (drawn without replacement within an epoch).
        seed: base seed of the per-epoch permutations.
        start_step: first step to yield (the data position of a resumed run).
        total_steps: one past the last step.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, total_steps: int) -> None:
        if size < 1 or batch_size < 1:
            raise ValueError(f"size and batch_size must be positive, got {size}, {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, int(seed)
        self.start_step, self.total_steps = int(start_step), int(total_steps)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def __len__(self) -> int:
        return max(self.total_steps - self.start_step, 0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=g)
        return self._perm

    def batch(self, step: int) -> list[int]:
        """Item indices of global step ``step`` (wrapping across epoch boundaries)."""
        out = []
        for k in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, offset = divmod(k, self.size)
            out.append(int(self._permutation(epoch)[offset]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)
