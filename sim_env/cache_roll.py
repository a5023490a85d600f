"""The ST-cache roll of a step, deferred to the next step and run beside its conditioning.

A step ends by rolling its cache (`STCache.advance`: the chunk enters the local window, the
frames leaving it are offered to the memory pool). Nothing in the step's outputs depends on
that roll, and the next step's conditioning (memory splat, TAEHV encode, Plücker rays) reads the
point-cloud memory, never the cache. So the runtime leaves the roll pending and runs it at the
start of the next step on its side CUDA stream while the conditioning runs on the main one; the
denoising waits for both. Anything else that touches the cache (reset, teleport, code reading
``runtime.cache``) flushes the pending roll first, so results equal the immediate roll's.
Without a side stream (the CPU, or ``SpeedOptions(overlap_decode=False)``) the pending roll simply runs first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from sim_env.model.st_cache import AdmitPolicy, STCache

PhaseTimer = Callable[[str], contextlib.AbstractContextManager[object]]


class DeferredCacheRoll:
    """Holds the poses of the chunk waiting to enter the window, and rolls when asked.

    Args:
        cache: the runtime's ST-cache.
        admit: memory-pool admission policy of the roll.
        side_stream: CUDA stream to roll on beside the conditioning, or None.
    """

    def __init__(self, cache: STCache, admit: AdmitPolicy, side_stream: torch.cuda.Stream | None) -> None:
        self.cache, self.admit, self.side_stream = cache, admit, side_stream
        self.poses = torch.zeros(
            cache.batch_size, cache.chunk.frames, 4, 4, device=cache.poses.device, dtype=torch.float32
        )  # preallocated: a captured CUDA graph reads the same buffer at every replay
        self.pending = False

    def defer(self, chunk_poses: torch.Tensor) -> None:
        """Leave the roll of the chunk at ``chunk_poses`` (B, chunk_frames, 4, 4) for later."""
        self.poses.copy_(chunk_poses)
        self.pending = True

    def flush(self, timer: PhaseTimer = contextlib.nullcontext) -> None:
        """Roll now (on the current stream) if a roll is pending."""
        if self.pending:
            with timer("cache_roll"):
                self.cache.advance(self.poses, self.admit)
            self.pending = False

    @contextlib.contextmanager
    def beside(self, timer: PhaseTimer = contextlib.nullcontext) -> Iterator[None]:
        """Run the pending roll beside the block (on the side stream), joined when it ends.

        The block must not touch the cache.
        """
        side = self.side_stream
        if not self.pending or side is None:
            self.flush(timer)
            yield
            return
        main = torch.cuda.current_stream(side.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            self.flush(timer)
        try:
            yield
        finally:
            main.wait_stream(side)


class CacheSnapshot:
    """A copy of the ST-cache's per-stream state, to put back on the streams a teleport spares.

    A teleport generates every stream (static shapes) but commits only the teleported ones; the
    others get their history back from this copy.
    """

    def __init__(self, cache: STCache) -> None:
        self.cache = cache
        self.saved = [t.clone() for t in self._tensors()]

    def _tensors(self) -> list[torch.Tensor]:
        c = self.cache
        return [c.keys, c.values, c.valid, c.active, c.poses]

    def restore_except(self, changed: torch.Tensor) -> None:
        """Put the saved state back on every stream outside ``changed`` (N,) bool."""
        c = self.cache
        for live, saved in zip(self._tensors(), self.saved, strict=True):
            keep = changed.reshape((1, -1) if live is c.keys or live is c.values else (-1,))
            keep = keep.reshape(*keep.shape, *([1] * (live.dim() - keep.dim())))
            live.copy_(torch.where(keep, live, saved))
        c.refresh_attention()  # the restored history of the other streams
