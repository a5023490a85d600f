"""Masked (per-world) reset and the ablation switches of the generative runtime (tiny64, CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bridge.types import FailedPreconditionError, InvalidArgumentError
from sim_env.generative_world import GenerativeWorld
from sim_env.memory.reference_pin import reference_pin_mask
from tests.sim_env.test_generative_world import batch_tensors, reference

STEPS = 1
# Same tolerances as the batch-invariance test: float32 GEMMs block differently per batch size.
DEPTH_RTOL = 1e-4
RGB_ATOL = 1
TURN = torch.tensor([0.2, 0.0, 0.0, 0.6, 0.1, 0.0], dtype=torch.float64)


def make(**kw) -> GenerativeWorld:
    return GenerativeWorld(denoising_steps=STEPS, seed=3, **kw)


def _close(a: dict, b: dict, rows: slice) -> None:
    torch.testing.assert_close(a["depth"][rows], b["depth"][rows], rtol=DEPTH_RTOL, atol=0)
    assert (a["rgb"][rows].int() - b["rgb"][rows].int()).abs().max() <= RGB_ATOL
    assert torch.equal(a["pose"][rows], b["pose"][rows])


def test_masked_reset_restarts_only_the_masked_world() -> None:
    refs = [reference(0), reference(1)]
    nav = TURN.repeat(2, 1)
    untouched, restarted = make(num_worlds=2), make(num_worlds=2)
    for world in (untouched, restarted):
        world.reset_batch(*batch_tensors(refs), seed=5)
        for _ in range(3):
            world.step_batch(nav)
    # World 0 of `restarted` starts over from a new reference with stream seed 99.
    new_refs = [reference(4), reference(1)]
    out = restarted.reset_batch(
        *batch_tensors(new_refs), stream_seeds=[99, -1], world_mask=torch.tensor([True, False])
    )
    assert out["frame_id"].tolist() == [0, 3]
    assert torch.equal(out["rgb"][0], batch_tensors(new_refs)[0][0])
    fresh = make(num_worlds=1)
    fresh.reset_batch(*batch_tensors([reference(4)]), stream_seeds=[99])
    for _ in range(3):
        a, b, c = (w.step_batch(nav[: w.num_streams]) for w in (restarted, untouched, fresh))
        _close(a, b, slice(1, 2))  # world 1 never noticed the reset of world 0
        _close(a, c, slice(0, 1))  # world 0 behaves exactly like a freshly reset world
    assert restarted.frame_id.tolist() == [3, 6]


def test_masked_reset_checks_its_mask() -> None:
    world = make(num_worlds=2)
    refs = batch_tensors([reference(0), reference(1)])
    with pytest.raises(FailedPreconditionError, match="first reset"):
        world.reset_batch(*refs, world_mask=torch.tensor([True, False]))
    world.reset_batch(*refs)
    with pytest.raises(InvalidArgumentError, match="world_mask"):
        world.reset_batch(*refs, world_mask=torch.tensor([True]))


def test_window_memory_mode_keeps_only_the_latest_frame() -> None:
    full, window = make(), make(memory_mode="window")
    for world in (full, window):
        world.reset_batch(*batch_tensors([reference(0)]))
        for _ in range(4):
            world.step_batch(TURN[None])
    assert window.admission is None and full.admission is not None
    cache = window.cache
    assert not bool(cache.valid[0, cache.memory.start : cache.memory.stop].any())
    assert int(window.memory.count()[0]) < int(full.memory.count()[0])
    with pytest.raises(InvalidArgumentError, match="memory_mode"):
        make(memory_mode="everything")


def test_hand_conditioning_switch_changes_the_frames() -> None:
    hand = torch.zeros(1, 14, dtype=torch.float64)
    hand[0, 2] = hand[0, 9] = 0.5  # both wrists forward: skeletons in view
    out = {}
    for flag in (True, False):
        world = make(condition_hands=flag)
        world.reset_batch(*batch_tensors([reference(0)]), seed=1)
        out[flag] = world.step_batch(torch.zeros(1, 6, dtype=torch.float64), hand)["rgb"].clone()
    assert not torch.equal(out[True], out[False])


def test_reset_pins_the_reference_except_the_hands() -> None:
    ref = reference(0)
    fx, cx, cy = float(ref.K[0, 0]), float(ref.K[0, 2]), float(ref.K[1, 2])
    hands = np.full((2, 21, 3), np.nan, np.float32)
    u = np.linspace(10.0, 20.0, 21)  # one hand over columns 10..20 of rows 40..50, 0.5 m away
    v = np.linspace(40.0, 50.0, 21)
    hands[0] = np.stack([(u - cx) * 0.5 / fx, (v - cy) * 0.5 / fx, np.full(21, 0.5)], -1)
    with_hands = dataclasses.replace(ref, hand_keypoints=hands)
    pinned = make(num_worlds=1)
    pinned.reset(options={"reference": {"agent_0": with_hands}})
    mem = pinned.memory
    n_valid, n_pinned = int(mem.valid.sum()), int(mem.pinned.sum())
    assert 0 < n_pinned < n_valid  # the hand box went in unpinned
    K = torch.as_tensor(ref.K)[None]
    expected = reference_pin_mask(torch.as_tensor(hands)[None], K, *ref.depth.shape)
    assert not expected.all() and expected.float().mean() > 0.8
    assert n_pinned <= int(expected.sum())
    for _ in range(3):
        pinned.step_batch(TURN[None])
    assert int((mem.pinned & mem.valid).sum()) == n_pinned  # nothing pinned was evicted or added
    unpinned = make(num_worlds=1, pin_reference=False)
    unpinned.reset(options={"reference": {"agent_0": with_hands}})
    assert not unpinned.memory.pinned.any()
    # By default only references that fill at most half of the memory are pinned.
    assert pinned.pin_reference and not make(num_worlds=1, memory_capacity=2 * 64 * 64 - 1).pin_reference


@pytest.mark.parametrize("carve", [False, True])
def test_carving_keeps_surfaces_drawn_in_the_references_empty_space_out_of_memory(carve: bool) -> None:
    world = make(num_worlds=1, carve_free_space=carve)
    world.reset_batch(*batch_tensors([reference(0)]), seed=5)  # a wall 4-5 m ahead
    world.step_batch(TURN[None])  # no hands: their boxes would never be carved
    world.teleport_batch(world.frames_pose[:, -1].clone(), torch.ones(1, dtype=torch.bool))
    before = int(world.memory.valid.sum())
    # Back at the reference pose, a frame drawn twice too near: inside the wall's empty space.
    world.pose.copy_(torch.as_tensor(reference(0).pose))
    world.depth.fill_(2.0)
    world._insert_memory(None)
    grew = int(world.memory.valid.sum()) > before
    assert grew != carve
    assert make(memory_mode="window", carve_free_space=True).carve_free_space is False


@pytest.mark.parametrize("background_free", [False, True])
def test_a_reference_that_saw_the_background_carves_its_whole_ray_when_asked(background_free: bool) -> None:
    """The reference's left half looks out of the scene (+inf): a surface drawn 50 m out there stays out."""
    world = make(num_worlds=1, background_free=background_free)
    assert world.background_free == background_free
    ref = reference(0)
    ref.depth[:, : ref.depth.shape[1] // 2] = np.inf
    world.reset_batch(*batch_tensors([ref]), seed=5)
    before = int(world.memory.valid.sum())
    world.depth.fill_(float("inf"))
    world.depth[:, :, :20] = 50.0  # well inside the background's rays
    world._insert_memory(None)
    assert (int(world.memory.valid.sum()) > before) != background_free


def test_the_collision_rule_ignores_surfaces_drawn_in_the_references_empty_space() -> None:
    world = make(num_worlds=1, carve_free_space=True)
    forward = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    blocked = []
    for carved in (False, True):
        world.reset_batch(*batch_tensors([reference(0)]), seed=5)  # a wall 4-5 m ahead
        world.depth.fill_(0.1)  # a frame that draws a wall right in front of the camera
        world.carved.fill_(carved)
        blocked.append(bool(world.step_batch(forward)["collided"][0]))
    assert blocked == [True, False]


def test_carving_never_drops_a_reference_even_unpinned() -> None:
    """A new episode's reference is ground truth: it enters whole, whatever the last episode saw."""
    counts = []
    for carve in (False, True):
        world = make(num_worlds=1, carve_free_space=carve, pin_reference=False)
        world.reset_batch(*batch_tensors([reference(0, depth_m=8.0)]), seed=5)
        world.reset_batch(*batch_tensors([reference(0, depth_m=1.0)]), seed=5)  # well inside it
        counts.append(int(world.memory.valid.sum()))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("occlusion", [False, True])
def test_sample_footprints_keep_the_references_spacing_and_occlude_with_it(
    occlusion: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only with footprint occlusion, which is what reads the spacing."""
    import sim_env.anchor_view as anchor_module

    seen = []
    original = anchor_module.occlude_by_footprints

    def spy(*args, sample_pixels=None, **kw):
        seen.append(sample_pixels)
        return original(*args, sample_pixels=sample_pixels, **kw)

    monkeypatch.setattr(anchor_module, "occlude_by_footprints", spy)
    world = make(num_worlds=1, footprint_occlusion=occlusion, sample_footprints=True)
    assert world.sample_footprints == occlusion
    ref = reference(0)
    world.reset_batch(*batch_tensors([ref]), seed=5)
    pinned = world.memory.pinned & world.memory.valid
    assert bool(pinned.any())
    if occlusion:
        assert bool((world.memory.offsets[pinned].abs().amax(-1) > 0.0).any())
    else:  # the memory does not even hold them
        assert world.memory.offsets is None
    world.step_batch(TURN[None])
    assert len(seen) == int(occlusion)
    if occlusion:  # the render's spacing channel: the reference's pixel footprints and more
        spacing = seen[0]
        assert spacing.shape == (1, *ref.depth.shape)
        assert float(spacing.max()) >= float(np.nanmin(ref.depth[np.isfinite(ref.depth)])) / float(
            ref.K[0, 0]
        )
