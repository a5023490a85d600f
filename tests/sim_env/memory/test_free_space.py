"""Space carving against the reference: which generated pixels may enter the memory."""

from __future__ import annotations

import math

import pytest
import torch

from bridge.conventions import intrinsics_from_fov
from sim_env.memory.free_space import ReferenceFreeSpace

H = W = 16
K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0), dtype=torch.float32)


def _yaw(deg: float, x: float = 0.0) -> torch.Tensor:
    """Camera-to-world pose turned ``deg`` about the camera's y axis, centred at (x, 0, 0)."""
    a = math.radians(deg)
    pose = torch.eye(4)
    pose[0, 0], pose[0, 2], pose[2, 0], pose[2, 2] = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    pose[0, 3] = x
    return pose


def _space(reference_depth: torch.Tensor, poses: torch.Tensor, agents: int = 1) -> ReferenceFreeSpace:
    n = reference_depth.shape[0]
    space = ReferenceFreeSpace(n // agents, agents, H, W)
    space.set_references(reference_depth, K.repeat(n, 1, 1), poses)
    return space


def test_points_in_front_of_the_reference_wall_are_carved_and_the_wall_is_kept() -> None:
    space = _space(torch.full((1, H, W), 4.0), torch.eye(4)[None])
    Ks, pose = K[None], torch.eye(4)[None]
    assert not space.keep_mask(torch.full((1, H, W), 2.0), Ks, pose).any()  # drawn 2× too near
    assert space.keep_mask(torch.full((1, H, W), 3.8), Ks, pose).all()  # within the tolerance
    assert space.keep_mask(torch.full((1, H, W), 6.0), Ks, pose).all()  # behind: unknown space
    # Non-finite generated depth is kept for the memory to skip (it never enters anyway).
    assert space.keep_mask(torch.full((1, H, W), math.inf), Ks, pose).all()


def test_points_the_reference_did_not_see_are_kept() -> None:
    depth = torch.full((1, H, W), 4.0)
    depth[:, :, : W // 2] = math.inf  # no hit on the left half: nothing known there
    space = _space(depth, torch.eye(4)[None])
    keep = space.keep_mask(torch.full((1, H, W), 1.0), K[None], torch.eye(4)[None])
    assert keep[0, :, : W // 2].all() and not keep[0, :, W // 2 :].any()
    # Looking the other way, everything lies behind the reference camera: kept.
    behind = space.keep_mask(torch.full((1, H, W), 1.0), K[None], _yaw(180.0)[None])
    assert behind.all()


def test_the_edge_of_a_thin_foreground_object_is_not_carved() -> None:
    depth = torch.full((1, H, W), 5.0)
    depth[:, :, 7] = 1.0  # a pole one pixel wide at 1 m
    space = _space(depth, torch.eye(4)[None])
    drawn = torch.full((1, H, W), 5.0)
    drawn[:, :, 7:9] = 1.0  # the world drew it one pixel too wide
    keep = space.keep_mask(drawn, K[None], torch.eye(4)[None])
    assert keep.all()  # the min-pooled reference depth keeps the neighbour of the pole


def test_a_moved_camera_is_tested_in_the_reference_camera() -> None:
    space = _space(torch.full((1, H, W), 4.0), torch.eye(4)[None])
    # 1 m to the side, the centre pixel at 2 m is still in front of the reference's wall.
    keep = space.keep_mask(torch.full((1, H, W), 2.0), K[None], _yaw(0.0, x=1.0)[None])
    assert not keep[0, H // 2, W // 2]
    assert keep[0, H // 2, -1]  # the right edge's point lies outside the reference's view


def test_hands_are_never_carved() -> None:
    space = _space(torch.full((1, H, W), 4.0), torch.eye(4)[None])
    hand = torch.full((1, 2, 21, 3), math.nan)
    hand[0, 0, :, :] = torch.tensor([0.0, 0.0, 0.5])  # one hand at the centre, 0.5 m,
    hand[0, 0, :, 0] = torch.linspace(-0.05, 0.05, 21)  # 10 cm wide
    keep = space.keep_mask(torch.full((1, H, W), 0.5), K[None], torch.eye(4)[None], hand)
    assert keep[0, 7, 6:10].all()  # its box (the centre row, principal point 7.5)
    assert keep.sum() == keep[0, 7].sum()  # and nothing else
    absent = space.keep_mask(
        torch.full((1, H, W), 0.5), K[None], torch.eye(4)[None], hand, torch.tensor([False])
    )
    assert not absent.any()  # a stream without hands gets no exemption


def test_a_worlds_agents_share_their_references() -> None:
    depth = torch.full((2, H, W), 4.0)
    poses = torch.stack([torch.eye(4), _yaw(180.0)])  # agent 1 looks the other way
    space = _space(depth, poses, agents=2)
    # Agent 0 draws a near surface where only agent 1's reference saw empty space.
    frames = torch.full((2, H, W), 6.0)
    frames[0] = 2.0
    keep = space.keep_mask(frames, K.repeat(2, 1, 1), torch.stack([_yaw(180.0), _yaw(180.0)]))
    assert not keep[0].any() and keep[1].all()


def test_set_references_only_touches_the_streams_asked() -> None:
    space = _space(torch.full((2, H, W), 4.0), torch.eye(4).repeat(2, 1, 1))
    before = space.limit.clone()
    space.set_references(
        torch.full((2, H, W), 8.0),
        K.repeat(2, 1, 1),
        torch.eye(4).repeat(2, 1, 1),
        torch.tensor([False, True]),
    )
    assert torch.equal(space.limit[0], before[0]) and space.limit[1].min() > before[1].max()


def test_tolerance_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        ReferenceFreeSpace(1, 1, H, W, tolerance=1.0)


def test_every_reference_view_of_a_sweep_carves() -> None:
    space = ReferenceFreeSpace(1, 1, H, W, views=2)
    depths = torch.full((1, 2, H, W), 4.0)
    space.set_references(depths, K.repeat(1, 2, 1, 1), torch.stack([torch.eye(4), _yaw(180.0)])[None])
    near = torch.full((1, H, W), 2.0)
    assert not space.keep_mask(near, K[None], torch.eye(4)[None]).any()  # the first view's space
    assert not space.keep_mask(near, K[None], _yaw(180.0)[None]).any()  # the second view's
    assert space.keep_mask(near, K[None], _yaw(90.0)[None]).all()  # between them: unknown
    # A reset with fewer views forgets the rest.
    space.set_references(depths[:, 0], K[None], torch.eye(4)[None])
    assert space.keep_mask(near, K[None], _yaw(180.0)[None]).all()


def test_more_views_than_room_is_an_error() -> None:
    space = ReferenceFreeSpace(1, 1, H, W, views=1)
    with pytest.raises(ValueError, match="views"):
        space.set_references(
            torch.full((1, 2, H, W), 4.0), K.repeat(1, 2, 1, 1), torch.eye(4).repeat(1, 2, 1, 1)
        )


def test_a_negative_tolerance_takes_in_what_the_reference_saw() -> None:
    """ "Seen": the free space and the surface itself, to the tolerance behind it, but not beyond."""
    space = ReferenceFreeSpace(1, 1, H, W, tolerance=-0.05, edge_guard=False)
    space.set_references(torch.full((1, H, W), 4.0), K[None], torch.eye(4)[None])
    Ks, pose = K[None], torch.eye(4)[None]
    assert not space.keep_mask(torch.full((1, H, W), 2.0), Ks, pose).any()  # free space
    assert not space.keep_mask(torch.full((1, H, W), 4.1), Ks, pose).any()  # on the surface
    assert space.keep_mask(torch.full((1, H, W), 4.4), Ks, pose).all()  # hidden behind it
    with pytest.raises(ValueError, match="tolerance"):
        ReferenceFreeSpace(1, 1, H, W, tolerance=-1.0)


def test_edge_reach_counts_the_far_side_of_a_silhouette() -> None:
    depth = torch.full((1, H, W), 5.0)
    depth[:, :, 7] = 1.0  # a pole one pixel wide at 1 m
    background = torch.full((1, H, W), 5.0)
    Ks, pose = K[None], torch.eye(4)[None]
    for reach in (False, True):
        space = ReferenceFreeSpace(1, 1, H, W, tolerance=-0.05, edge_guard=False, edge_reach=reach)
        space.set_references(depth, K[None], torch.eye(4)[None])
        keep = space.keep_mask(background, Ks, pose)
        # Behind the pole the background is hidden, unless the pole's neighbours count.
        assert bool(keep[0, :, 7].all()) == (not reach)
        assert not keep[0, :, 6].any() and not keep[0, :, 8].any()
    with pytest.raises(ValueError, match="edge_guard and edge_reach"):
        ReferenceFreeSpace(1, 1, H, W, edge_reach=True)


def test_keep_mask_can_test_only_the_first_views() -> None:
    space = ReferenceFreeSpace(1, 1, H, W, views=2)
    depths = torch.full((1, 2, H, W), 4.0)
    space.set_references(depths, K.repeat(1, 2, 1, 1), torch.stack([torch.eye(4), _yaw(180.0)])[None])
    near = torch.full((1, H, W), 2.0)
    assert not space.keep_mask(near, K[None], _yaw(180.0)[None]).any()
    assert space.keep_mask(near, K[None], _yaw(180.0)[None], views=1).all()  # the second view untested


@pytest.mark.parametrize("background_free", [False, True])
def test_a_reference_ray_that_saw_the_background_is_free_to_infinity_only_when_asked(background_free) -> None:
    """+inf depth is the background seen through an opening; NaN and 0 stay unknown either way."""
    depth = torch.full((1, H, W), 4.0)
    depth[0, :, : W // 2] = math.inf  # the left half looks out of the scene
    depth[0, :2, W // 2 :] = math.nan
    depth[0, 2:4, W // 2 :] = 0.0
    space = ReferenceFreeSpace(1, 1, H, W, background_free=background_free)
    space.set_references(depth, K[None], torch.eye(4)[None])
    far = torch.full((1, H, W), 50.0)  # a generated surface 50 m out
    keep = space.keep_mask(far, K[None], torch.eye(4)[None])
    inner = keep[0, :, : W // 2 - 1]  # the background's interior (its edge pools with the wall)
    assert bool((~inner).all()) == background_free and bool(inner.all()) != background_free
    assert keep[0, :4, W // 2 + 1 :].all()  # unknown rays carve nothing
    assert keep[0, 4:, W // 2 + 1 :].all()  # behind the wall: unknown
