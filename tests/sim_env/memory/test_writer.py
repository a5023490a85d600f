"""`MemoryWriter`: how references, their sweep and generated frames enter the memory."""

from __future__ import annotations

import torch

from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.memory.writer import MemoryWriter, same_spot_ends
from sim_env.reference_sweep import ReferenceViews

H = W = 32
K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0))[None]
POSE = torch.as_tensor(look_at([0.0, 0.0, 1.0], [4.0, 0.0, 1.0]))[None]
STREAMS = torch.ones(1, dtype=torch.bool)


def _writer(views: int = 2, carve: bool = True, window: bool = False) -> MemoryWriter:
    return MemoryWriter(1, 1, H, W, 0.05, views, 16384, window, pin_references=True, carve_free_space=carve)


def _sweep(rgb: torch.Tensor, depth: torch.Tensor, pose: torch.Tensor = POSE) -> ReferenceViews:
    return ReferenceViews(rgb[:, None], depth[:, None], K[:, None], pose[:, None])


def test_a_sweep_view_of_surface_already_held_adds_nothing() -> None:
    """The same wall seen again, 5 cm off in other voxels and colours: the reference's stay alone."""
    writer = _writer()
    wall = torch.full((1, H, W), 2.98)
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    writer.write_references(grey, wall, K, POSE, None, STREAMS)
    alone = writer.memory.rgb.clone(), writer.memory.valid.clone()
    writer.write_references(grey, wall, K, POSE, None, STREAMS, _sweep(grey * 2, wall + 0.05))
    assert torch.equal(writer.memory.valid, alone[1]) and torch.equal(writer.memory.rgb, alone[0])


def test_a_sweep_point_in_the_references_empty_space_stays_out() -> None:
    """Where the reference saw a wall at 4 m, a view claiming a surface at 2 m there is not written."""
    writer = _writer()
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    writer.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS)
    count = int(writer.memory.valid.sum())
    near = torch.full((1, H, W), 2.0)
    writer.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS, _sweep(grey, near))
    assert int(writer.memory.valid.sum()) == count
    # With no reference seeing that space the same view is written.
    behind = torch.as_tensor(look_at([0.0, 0.0, 1.0], [-4.0, 0.0, 1.0]))[None]
    writer.write_references(
        grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS, _sweep(grey, near, behind)
    )
    assert int(writer.memory.valid.sum()) > count


def test_generated_frames_are_carved_and_window_mode_forgets() -> None:
    writer = _writer(views=1)
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    writer.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS)
    count = int(writer.memory.valid.sum())
    no_hands = torch.full((1, 2, 21, 3), float("nan")), torch.zeros(1, dtype=torch.bool)
    keep = writer.write_generated(grey, torch.full((1, H, W), 1.0), K, POSE, None, *no_hands)
    assert keep is not None and not keep.any() and int(writer.memory.valid.sum()) == count
    window = _writer(views=1, carve=False, window=True)
    window.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS)
    window.write_generated(grey, torch.full((1, H, W), 1.0), K, POSE, None, *no_hands)
    assert int(window.memory.pinned.sum()) == 0  # the reference is forgotten


def test_a_view_from_elsewhere_adds_only_what_earlier_views_did_not_see() -> None:
    """A second camera half a metre from a wall the reference saw 4 m away: its samples stay out.

    Nearer, it samples the wall more densely than the reference did; those voxels fall between the
    reference's, which the held test's surfels do not cover, and would z-fight with them at the
    reference's pose. What the reference could not see (the wall beyond its view) goes in.
    """
    writer = _writer()
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    wall_at = 4.0  # the plane x = 4, seen from x = 0 (planar depth 4 everywhere)
    writer.write_references(grey, torch.full((1, H, W), wall_at), K, POSE, None, STREAMS)
    alone = writer.memory.rgb.clone(), writer.memory.valid.clone()
    nearer = torch.as_tensor(look_at([3.5, 0.0, 1.0], [4.0, 0.0, 1.0]))[None]
    writer.write_references(
        grey,
        torch.full((1, H, W), wall_at),
        K,
        POSE,
        None,
        STREAMS,
        _sweep(grey * 2, torch.full((1, H, W), 0.5), nearer),
    )
    assert torch.equal(writer.memory.valid, alone[1]) and torch.equal(writer.memory.rgb, alone[0])
    # Turned 60° away, the same camera sees the wall where the reference's view did not reach.
    aside = torch.as_tensor(look_at([1.0, 0.0, 1.0], [4.0, 3.0 * 3**0.5, 1.0]))[None]
    u = torch.arange(W, dtype=torch.float64)
    ray = torch.stack([(u - K[0, 0, 2]) / K[0, 0, 0], torch.zeros(W), torch.ones(W)], dim=-1)
    along_x = (ray @ aside[0, :3, :3].T)[:, 0]  # world x per metre of planar depth
    slant = (3.0 / along_x).float().expand(1, H, W).contiguous()
    writer.write_references(
        grey, torch.full((1, H, W), wall_at), K, POSE, None, STREAMS, _sweep(grey * 2, slant, aside)
    )
    assert int(writer.memory.valid.sum()) > int(alone[1].sum())


def test_views_from_one_spot_are_grouped_for_the_free_space_test() -> None:
    """A scan lists each spot's sweep in turn; where the reset streams disagree the earlier end holds."""
    poses = torch.eye(4).repeat(2, 7, 1, 1)
    poses[:, 3:6, 0, 3], poses[:, 6, 0, 3] = 1.0, 2.0  # spots: views 0-2, 3-5, 6
    both = torch.ones(2, dtype=torch.bool)
    assert same_spot_ends(poses, both) == [3, 3, 3, 6, 6, 6, 7]
    poses[1, 2, 0, 3] = 0.5  # stream 1 took view 2 elsewhere
    assert same_spot_ends(poses, both) == [2, 2, 3, 6, 6, 6, 7]
    assert same_spot_ends(poses, torch.tensor([True, False])) == [3, 3, 3, 6, 6, 6, 7]  # not reset: ignored


def test_a_later_spots_free_space_does_not_cut_what_the_start_saw() -> None:
    """The start's sweep sees a wall 2 m behind it; a view from another spot claims open space there.

    Rounding at silhouettes makes such claims near edges; a later spot's view does not judge the
    views of earlier spots, so the wall the start saw stays.
    """
    writer = _writer(views=3)
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    behind = torch.as_tensor(look_at([0.0, 0.0, 1.0], [-4.0, 0.0, 1.0]))[None]
    elsewhere = torch.as_tensor(look_at([-3.0, 0.0, 1.0], [4.0, 0.0, 1.0]))[None]
    sweep = ReferenceViews(
        torch.stack([grey, grey], dim=1),
        torch.stack([torch.full((1, H, W), 2.0), torch.full((1, H, W), 5.0)], dim=1),
        torch.stack([K, K], dim=1),
        torch.stack([behind, elsewhere], dim=1),
    )
    writer.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS, sweep)
    xyz = writer.memory.xyz[0][writer.memory.valid[0]]
    # All of the wall at x = −2 the start's sweep saw; the later view's frustum covers a quarter of it.
    assert int((xyz[:, 0] < -1.9).sum()) == H * W


def test_with_views_from_other_spots_the_starts_own_are_the_primary_reference() -> None:
    """The start's views pin primary voxels, another spot's plain pins; one spot marks none."""
    grey = torch.full((1, H, W, 3), 100, dtype=torch.uint8)
    behind = torch.as_tensor(look_at([0.0, 0.0, 1.0], [-4.0, 0.0, 1.0]))[None]
    beyond = torch.as_tensor(look_at([-3.0, 0.0, 1.0], [-8.0, 0.0, 1.0]))[None]  # past the start's wall
    for spots in (1, 2):
        poses = [behind, beyond][:spots]
        sweep = ReferenceViews(
            torch.stack([grey] * spots, dim=1),
            torch.stack([torch.full((1, H, W), 2.0), torch.full((1, H, W), 1.0)][:spots], dim=1),
            torch.stack([K] * spots, dim=1),
            torch.stack(poses, dim=1),
        )
        writer = _writer(views=1 + spots)
        writer.write_references(grey, torch.full((1, H, W), 4.0), K, POSE, None, STREAMS, sweep)
        memory = writer.memory
        xyz, primary = memory.xyz[0][memory.valid[0]], memory.primary[0][memory.valid[0]]
        assert memory.pinned[0][memory.valid[0]].all()
        start = xyz[:, 0] > -2.1  # the walls at x = 4 and x = −2 the start's sweep saw
        if spots == 1:
            assert not primary.any()
        else:
            assert primary[start].all() and not primary[~start].any()
            assert int((~start).sum()) > 0  # the other spot added the wall beyond
