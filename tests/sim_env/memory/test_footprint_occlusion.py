"""Every voxel hides what lies behind its footprint (`sim_env.memory.footprint_occlusion`)."""

from __future__ import annotations

import torch

from sim_env.memory.footprint_occlusion import footprint_radius, occlude_by_footprints
from sim_env.memory.point_cloud import OFFSET_CHANNELS, PointCloudMemory
from sim_env.memory.sample_spacing import projected_spacing, sample_offsets

FX = 46.0  # a 64-pixel, 70° view
VOXEL = 0.05
MARGIN = 4.0


def _scene(size: int = 16) -> tuple[torch.Tensor, ...]:
    """An empty (1, size, size) splat: values (colour, pin flag), depth (+inf), validity, pinned."""
    values = torch.zeros(1, size, size, 2)
    depth = torch.full((1, size, size), float("inf"))
    valid = torch.zeros(1, size, size, dtype=torch.bool)
    return values, depth, valid


def _put(scene: tuple[torch.Tensor, ...], row: int, col: int, d: float, colour: float, pin: bool) -> None:
    values, depth, valid = scene
    values[0, row, col] = torch.tensor([colour, float(pin)])
    depth[0, row, col], valid[0, row, col] = d, True


def _occlude(scene: tuple[torch.Tensor, ...], margin: float = MARGIN):
    values, depth, valid = scene
    pinned = (values[..., 1] > 0.5) & valid
    return occlude_by_footprints(values, depth, valid, pinned, torch.tensor([FX]), VOXEL, margin)


def test_the_footprint_is_rounded_up_so_a_surface_has_no_gaps() -> None:
    depth = torch.tensor([[[5.0, 1.5, 0.5, 0.4, 0.01]]])
    radius = footprint_radius(depth, torch.tensor([FX]), VOXEL, max_radius=8)
    # 0.46, 1.5, 4.6, 5.75 and 230 pixels wide
    assert radius.tolist() == [[[0, 1, 3, 3, 8]]]


def test_a_near_generated_surface_hides_the_reference_in_its_gaps() -> None:
    scene = _scene()
    for row in range(16):
        for col in range(16):
            _put(scene, row, col, 6.0, 50.0, pin=True)  # the reference's far wall
    for row in range(0, 16, 5):
        for col in range(0, 16, 5):
            _put(scene, row, col, 0.4, 200.0, pin=False)  # a generated wall 15 times nearer
    values, depth, hidden = _occlude(scene)
    assert bool((values[..., 0] == 200.0).all()) and bool((values[..., 1] == 0.0).all())
    assert bool((depth == 0.4).all())
    assert int(hidden.sum()) == 16 * 16 - 16


def test_the_pinned_margin_decides_as_in_the_render() -> None:
    scene = _scene()
    for row in range(16):
        for col in range(16):
            _put(scene, row, col, 2.0, 50.0, pin=True)  # the reference's wall
    for row in range(0, 16, 4):
        for col in range(0, 16, 4):
            _put(scene, row, col, 0.45, 200.0, pin=False)  # a generated wall 4.4 times nearer
    values, _, hidden = _occlude(scene)  # within the margin of 4: the reference stays
    assert not bool(hidden.any()) and float(values[0, 6, 6, 0]) == 50.0
    values, _, hidden = _occlude(scene, margin=1.0)  # with a margin of 1 it is clearly in front
    assert bool(hidden[0, 6, 6]) and float(values[0, 6, 6, 0]) == 200.0


def test_a_near_object_does_not_fatten_over_its_background_nor_a_lone_voxel_blot_it_out() -> None:
    scene = _scene(32)
    for row in range(32):
        for col in range(32):
            _put(scene, row, col, 6.0, 50.0, pin=False)  # a far generated wall
    for row in range(32):
        for col in range(8):
            _put(scene, row, col, 0.4, 200.0, pin=False)  # a near box's face, every pixel
    _put(scene, 16, 22, 0.3, 90.0, pin=False)  # a speck of generated noise near the camera
    values, _, hidden = _occlude(scene)
    assert not bool(hidden.any())
    assert bool((values[0, :, 8:, 0] != 200.0).all())  # the wall beside the box stays the wall
    assert float(values[0, 16, 23, 0]) == 50.0 and float(values[0, 16, 22, 0]) == 90.0
    # Two near layers (both with footprints): a box at 2.4 m above a floor at 1.5 m.
    scene = _scene()
    for row in range(16):
        for col in range(16):
            _put(scene, row, col, 2.4 if row < 8 else 1.5, 50.0 if row < 8 else 200.0, pin=True)
    _, _, hidden = _occlude(scene)
    assert not bool(hidden.any())


def test_one_surface_keeps_its_own_pixels_and_empty_pixels_stay_empty() -> None:
    scene = _scene()
    for col in range(16):  # a wall 0.5 m to the left, seen at a grazing angle: 0.73 to 1.40 m
        _put(scene, 8, col, 0.5 * FX / (31.5 - col), float(col), pin=False)
    values, depth, hidden = _occlude(scene)
    assert not bool(hidden.any())
    assert torch.equal(values, scene[0]) and torch.equal(depth, scene[1])


def test_through_the_memory_a_near_wall_hides_the_room_the_reference_saw() -> None:
    """The demo's failure: a wall walked up to, with the start's far room pinned behind it."""
    size = 32
    K = torch.tensor([[[FX / 2, 0.0, 15.5], [0.0, FX / 2, 15.5], [0.0, 0.0, 1.0]]])
    pose = torch.eye(4)[None]
    memory = PointCloudMemory(1, 8192, voxel_size=VOXEL)
    far = torch.full((1, size, size), 6.0)
    memory.insert(
        torch.full((1, size, size, 3), 50.0),
        far,
        K,
        pose,
        pin_mask=torch.ones(1, size, size, dtype=torch.bool),
    )
    near = torch.full((1, size, size), 0.3)
    memory.insert(torch.full((1, size, size, 3), 200.0), near, K, pose)

    def rendered(memory: PointCloudMemory, footprints: bool) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, depth, mask = memory.render(K, pose, size, size, with_pins=True, pinned_margin=MARGIN)
        if footprints:
            pinned = (rgb[..., 3] > 0.5) & mask
            rgb, depth, _ = occlude_by_footprints(rgb, depth, mask, pinned, K[:, 0, 0], VOXEL, MARGIN)
        assert float(mask.float().mean()) > 0.9  # a real test: most pixels are drawn
        return rgb, depth

    assert float(rendered(memory, False)[0][..., 3].mean()) > 0.5  # most pixels: between the voxels
    assert float(rendered(memory, footprints=True)[0][..., 3].mean()) == 0.0
    # The reference seen from its own pose, alone in the memory, is unchanged by footprints.
    alone = PointCloudMemory(1, 8192, voxel_size=VOXEL)
    slope = torch.linspace(1.0, 4.0, size)[None, :, None].expand(1, size, size).contiguous()
    alone.insert(
        torch.rand(1, size, size, 3) * 255,
        slope,
        K,
        pose,
        pin_mask=torch.ones(1, size, size, dtype=torch.bool),
    )
    plain, drawn = rendered(alone, False), rendered(alone, footprints=True)
    assert all(torch.equal(a, b) for a, b in zip(plain, drawn, strict=True))


def test_a_single_pixel_gap_in_a_far_surface_is_hidden_but_a_slit_is_not() -> None:
    """Voxels under a pixel wide have no footprint, but a one-pixel gap between them still closes."""
    scene = _scene()
    for row in range(16):
        for col in range(16):
            _put(scene, row, col, 3.0, 1.0, True)  # a wall 3 m away: 0.77 px voxels, no footprint
    _put(scene, 5, 7, 6.0, 9.0, True)  # a surface from elsewhere in a one-pixel gap
    for row in range(16):  # a slit two pixels wide, seeing a far room
        _put(scene, row, 11, 8.0, 5.0, True)
        _put(scene, row, 12, 8.0, 5.0, True)
    values, depth, hidden = _occlude(scene)
    assert bool(hidden[0, 5, 7]) and float(depth[0, 5, 7]) == 3.0 and float(values[0, 5, 7, 0]) == 1.0
    assert not hidden[0, :, 11:13].any()  # the slit stays open
    assert int(hidden.sum()) == 1


def test_a_wall_sampled_sparsely_hides_the_room_behind_it_between_its_samples() -> None:
    """A wall the reference saw from afar, walked up to: its voxels land 8 pixels apart."""
    scene = _scene(32)
    for row in range(32):
        for col in range(32):
            _put(scene, row, col, 6.0, 50.0, pin=True)  # the room behind, pinned from another spot
    for row in range(0, 32, 8):
        for col in range(0, 17, 8):
            _put(scene, row, col, 0.4, 200.0, pin=True)  # the wall's samples, columns 0 to 16
    values, depth, valid = scene
    pinned = (values[..., 1] > 0.5) & valid
    fx = torch.tensor([FX])
    plain, _, _ = occlude_by_footprints(values, depth, valid, pinned, fx, VOXEL, MARGIN)
    assert bool((plain[0, :, :17, 0] == 50.0).any())  # its 5 cm voxels leave the room showing
    between = torch.where(depth == 0.4, 8.0, 1.0)  # what projected_spacing gives them
    spaced, spaced_depth, _ = occlude_by_footprints(
        values, depth, valid, pinned, fx, VOXEL, MARGIN, sample_pixels=between
    )
    assert bool((spaced[0, :25, :17, 0] == 200.0).all()) and bool((spaced_depth[0, :25, :17] == 0.4).all())
    assert bool((spaced[0, :, 21:, 0] == 50.0).all())  # past the wall's edge the room stays
    # Samples a pixel or two apart change nothing: the cube's footprint is larger.
    small = torch.full_like(depth, 2.0)
    same, _, _ = occlude_by_footprints(values, depth, valid, pinned, fx, VOXEL, MARGIN, sample_pixels=small)
    assert torch.equal(same, plain)


def test_with_sample_offsets_the_reference_seen_from_its_own_pose_is_unchanged() -> None:
    """Its samples land one pixel apart, face-on or at a slant: the offsets hide nothing more."""
    size = 32
    K = torch.tensor([[[FX / 2, 0.0, 15.5], [0.0, FX / 2, 15.5], [0.0, 0.0, 1.0]]])
    pose = torch.eye(4)[None]
    cols = torch.arange(size, dtype=torch.float32)
    receding = (1.0 / (1.0 - 2.0 * (cols - 15.5) / (FX / 2)).clamp_min(0.2))[None, None, :]
    for depth in (torch.full((1, size, size), 3.0), receding.expand(1, size, size)):
        depth = depth.contiguous().clone()
        depth[:, :, 10:12] = 9.0  # a slit two pixels wide onto a far room
        memory = PointCloudMemory(1, 8192, voxel_size=VOXEL, keep_offsets=True)
        pin = torch.ones(1, size, size, dtype=torch.bool)
        memory.insert(
            torch.rand(1, size, size, 3) * 255,
            depth,
            K,
            pose,
            pin_mask=pin,
            offsets=sample_offsets(depth, K, pose),
        )
        rgb, r_depth, mask = memory.render(
            K, pose, size, size, with_pins=True, pinned_margin=MARGIN, with_offsets=True
        )
        between = projected_spacing(rgb[..., OFFSET_CHANNELS], r_depth, K, pose)
        rgb = rgb[..., : OFFSET_CHANNELS.start]
        pinned = (rgb[..., 3] > 0.5) & mask
        plain = occlude_by_footprints(rgb, r_depth, mask, pinned, K[:, 0, 0], VOXEL, MARGIN)
        drawn = occlude_by_footprints(
            rgb, r_depth, mask, pinned, K[:, 0, 0], VOXEL, MARGIN, sample_pixels=between
        )
        assert float(between.max()) > 1.0  # a real test: the offsets reach the render
        assert all(torch.equal(a, b) for a, b in zip(plain, drawn, strict=True))
