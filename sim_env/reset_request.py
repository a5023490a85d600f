"""What a `GenerativeRuntime.reset_batch` call asks for, checked before any state is touched.

A bad reset must fail with an error naming the argument and leave every world as it was, so the
checks all run first; the runtime then resets exactly the streams this returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch

from bridge.types import FailedPreconditionError, InvalidArgumentError
from sim_env.stream_noise import episode_stream_seeds

if TYPE_CHECKING:
    from sim_env.runtime import GenerativeRuntime


class ResetRequest(NamedTuple):
    """The worlds and streams to reset and each stream's noise seed."""

    worlds: torch.Tensor  # (B,) bool
    streams: torch.Tensor  # (N,) bool: every agent of the worlds being reset
    seeds: torch.Tensor  # (N,) int64


def checked_reset(
    runtime: GenerativeRuntime,
    rgb: torch.Tensor,
    depth: torch.Tensor,
    seed: int | None,
    stream_seeds: Sequence[int] | None,
    world_mask: torch.Tensor | None,
) -> ResetRequest:
    """Checks a reset's frames, mask and seeds against ``runtime`` (the arguments of its `reset_batch`)."""
    num_worlds, agents, device = runtime.num_worlds, runtime.agents_per_world, runtime.device
    n, (h, w) = runtime.num_streams, runtime.image_size
    if world_mask is not None and tuple(world_mask.shape) != (num_worlds,):
        raise InvalidArgumentError(
            f"world_mask must have shape ({num_worlds},), got {tuple(world_mask.shape)}"
        )
    if world_mask is not None and not runtime.is_reset and not bool(world_mask.all()):
        raise FailedPreconditionError("the first reset must reset every world (world_mask all True)")
    if tuple(rgb.shape) != (n, h, w, 3) or tuple(depth.shape) != (n, h, w):
        raise InvalidArgumentError(
            f"reference frames must be ({n}, {h}, {w}[, 3]), "
            f"got rgb {tuple(rgb.shape)}, depth {tuple(depth.shape)}"
        )
    base = runtime.seed if seed is None else int(seed)
    seeds = list(stream_seeds) if stream_seeds is not None else episode_stream_seeds(base, n)
    if len(seeds) != n:
        raise InvalidArgumentError(f"stream_seeds must have {n} entries, got {len(seeds)}")
    worlds = (
        torch.ones(num_worlds, dtype=torch.bool, device=device)
        if world_mask is None
        else world_mask.to(device, torch.bool)
    )
    seed_tensor = torch.tensor([int(s) for s in seeds], dtype=torch.int64, device=device)
    return ResetRequest(worlds, worlds.repeat_interleave(agents), seed_tensor)
