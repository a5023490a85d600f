"""Where the frames of a training clip sit in the ST-cache at inference time.

The runtime attends from the current frame to fixed-position cache slots
``[anchor | memory pool | window | current]`` (`sim_env.model.st_cache`). A training clip is
built to look exactly like that: the reference frame at slot 0, some frames that already left
the window in the first memory slots, the most recent frames at the END of the window (the
window fills from its last slot, as `STCache.advance` shifts frames in) and the frame being
generated in the chunk slot. The clip's RoPE positions are these slot indices, so the positions
the model learns are the ones it meets in the cache however long the rollout runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sim_env.model.config import DiTConfig


@dataclass(frozen=True)
class ClipLayout:
    """Which recorded frames form a clip and at which cache slot each one sits.

    Attributes:
        frame_indices: indices into the recorded span (0 = the reference frame); ascending, the
            last one is the frame being generated.
        positions: the ST-cache slot index (RoPE time position) of each clip frame.
    """

    frame_indices: tuple[int, ...]
    positions: tuple[int, ...]

    @property
    def frames(self) -> int:
        """Number of clip frames."""
        return len(self.frame_indices)

    @property
    def current(self) -> int:
        """Recorded index of the frame being generated."""
        return self.frame_indices[-1]

    def position_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The positions as an int64 tensor for ``CausalDiT(frame_positions=...)``."""
        return torch.tensor(self.positions, dtype=torch.int64, device=device)


def require_single_frame_chunks(config: DiTConfig) -> None:
    """Training mirrors the runtime, which generates one frame per chunk from one anchor."""
    if config.chunk_frames != 1 or config.anchor_frames != 1:
        raise NotImplementedError(
            f"config {config.name!r}: training supports chunk_frames == anchor_frames == 1 (as the runtime)"
        )


def runtime_layout(config: DiTConfig, history: int, generator: torch.Generator) -> ClipLayout:
    """The cache layout when ``history`` frames have been generated since the reference.

    The current frame has recorded index ``history + 1``. The last ``window_frames`` generated
    frames are in the window; the frames before them left the window, and the memory pool holds
    up to ``memory_frames`` of them — drawn at random here, standing in for the view-guided
    admission policy, and kept in chronological order in the first pool slots.

    Args:
        config: model config (slot counts).
        history: generated frames before the current one (>= 0).
        generator: source of the memory-pool draw.
    """
    require_single_frame_chunks(config)
    if history < 0:
        raise ValueError(f"history must be >= 0, got {history}")
    a, m, w = config.anchor_frames, config.memory_frames, config.window_frames
    current = history + 1
    n_window = min(history, w)
    window_indices = list(range(current - n_window, current))
    window_positions = list(range(a + m + w - n_window, a + m + w))
    left_window = list(range(1, current - n_window))
    n_memory = min(len(left_window), m)
    if n_memory:
        picks = torch.randperm(len(left_window), generator=generator)[:n_memory].sort().values.tolist()
        memory_indices = [left_window[i] for i in picks]
    else:
        memory_indices = []
    memory_positions = list(range(a, a + n_memory))
    return ClipLayout(
        frame_indices=(0, *memory_indices, *window_indices, current),
        positions=(0, *memory_positions, *window_positions, a + m + w),
    )
