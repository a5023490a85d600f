"""The deferred cache roll (`sim_env.cache_roll`) changes no frame and no cache entry (CPU)."""

from __future__ import annotations

import pytest
import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.generative_world import GenerativeWorld

TURN = torch.tensor([0.3, 0.0, 0.0, 0.5, 0.1, 0.0], dtype=torch.float64)


def _references(world: GenerativeWorld, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    n, h, w = world.num_streams, world.height, world.width
    rgb = torch.randint(0, 256, (n, h, w, 3), generator=gen, dtype=torch.uint8)
    depth = 3.0 + torch.rand(n, h, w, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, 70.0)).repeat(n, 1, 1)
    pose = torch.stack([torch.as_tensor(look_at([0.0, 0.2 * i, 1.2], [3.0, 0.2 * i, 1.2])) for i in range(n)])
    return rgb, depth, K, pose


def _cache_state(world: GenerativeWorld) -> list[torch.Tensor]:
    c = world.cache
    return [c.keys, c.values, c.valid, c.active, c.poses]


@pytest.mark.parametrize("config", ["tiny64", "tiny-latent-test"])
def test_deferred_roll_equals_immediate_roll(config: str) -> None:
    """Rolling at the start of the next step (or at a reset / teleport) = rolling at the step's end."""
    immediate, deferred, untouched = (
        GenerativeWorld(config=config, num_worlds=2, denoising_steps=1, seed=4) for _ in range(3)
    )
    nav = TURN.repeat(2, 1)
    teleport = _references(immediate, 9)[3]

    def run(
        world: GenerativeWorld, flush: bool, teleport_world_0: bool = True
    ) -> list[dict[str, torch.Tensor]]:
        outputs = []

        def record(out: dict[str, torch.Tensor]) -> None:
            outputs.append({k: v.clone() for k, v in out.items()})
            if flush:
                world.flush_cache_roll()

        record(world.reset_batch(*_references(world, 0), seed=1))
        for _ in range(2):
            record(world.step_batch(nav))
            assert world._roll.pending != flush  # the roll really waits for the next step
        if teleport_world_0:
            record(world.teleport_batch(teleport, torch.tensor([True, False])))
        record(world.step_batch(nav))
        record(world.reset_batch(*_references(world, 5), seed=2, world_mask=torch.tensor([False, True])))
        for _ in range(2):
            record(world.step_batch(nav))
        world.flush_cache_roll()
        return outputs

    deferred_outputs = run(deferred, flush=False)
    for a, b in zip(run(immediate, flush=True), deferred_outputs, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # World 1 never noticed world 0's teleport: its frames equal those of a run without it.
    without = run(untouched, flush=False, teleport_world_0=False)
    for a, b in zip(deferred_outputs[:3] + deferred_outputs[4:], without, strict=True):
        for key in a:
            assert torch.equal(a[key][1], b[key][1]), key
    for a, b in zip(_cache_state(immediate), _cache_state(deferred), strict=True):
        assert torch.equal(a, b)
    assert immediate.cache.valid[:, immediate.cache.window.start].all()  # the rolls did happen
