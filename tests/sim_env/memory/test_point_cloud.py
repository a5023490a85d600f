"""PointCloudMemory: fixed storage, voxel merging, eviction, masks and batch invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.memory import PointCloudMemory
from sim_env.memory.point_cloud import EMPTY_VOXEL, OFFSET_CHANNELS, PIN_CHANNEL

H, W = 12, 16
K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0))


def _frames(seed: int, batch: int, steps: int):
    """Per step: random RGB-D frames with holes and poses wandering around a room, (B, ...)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for step in range(steps):
        depth = 1.0 + 4.0 * torch.rand(batch, H, W, generator=g, dtype=torch.float64)
        depth[torch.rand(batch, H, W, generator=g) < 0.1] = float("inf")
        rgb = torch.randint(0, 256, (batch, H, W, 3), generator=g, dtype=torch.uint8)
        poses = []
        for b in range(batch):
            angle = 0.4 * step + b
            eye = [0.3 * np.cos(angle), 0.3 * np.sin(angle), 1.0 + 0.05 * b]
            poses.append(look_at(eye, [3.0 * np.cos(angle + 0.5), 3.0 * np.sin(angle + 0.5), 1.0]))
        out.append((rgb, depth, K.expand(batch, 3, 3), torch.as_tensor(np.stack(poses))))
    return out


def _state(m: PointCloudMemory) -> list[torch.Tensor]:
    return [m.xyz, m.rgb, m.weight, m.key, m.valid, m.last_seen, m.step]


def test_capacity_bounded_and_storage_fixed():
    capacity = 300  # < one frame (192 px) x 2: eviction starts on the second insert
    m = PointCloudMemory(2, capacity, voxel_size=0.05, dtype=torch.float64)
    before = [(t.shape, t.dtype, t.data_ptr()) for t in _state(m)]
    for rgb, depth, Ks, poses in _frames(0, 2, 25):
        m.insert(rgb, depth, Ks, poses)
        assert (m.count() <= capacity).all()
    assert [(t.shape, t.dtype, t.data_ptr()) for t in _state(m)] == before
    assert (m.count() == capacity).all()
    assert (m.key[m.valid] != EMPTY_VOXEL).all() and (m.key[~m.valid] == EMPTY_VOXEL).all()
    assert m.step.tolist() == [25, 25]
    # Keys are unique among valid slots: merging really deduplicated voxels.
    for b in range(2):
        keys = m.key[b][m.valid[b]]
        assert keys.unique().numel() == keys.numel()
    # Least-recently-seen eviction: every voxel of the newest frame survives, marked as seen now.
    fresh = PointCloudMemory(2, capacity, voxel_size=0.05, dtype=torch.float64)
    fresh.insert(*_frames(0, 2, 25)[-1])
    for b in range(2):
        newest = fresh.key[b][fresh.valid[b]]
        assert torch.isin(newest, m.key[b]).all()
        assert (m.last_seen[b][torch.isin(m.key[b], newest)] == 25).all()
        assert (m.last_seen[b][m.valid[b]] >= 24).all()  # 300 slots hold < 2 frames


def test_voxel_merge_running_average():
    m = PointCloudMemory(1, 16, voxel_size=1.0, dtype=torch.float64)
    pose = torch.eye(4, dtype=torch.float64)[None]
    Ks = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    # Two pixels (u=0, u=1) at depth 2.5 land at x = -1.25 and +1.25: two voxels.
    depth = torch.full((1, 1, 2), 2.5, dtype=torch.float64)
    m.insert(torch.tensor([[[[0, 0, 0], [90, 90, 90]]]]), depth, Ks, pose)
    assert int(m.count()) == 2
    # Same pixels again with new colours: same voxels, colours averaged, weights 2.
    m.insert(torch.tensor([[[[100, 100, 100], [30, 30, 30]]]]), depth, Ks, pose)
    assert int(m.count()) == 2
    order = torch.argsort(m.xyz[0, :, 0].masked_fill(~m.valid[0], float("inf")))[:2]
    torch.testing.assert_close(m.rgb[0, order, 0], torch.tensor([50.0, 60.0], dtype=torch.float64))
    torch.testing.assert_close(m.weight[0, order], torch.tensor([2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(m.xyz[0, order, 0], torch.tensor([-1.25, 1.25], dtype=torch.float64))
    assert m.last_seen[0, order].tolist() == [2, 2]


def test_eviction_least_recently_seen_then_farthest():
    m = PointCloudMemory(1, 2, voxel_size=0.1, dtype=torch.float64)
    pose = torch.eye(4, dtype=torch.float64)[None]
    Ks = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    one = torch.zeros(1, 1, 1, 3)
    m.insert(one, torch.tensor([[[1.05]]]), Ks, pose)  # step 1: voxel at z = 1
    m.insert(one, torch.tensor([[[2.05]]]), Ks, pose)  # step 2: voxel at z = 2
    m.insert(one, torch.tensor([[[3.05]]]), Ks, pose)  # step 3: evicts z = 1 (oldest)
    assert sorted(m.xyz[0, :, 2].tolist()) == pytest.approx([2.05, 3.05])
    # Two new voxels in one step: both newer than z = 2 and z = 3; capacity 2 keeps them.
    m.insert(torch.zeros(1, 1, 2, 3), torch.tensor([[[4.05, 5.05]]]), Ks, pose)
    assert sorted(m.xyz[0, :, 2].tolist()) == pytest.approx([4.05, 5.05])
    # Capacity 1, one step with two voxels: the one nearer the camera is kept.
    m1 = PointCloudMemory(1, 1, voxel_size=0.1, dtype=torch.float64)
    m1.insert(torch.zeros(1, 1, 2, 3), torch.tensor([[[6.05, 1.05]]]), Ks, pose)
    assert m1.xyz[0, 0, 2].item() == pytest.approx(1.05)


def test_world_mask_and_reset():
    frames = _frames(1, 2, 3)
    m = PointCloudMemory(2, 400, voxel_size=0.05)
    m.insert(*frames[0])
    snapshot = [t.clone() for t in _state(m)]
    m.insert(*frames[1], world_mask=torch.tensor([True, False]))
    for before, after in zip(snapshot, _state(m), strict=True):
        assert torch.equal(before[1], after[1])  # world 1 untouched, slot for slot
    assert m.step.tolist() == [2, 1]
    m.reset(torch.tensor([False, True]))
    assert int(m.count()[1]) == 0 and int(m.count()[0]) > 0 and m.step.tolist() == [2, 0]
    assert torch.isinf(m.render(*frames[0][2:], H, W)[1][1]).all()


def test_batch_invariance_insert_render():
    steps = 6
    batch = _frames(2, 4, steps)
    together = PointCloudMemory(4, 250, voxel_size=0.05)
    alone = PointCloudMemory(1, 250, voxel_size=0.05)
    for rgb, depth, Ks, poses in batch:
        together.insert(rgb, depth, Ks, poses)
        alone.insert(rgb[2:3], depth[2:3], Ks[2:3], poses[2:3])
    rgb, depth, Ks, poses = batch[-1]
    # Render into a camera between two recent ones, so old and new points both show.
    out_b = together.render(Ks, poses, H, W)
    out_1 = alone.render(Ks[2:3], poses[2:3], H, W)
    # Per-world ops only (sort, scatter, topk along dim 1): identical, not just close.
    for a, b in zip(out_b, out_1, strict=True):
        assert torch.equal(a[2:3], b)
    assert torch.equal(together.xyz[2:3], alone.xyz) and torch.equal(together.valid[2:3], alone.valid)


def test_pinned_reference_survives_eviction_and_is_not_recoloured():
    capacity = 300
    m = PointCloudMemory(2, capacity, voxel_size=0.05, dtype=torch.float64)
    frames = _frames(3, 2, 25)
    rgb0, depth0, K0, pose0 = frames[0]
    pin = torch.ones(2, H, W, dtype=torch.bool)
    pin[1] = False  # world 1 inserts its reference unpinned: the old behaviour
    m.insert(rgb0, depth0, K0, pose0, pin_mask=pin)
    ref_keys = m.key[0][m.valid[0]].clone()
    ref_rgb = m.rgb[0][m.valid[0]].clone()
    assert m.pinned[0][m.valid[0]].all() and not m.pinned[1].any()
    # Later frames re-observe the reference's voxels with other colours and overflow the capacity.
    for step, (rgb, depth, Ks, poses) in enumerate(frames[1:]):
        if step % 2 == 0:
            rgb, depth, Ks, poses = 255 - rgb0, depth0, K0, pose0
        m.insert(rgb, depth, Ks, poses)
        assert (m.count() <= capacity).all()
    kept = torch.isin(m.key[0], ref_keys) & m.valid[0]
    assert kept.sum() == ref_keys.numel()  # world 0: every pinned voxel survived
    order = torch.argsort(m.key[0][kept])
    assert torch.equal(m.rgb[0][kept][order], ref_rgb[torch.argsort(ref_keys)])  # colours untouched
    assert m.pinned[0][kept].all() and not m.pinned[0][m.valid[0] & ~kept].any()
    # World 1 (unpinned): the re-observed voxels took the new colours in.
    ref1 = PointCloudMemory(1, capacity, voxel_size=0.05, dtype=torch.float64)
    ref1.insert(rgb0[1:], depth0[1:], K0[1:], pose0[1:])
    ref1_keys = ref1.key[0][ref1.valid[0]]
    same = torch.isin(m.key[1], ref1_keys) & m.valid[1]
    assert same.any()
    now = m.rgb[1][same][torch.argsort(m.key[1][same])]
    before = ref1.rgb[0][ref1.valid[0]][torch.isin(ref1_keys, m.key[1][same])]
    before = before[torch.argsort(ref1_keys[torch.isin(ref1_keys, m.key[1][same])])]
    assert (now - before).abs().amax() > 50  # averaged with the inverted colours
    m.reset(torch.tensor([True, False]))
    assert not m.pinned[0].any()


def test_render_with_pins_marks_pinned_pixels_and_serves_several_cameras_per_world():
    m = PointCloudMemory(2, 2048, voxel_size=0.05, dtype=torch.float64)
    (rgb0, depth0, K0, pose0), (rgb1, depth1, K1, pose1) = _frames(5, 2, 2)
    m.insert(rgb0, depth0, K0, pose0, pin_mask=torch.ones(2, H, W, dtype=torch.bool))
    m.insert(rgb1, depth1, K1, pose1)  # unpinned, seen from elsewhere
    colour, depth, mask = m.render(K1, pose1, H, W)
    values, depth_p, mask_p = m.render(K1, pose1, H, W, with_pins=True)
    assert values.shape[-1] == 4 and torch.equal(values[..., :3], colour)
    assert torch.equal(depth_p, depth) and torch.equal(mask_p, mask)
    flag = values[..., 3]
    assert set(flag.unique().tolist()) <= {0.0, 1.0} and not flag[~mask].any()
    assert flag[mask].any() and not flag[mask].all()  # both kinds of pixel in view
    # Two cameras per world: rows b·2 and b·2 + 1 look into world b.
    K2, pose2 = K1.repeat_interleave(2, 0), torch.stack([pose1[0], pose0[0], pose1[1], pose0[1]])
    both, _, _ = m.render(K2, pose2, H, W, with_pins=True, cameras_per_world=2)
    assert torch.equal(both[0], values[0]) and torch.equal(both[2], values[1])
    alone, _, _ = m.render(K0, pose0, H, W, with_pins=True)
    assert torch.equal(both[1], alone[0]) and torch.equal(both[3], alone[1])


def test_pinned_margin_lets_the_reference_win_unless_a_surface_is_clearly_nearer():
    # Pinned wall at 2 m; unpinned generated surfaces a little nearer (left) and far nearer (right).
    m = PointCloudMemory(1, 4096, voxel_size=0.001, dtype=torch.float64)
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.0], [3.0, 0.0, 1.0]))[None]
    wall = torch.full((1, H, W), 2.0, dtype=torch.float64)
    m.insert(
        torch.full((1, H, W, 3), 10), wall, K[None], pose, pin_mask=torch.ones(1, H, W, dtype=torch.bool)
    )
    generated = wall.clone()
    generated[..., : W // 2], generated[..., W // 2 :] = 1.8, 0.8
    m.insert(torch.full((1, H, W, 3), 200), generated, K[None], pose)

    plain, plain_depth, _ = m.render(K[None], pose, H, W)
    values, depth, mask = m.render(K[None], pose, H, W, with_pins=True, pinned_margin=0.5)
    colour, depth_c, _ = m.render(K[None], pose, H, W, pinned_margin=0.5)
    assert mask.all() and colour.shape[-1] == 3 and torch.equal(colour, values[..., :3])
    assert torch.equal(depth_c, depth)
    left, right = (
        (slice(None), slice(None), slice(0, W // 2)),
        (slice(None), slice(None), slice(W // 2, None)),
    )
    assert (plain[left] == 200).all() and (plain[right] == 200).all()  # no margin: nearest wins
    assert (values[left][..., 0] == 10).all() and (values[left][..., 3] == 1.0).all()
    assert (values[right][..., 0] == 200).all() and (values[right][..., 3] == 0.0).all()
    torch.testing.assert_close(depth[left], torch.full_like(depth[left], 2.0))
    torch.testing.assert_close(depth[right], plain_depth[right])  # each winner's true depth
    with pytest.raises(ValueError, match="pinned_margin"):
        m.render(K[None], pose, H, W, pinned_margin=-1.0)
    with pytest.raises(ValueError, match="pinned_margin"):
        m.render(K[None], pose, H, W, pinned_margin=float("inf"))


def _two_pixel_memory() -> tuple[PointCloudMemory, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A memory of 1 m voxels and a 1×2 camera whose two pixels land in two voxels 2.5 m ahead."""
    m = PointCloudMemory(1, 16, voxel_size=1.0, dtype=torch.float64)
    pose = torch.eye(4, dtype=torch.float64)[None]
    Ks = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    depth = torch.full((1, 1, 2), 2.5, dtype=torch.float64)
    return m, depth, Ks, pose


def test_a_voxel_pinned_first_keeps_its_values_and_pins_take_over_unpinned_voxels():
    """Two reference views of one voxel: the first keeps it; a pin replaces a generated voxel."""
    m, depth, Ks, pose = _two_pixel_memory()
    pin = torch.tensor([[[True, False]]])
    m.insert(torch.tensor([[[[10, 10, 10], [20, 20, 20]]]]), depth, Ks, pose, pin_mask=pin)
    both = torch.ones(1, 1, 2, dtype=torch.bool)
    m.insert(torch.tensor([[[[200, 200, 200], [120, 120, 120]]]]), depth, Ks, pose, pin_mask=both)
    order = torch.argsort(m.xyz[0, :, 0].masked_fill(~m.valid[0], float("inf")))[:2]
    # Pixel 0's voxel was pinned first: untouched. Pixel 1's was generated: the pin replaces it.
    torch.testing.assert_close(m.rgb[0, order, 0], torch.tensor([10.0, 120.0], dtype=torch.float64))
    assert m.pinned[0, order].tolist() == [True, True]


def test_primary_pins_render_as_two_and_keep_their_voxels_from_later_pins():
    """The start's own views (primary) show as 2 in the pinned channel; another spot's pin is 1."""
    m, depth, Ks, pose = _two_pixel_memory()
    left = torch.tensor([[[True, False]]])
    m.insert(torch.full((1, 1, 2, 3), 10), depth, Ks, pose, pin_mask=left, primary=True)
    both = torch.ones(1, 1, 2, dtype=torch.bool)
    m.insert(torch.full((1, 1, 2, 3), 200), depth, Ks, pose, pin_mask=both)  # another spot's view
    values, _, mask = m.render(Ks, pose, 1, 2, with_pins=True)
    assert mask.all()
    assert values[0, 0, :, 3].tolist() == [2.0, 1.0]
    assert values[0, 0, :, 0].tolist() == [10.0, 200.0]  # the primary voxel kept its colour
    m.reset()
    assert not m.primary.any()


def test_voxels_carry_their_sample_offsets_averaged_and_kept_by_pins():
    """The offset channels follow the pin channel; a pinned voxel keeps the offsets it was pinned with."""
    plain, depth, Ks, pose = _two_pixel_memory()
    offsets = torch.arange(12, dtype=torch.float64).reshape(1, 1, 2, 6)
    assert plain.offsets is None  # a memory keeps offsets only when made to
    with pytest.raises(ValueError, match="keep_offsets"):
        plain.insert(torch.full((1, 1, 2, 3), 10), depth, Ks, pose, offsets=offsets)
    with pytest.raises(ValueError, match="keep_offsets"):
        plain.render(Ks, pose, 1, 2, with_pins=True, with_offsets=True)
    m = PointCloudMemory(1, 16, voxel_size=1.0, dtype=torch.float64, keep_offsets=True)
    left = torch.tensor([[[True, False]]])
    m.insert(torch.full((1, 1, 2, 3), 10), depth, Ks, pose, pin_mask=left, offsets=offsets)
    m.insert(torch.full((1, 1, 2, 3), 10), depth, Ks, pose, offsets=torch.full_like(offsets, 3.0))
    m.insert(torch.full((1, 1, 2, 3), 10), depth, Ks, pose)  # a generated frame: no offsets (0)
    values, _, mask = m.render(Ks, pose, 1, 2, with_pins=True, with_offsets=True)
    assert mask.all() and values.shape[-1] == 10
    assert values[0, 0, :, PIN_CHANNEL].tolist() == [1.0, 0.0]
    torch.testing.assert_close(values[0, 0, 0, OFFSET_CHANNELS], offsets[0, 0, 0])  # pinned: as given
    torch.testing.assert_close(values[0, 0, 1, OFFSET_CHANNELS], (offsets[0, 0, 1] + 3.0) / 3)  # the mean
    assert m.render(Ks, pose, 1, 2, with_pins=True)[0].shape[-1] == 4
    with pytest.raises(ValueError, match="with_offsets needs with_pins"):
        m.render(Ks, pose, 1, 2, with_offsets=True)
    m.reset()
    assert not m.offsets.any()
