"""How much surface each pixel of a reference view stands for: its sample spacing in metres.

A reference pixel at planar depth z samples the surface it hits once every z / fx metres when the
surface faces the camera, and 1 / cos θ times as sparsely when the surface is seen at an angle θ
from its normal. The memory keeps one voxel per sample. Walk up to a wall that a reference saw from
far away, or edge-on, and its voxels land many pixels apart, further than the voxel's own 5 cm
square reaches (`sim_env.memory.footprint_occlusion`): whatever the memory holds behind the wall
shows between them. Giving each pinned voxel the spacing of the samples around it lets its
footprint close those gaps.

The spacing of a pixel is the largest 3-D distance to one of its four neighbours on the same
surface, and at least z / fx. A neighbour counts as the same surface when it lies within
``max_stretch`` · z / fx: farther than that, the two pixels straddle a depth edge (or a surface
more oblique than arccos(1 / max_stretch), whose samples the memory cannot join anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# 1 / cos θ of the most oblique surface whose samples are joined: 4 is about 76° from the normal.
DEFAULT_MAX_STRETCH = 4.0


def sample_spacing(
    depth: torch.Tensor, K: torch.Tensor, max_stretch: float = DEFAULT_MAX_STRETCH
) -> torch.Tensor:
    """(N, H, W) metres of surface between each pixel's sample and its neighbours' (0 where no depth).

    Args:
        depth: (N, H, W) planar depth in metres; non-finite or <= 0 is no sample.
        K: (N, 3, 3) intrinsics.
        max_stretch: neighbours farther than this many pixel footprints (z / fx) apart are not
            on the same surface.
    """
    if not max_stretch >= 1.0:
        raise ValueError(f"max_stretch must be >= 1, got {max_stretch}")
    _n, h, w = depth.shape
    z = depth.to(torch.float32)
    K = K.to(z)
    ok = torch.isfinite(z) & (z > 0.0)
    zs = torch.where(ok, z, 0.0)
    rows, cols = torch.meshgrid(
        torch.arange(h, device=z.device, dtype=z.dtype),
        torch.arange(w, device=z.device, dtype=z.dtype),
        indexing="ij",
    )
    x = (cols - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None] * zs
    y = (rows - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None] * zs
    points = torch.stack([x, y, zs], dim=1)  # (N, 3, H, W)
    footprint = zs / K[:, 0, 0, None, None]
    padded = F.pad(points, (1, 1, 1, 1))
    padded_ok = F.pad(ok[:, None].float(), (1, 1, 1, 1))[:, 0] > 0.5
    spacing = footprint
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        neighbour = padded[:, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        neighbour_ok = padded_ok[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        distance = torch.linalg.vector_norm(neighbour - points, dim=1)
        joined = ok & neighbour_ok & (distance <= max_stretch * footprint)
        spacing = torch.where(joined, torch.maximum(spacing, distance), spacing)
    return torch.where(ok, spacing, 0.0)


__all__ = ["DEFAULT_MAX_STRETCH", "sample_spacing"]
