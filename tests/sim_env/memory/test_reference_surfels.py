"""The pinned reference drawn as surfels (`sim_env.memory.reference_surfels`)."""

from __future__ import annotations

import torch

from sim_env.memory.reference_surfels import closing, reference_surfels, surfel_radius

FX = 46.0  # a 64-pixel, 70° view
VOXEL = 0.05  # at 0.23 m a voxel spans 10 pixels: radius 5


def _scene(size: int = 16) -> tuple[torch.Tensor, ...]:
    """An empty (1, size, size) splat: colour, depth (+inf), validity, pinned flags."""
    colour = torch.zeros(1, size, size, 3)
    depth = torch.full((1, size, size), float("inf"))
    valid = torch.zeros(1, size, size, dtype=torch.bool)
    pinned = torch.zeros_like(valid)
    return colour, depth, valid, pinned


def _put(scene: tuple[torch.Tensor, ...], row: int, col: int, d: float, rgb: float, pin: bool) -> None:
    colour, depth, valid, pinned = scene
    colour[0, row, col], depth[0, row, col], valid[0, row, col], pinned[0, row, col] = rgb, d, True, pin


def _surfels(scene: tuple[torch.Tensor, ...], margin: float = 4.0, gap: int = 0):
    return reference_surfels(*scene, torch.tensor([FX]), VOXEL, margin, gap_radius=gap)


def test_the_footprint_grows_as_the_surface_comes_nearer() -> None:
    depth = torch.tensor([[[3.0, 1.0, 0.5, 0.23, 0.01]]])
    radius = surfel_radius(depth, torch.tensor([FX]), VOXEL, max_radius=8)
    assert radius.tolist() == [[[0, 1, 2, 5, 8]]]  # a voxel at the reference's scale: its pixel only


def test_a_near_surface_splatted_sparsely_is_drawn_without_gaps() -> None:
    scene = _scene()
    for row in range(0, 16, 5):
        for col in range(0, 16, 5):
            _put(scene, row, col, 0.23, 100.0 + row * 16 + col, pin=True)
    shown, colour = _surfels(scene)
    assert bool(shown.all())
    assert float(colour[0, 6, 7, 0]) == 100.0 + 5 * 16 + 5  # the nearest reference pixel's colour
    assert float(colour[0, 0, 0, 0]) == 100.0  # a reference pixel keeps its own colour


def test_a_far_surface_reaches_only_its_own_pixels() -> None:
    scene = _scene()
    _put(scene, 8, 8, 3.0, 50.0, pin=True)
    shown, _ = _surfels(scene)
    assert shown.sum() == 1 and bool(shown[0, 8, 8])


def test_a_generated_surface_clearly_in_front_hides_the_reference() -> None:
    scene = _scene()
    _put(scene, 8, 8, 0.23, 50.0, pin=True)
    _put(scene, 8, 9, 0.04, 200.0, pin=False)  # more than five times nearer: something in front
    _put(scene, 9, 8, 0.22, 200.0, pin=False)  # the reference's surface, drawn by the model
    _put(scene, 7, 8, 0.9, 200.0, pin=False)  # behind the reference's surface
    shown, colour = _surfels(scene)
    assert not bool(shown[0, 8, 9])
    assert bool(shown[0, 9, 8]) and bool(shown[0, 7, 8])
    assert float(colour[0, 9, 8, 0]) == float(colour[0, 7, 8, 0]) == 50.0


def test_a_near_object_does_not_fatten_over_the_reference_behind_it() -> None:
    scene = _scene()
    _put(scene, 8, 8, 0.5, 50.0, pin=True)  # radius 2
    _put(scene, 8, 9, 1.5, 80.0, pin=True)  # three times farther: within the margin
    _put(scene, 8, 10, 3.0, 90.0, pin=True)  # six times farther: clearly behind
    shown, colour = _surfels(scene)
    assert float(colour[0, 8, 9, 0]) == 80.0
    assert float(colour[0, 8, 10, 0]) == 50.0
    assert bool(shown[0, 8, 9]) and bool(shown[0, 8, 10])


def test_the_gap_radius_closes_one_pixel_gaps_but_not_a_wide_hole() -> None:
    scene = _scene()
    for row in range(16):
        for col in range(16):
            inside = 4 <= row < 12 and 4 <= col < 12  # a window without depth
            if not inside and (row + col) % 2 == 0:  # a far wall splatted in a checkerboard
                _put(scene, row, col, 3.0, 70.0, pin=True)
    shown, _ = _surfels(scene, gap=0)
    assert int(shown.sum()) == int(scene[3].sum())  # footprints of far voxels reach no neighbour
    shown, _ = _surfels(scene, gap=2)
    assert bool(shown[0, 0, 1]) and bool(shown[0, 14, 15])  # the wall's gaps
    assert not bool(shown[0, 6:10, 6:10].any())  # the window's middle stays the model's
    assert torch.equal(closing(scene[3], 0), scene[3])
