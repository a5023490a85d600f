"""How much surface a reference pixel's sample stands for (`sim_env.memory.sample_spacing`)."""

from __future__ import annotations

import pytest
import torch

from sim_env.memory.sample_spacing import sample_spacing

FX = 46.0  # a 64-pixel, 70° view
SIZE = 16
K = torch.tensor([[[FX, 0.0, 7.5], [0.0, FX, 7.5], [0.0, 0.0, 1.0]]])


def _lift(depth: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) camera-frame points of a (H, W) planar depth map under ``K``."""
    rows, cols = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32), indexing="ij"
    )
    return torch.stack([(cols - 7.5) / FX * depth, (rows - 7.5) / FX * depth, depth], dim=-1)


def test_a_wall_facing_the_camera_is_sampled_once_per_pixel_footprint() -> None:
    depth = torch.full((1, SIZE, SIZE), 3.0)
    assert torch.allclose(sample_spacing(depth, K), torch.full_like(depth, 3.0 / FX))


def test_a_wall_seen_at_a_slant_is_sampled_as_sparsely_as_its_neighbours_lie_apart() -> None:
    """A wall receding to the right: its samples lie 1.5 to 3 pixel footprints apart."""
    slope = 1.5  # z = z0 + slope · x in the camera frame
    cols = torch.arange(SIZE, dtype=torch.float32)
    row = 2.0 / (1.0 - slope * (cols - 7.5) / FX)  # planar depth along one row of that wall
    depth = row[None, None, :].expand(1, SIZE, SIZE).contiguous()
    spacing = sample_spacing(depth, K)[0]
    points = _lift(depth[0])
    apart = torch.linalg.vector_norm(points[:, 1:] - points[:, :-1], dim=-1)  # (H, W - 1)
    expected = torch.maximum(torch.nn.functional.pad(apart, (1, 0)), torch.nn.functional.pad(apart, (0, 1)))
    assert torch.allclose(spacing, expected, rtol=1e-5)
    assert bool((spacing > 1.4 * depth[0] / FX).all())  # much sparser than a facing wall


def test_a_depth_edge_is_not_spanned_and_missing_depth_stands_for_nothing() -> None:
    depth = torch.full((1, SIZE, SIZE), 3.0)
    depth[:, :, :8] = 1.0  # a box 2 m in front of the wall
    depth[0, 0, 0], depth[0, 0, 1] = float("inf"), float("nan")
    depth[0, 1, 0] = 0.0
    spacing = sample_spacing(depth, K)[0]
    assert torch.allclose(spacing[2:, :8], torch.full((SIZE - 2, 8), 1.0 / FX))  # the box's edge too
    assert torch.allclose(spacing[:, 8:], torch.full((SIZE, 8), 3.0 / FX))
    assert spacing[0, 0] == 0.0 and spacing[0, 1] == 0.0 and spacing[1, 0] == 0.0
    assert torch.allclose(spacing[0, 2], torch.tensor(1.0 / FX))


def test_the_stretch_limit_decides_what_counts_as_one_surface() -> None:
    cols = torch.arange(SIZE, dtype=torch.float32)
    depth = (2.0 + 0.1 * cols)[None, None, :].expand(1, SIZE, SIZE).contiguous()  # 10 cm per column
    joined = sample_spacing(depth, K, max_stretch=4.0)  # about 2.3 footprints apart: one surface
    split = sample_spacing(depth, K, max_stretch=1.5)  # taken as a depth edge at every column
    assert bool((joined > 0.1).all())
    assert torch.allclose(split, torch.sqrt(depth**2 / FX**2 * 1.0))  # only rows join: z / fx apart
    with pytest.raises(ValueError, match="max_stretch"):
        sample_spacing(depth, K, max_stretch=0.5)
