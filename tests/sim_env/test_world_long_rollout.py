"""World-level 2,000-step rollout: cache and memory storage constant, RoPE positions bounded.

``tiny64`` runs ~9 steps/s on a 2-core CPU, so this uses ``tiny16-test`` (tiny64's layout at
16×16, one narrow layer) with one denoising step: the runtime code path is the same, only the
model is smaller. One torch thread: tiny kernels lose more to thread hand-offs than they gain.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.generative_world import GenerativeWorld

STEPS = 2000
SIZE = 16


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_cache_and_memory_constant_over_2000_world_steps(one_thread: None) -> None:
    world = GenerativeWorld(config="tiny16-test", denoising_steps=1, memory_capacity=1024, seed=3)
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (1, SIZE, SIZE, 3), dtype=torch.uint8, generator=gen)
    depth = 3.0 + torch.rand(1, SIZE, SIZE, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(SIZE, SIZE, 70.0))[None]
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2]))[None]
    world.reset_batch(rgb, depth, K, pose, seed=1)
    cache, memory = world.cache, world.memory
    tensors = [cache.keys, cache.values, cache.valid, cache.poses, cache.cos, cache.sin]
    tensors += [memory.xyz, memory.rgb, memory.valid, world.rgb, world.depth]
    storage = [(t.data_ptr(), tuple(t.shape)) for t in tensors]
    nbytes = cache.memory_bytes()
    positions = cache.positions.clone()
    # Turn on the spot with a little pitch: ever new views, so the pool keeps admitting frames.
    navs = [torch.tensor([[0.0, 0.0, 0.0, 1.0, pitch, 0.0]], dtype=torch.float64) for pitch in (0.3, -0.3)]
    pool = slice(cache.memory.start, cache.memory.stop)
    pool_filled_at = None
    for step in range(STEPS):
        out = world.step_batch(navs[(step // 50) % 2])
        if pool_filled_at is None and bool(cache.valid[0, pool].all()):
            pool_filled_at = step
    assert [(t.data_ptr(), tuple(t.shape)) for t in tensors] == storage
    assert cache.memory_bytes() == nbytes
    assert torch.equal(cache.positions, positions)  # fixed per-slot positions, never advanced
    assert int(cache.positions[:, 0].max()) == cache.num_slots - 1  # time positions bounded by the slots
    assert pool_filled_at is not None and pool_filled_at < STEPS // 2  # the pool is in use
    assert int(memory.count().max()) <= memory.xyz.shape[1]
    assert int(out["frame_id"][0]) == STEPS
    assert torch.isfinite(out["pose"]).all()
