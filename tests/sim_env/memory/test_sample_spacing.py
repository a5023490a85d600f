"""How far apart a reference's samples land in another view (`sim_env.memory.sample_spacing`)."""

from __future__ import annotations

import math

import pytest
import torch

from sim_env.memory.sample_spacing import projected_spacing, sample_offsets

FX = 46.0  # a 64-pixel, 70° view
SIZE = 16
K = torch.tensor([[[FX, 0.0, 7.5], [0.0, FX, 7.5], [0.0, 0.0, 1.0]]])
IDENTITY = torch.eye(4)[None]


def _receding_wall(z0: float = 2.0, slope: float = 1.5) -> torch.Tensor:
    """(1, SIZE, SIZE) planar depth of a wall z = z0 + slope · x, receding to the right."""
    cols = torch.arange(SIZE, dtype=torch.float32)
    row = z0 / (1.0 - slope * (cols - 7.5) / FX)
    return row[None, None, :].expand(1, SIZE, SIZE).contiguous()


def _yaw(degrees: float, centre: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """(1, 4, 4) camera-to-world pose turned about the camera's y axis."""
    a = math.radians(degrees)
    pose = torch.eye(4)
    pose[0, 0], pose[0, 2], pose[2, 0], pose[2, 2] = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    pose[:3, 3] = torch.tensor(centre)
    return pose[None]


def test_offsets_point_to_the_next_sample_along_rows_and_columns_in_the_world_frame() -> None:
    depth = _receding_wall()
    pose = _yaw(30.0, (1.0, 0.0, -2.0))
    offsets = sample_offsets(depth, K, pose)
    assert offsets.shape == (1, SIZE, SIZE, 6)
    rows, cols = torch.meshgrid(torch.arange(SIZE.__float__()), torch.arange(SIZE.__float__()), indexing="ij")
    z = depth[0]
    camera = torch.stack([(cols - 7.5) / FX * z, (rows - 7.5) / FX * z, z], dim=-1)
    world = camera @ pose[0, :3, :3].T
    along_row = world[:, 1:] - world[:, :-1]  # the next column's sample
    torch.testing.assert_close(offsets[0, :, :-1, :3], along_row, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        offsets[0, :, -1, :3], along_row[:, -1], rtol=1e-4, atol=1e-5
    )  # from the previous
    along_column = world[1:] - world[:-1]
    torch.testing.assert_close(offsets[0, :-1, :, 3:], along_column, rtol=1e-4, atol=1e-5)


def test_from_where_the_reference_stood_its_samples_land_one_pixel_apart_whatever_the_slant() -> None:
    for depth in (torch.full((1, SIZE, SIZE), 3.0), _receding_wall()):
        offsets = sample_offsets(depth, K, IDENTITY)
        pixels = projected_spacing(offsets, depth, K, IDENTITY)
        torch.testing.assert_close(pixels, torch.ones_like(pixels), rtol=0.05, atol=0.0)


def test_walked_up_to_or_seen_face_on_the_samples_land_further_apart() -> None:
    far = torch.full((1, SIZE, SIZE), 4.0)
    offsets = sample_offsets(far, K, IDENTITY)
    near = torch.full((1, SIZE, SIZE), 0.4)  # ten times nearer, same direction
    torch.testing.assert_close(
        projected_spacing(offsets, near, K, IDENTITY), torch.full_like(near, 10.0), rtol=0.02, atol=0.0
    )
    # A wall the reference saw at a slant, now faced square on: its samples' full spacing shows.
    wall = _receding_wall()
    offsets = sample_offsets(wall, K, IDENTITY)
    metres = torch.linalg.vector_norm(offsets[..., :3], dim=-1)
    assert bool((metres > 1.4 * wall / FX).all())  # far apart in space, side by side in its image
    facing = _yaw(math.degrees(math.atan2(-1.5, 1.0)))  # the optical axis along the wall's normal
    pixels = projected_spacing(offsets, torch.ones_like(wall), K, facing)
    torch.testing.assert_close(pixels, FX * metres, rtol=0.02, atol=0.0)  # 1 m away, face on


def test_depth_edges_are_not_joined_and_missing_depth_has_no_offsets() -> None:
    depth = torch.full((1, SIZE, SIZE), 3.0)
    depth[:, :, :8] = 1.0  # a box 2 m in front of the wall
    depth[0, 0, 0] = float("inf")
    depth[0, 0, 1] = float("nan")
    depth[0, 1, 0] = 0.0
    offsets = sample_offsets(depth, K, IDENTITY)
    along_row = torch.linalg.vector_norm(offsets[0, ..., :3], dim=-1)
    torch.testing.assert_close(
        along_row[2:, 7], torch.full((SIZE - 2,), 1.0 / FX)
    )  # the box's edge: its own side
    torch.testing.assert_close(along_row[:, 8], torch.full((SIZE,), 3.0 / FX))
    assert not offsets[0, 0, 0].any() and not offsets[0, 0, 1].any() and not offsets[0, 1, 0].any()
    empty = torch.full_like(depth, float("inf"))
    assert not projected_spacing(offsets, empty, K, IDENTITY).any()
    with pytest.raises(ValueError, match="max_stretch"):
        sample_offsets(depth, K, IDENTITY, max_stretch=0.5)
