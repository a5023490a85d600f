"""Row-wise commits into the runtime's per-stream buffers (static shapes, no host sync)."""

from __future__ import annotations

import torch


def commit_rows(buffer: torch.Tensor, new: torch.Tensor, keep: torch.Tensor | None) -> None:
    """``buffer[i] = new[i]`` for the streams where ``keep`` (N,) is True (all when None), in place.

    A `torch.where` instead of indexing keeps the buffer's storage and shape, so the step stays
    capturable by CUDA graphs; ``new`` is cast to the buffer's device and dtype.
    """
    new = new.to(buffer.device, buffer.dtype)
    if keep is not None:
        new = torch.where(keep.reshape(-1, *([1] * (buffer.dim() - 1))), new, buffer)
    buffer.copy_(new)
