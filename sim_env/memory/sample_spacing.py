"""How far apart a reference's samples of a surface land in another view.

A reference pixel samples the surface it hits; the memory keeps one voxel per sample. Walk up to a
wall that a reference saw from far away, or edge-on, and its voxels land many pixels apart,
further than the voxel's own 5 cm square reaches (`sim_env.memory.footprint_occlusion`): whatever
the memory holds behind the wall shows between them.

Each reference pixel therefore keeps the 3-D offsets to its next samples along the image's rows and
columns (`sample_offsets`), in world coordinates. Projected into any later view, they say how many
pixels apart the samples land there (`projected_spacing`): one pixel from where the reference
stood, whatever the surface's slant, and many where the view is nearer or faces a surface the
reference saw edge-on. An offset measured in metres alone could not tell those apart: a wall seen
edge-on has samples far apart in space but side by side in its own image.

A neighbour counts as the same surface when it lies within ``max_stretch`` pixel footprints
(z / fx) of the pixel; farther than that, the two pixels straddle a depth edge, or a surface more
oblique than arccos(1 / max_stretch), and the offset along that axis is zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim_env.memory.splat import lift_to_camera

# 1 / cos θ of the most oblique surface whose samples are joined: 4 is about 76° from the normal.
DEFAULT_MAX_STRETCH = 4.0
OFFSET_CHANNELS = 6  # along the rows (x, y, z), then along the columns


def _lift(depth: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) camera-frame points of planar ``depth`` and the (N, H, W) bool of valid ones."""
    z = depth.to(torch.float32)
    ok = torch.isfinite(z) & (z > 0.0)
    zs = torch.where(ok, z, 0.0)
    x, y = lift_to_camera(zs, K.to(z))
    return torch.stack([x, y, zs], dim=1), ok


def sample_offsets(
    depth: torch.Tensor,
    K: torch.Tensor,
    pose_c2w: torch.Tensor,
    max_stretch: float = DEFAULT_MAX_STRETCH,
) -> torch.Tensor:
    """(N, H, W, 6) world-frame offsets from each pixel's sample to its next along the row, then the column.

    Along each axis the longer of the two joined neighbours' offsets is kept (pointing to the
    next pixel, or from the previous one), zero where neither lies on the same surface or the
    pixel has no depth.

    Args:
        depth: (N, H, W) planar depth in metres; non-finite or <= 0 is no sample.
        K: (N, 3, 3) intrinsics.
        pose_c2w: (N, 4, 4) camera-to-world poses (offsets rotate into the world frame).
        max_stretch: neighbours farther than this many pixel footprints (z / fx) apart are not
            on the same surface.
    """
    if not max_stretch >= 1.0:
        raise ValueError(f"max_stretch must be >= 1, got {max_stretch}")
    _n, h, w = depth.shape
    points, ok = _lift(depth, K)
    reach = max_stretch * points[:, 2] / K[:, 0, 0, None, None].to(points)
    padded = F.pad(points, (1, 1, 1, 1))
    padded_ok = F.pad(ok[:, None].float(), (1, 1, 1, 1))[:, 0] > 0.5
    axes = []
    for dy, dx in ((0, 1), (1, 0)):
        best = torch.zeros_like(points)
        for sign in (1, -1):
            neighbour = padded[:, :, 1 + sign * dy : 1 + sign * dy + h, 1 + sign * dx : 1 + sign * dx + w]
            neighbour_ok = padded_ok[:, 1 + sign * dy : 1 + sign * dy + h, 1 + sign * dx : 1 + sign * dx + w]
            offset = sign * (neighbour - points)  # towards increasing column (row)
            length = torch.linalg.vector_norm(offset, dim=1)
            joined = ok & neighbour_ok & (length <= reach)
            longer = joined & (length > torch.linalg.vector_norm(best, dim=1))
            best = torch.where(longer[:, None], offset, best)
        axes.append(best)
    offsets = torch.cat(axes, dim=1).permute(0, 2, 3, 1)  # (N, H, W, 6), camera frame
    rotation = pose_c2w[:, :3, :3].to(offsets)
    world = offsets.unflatten(-1, (2, 3)) @ rotation[:, None, None].transpose(-1, -2)
    return world.flatten(-2)


def projected_spacing(
    offsets: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, pose_c2w: torch.Tensor
) -> torch.Tensor:
    """(N, H, W) pixels between the samples each pixel's voxel stands for, in the view (K, pose_c2w).

    The longer of the two world-frame ``offsets`` (N, H, W, 6) after projection at the pixel's
    point (first order in the offset); 0 where the offsets are zero.

    Args:
        offsets: (N, H, W, 6) the render's `sample_offsets` channels.
        depth: (N, H, W) the render's planar depth in metres (+inf where empty).
        K: (N, 3, 3) intrinsics of the view.
        pose_c2w: (N, 4, 4) its camera-to-world pose.
    """
    points, ok = _lift(depth, K)
    rotation = pose_c2w[:, :3, :3].to(offsets)  # row vectors: v_camera = v_world @ R_c2w
    camera = offsets.unflatten(-1, (2, 3)) @ rotation[:, None, None]  # (N, H, W, 2, 3)
    x, y, z = (points[:, i, :, :, None] for i in range(3))
    zs = torch.where(ok[..., None], z, 1.0)
    fx, fy = K[:, 0, 0, None, None, None].to(zs), K[:, 1, 1, None, None, None].to(zs)
    tx, ty, tz = camera.unbind(-1)
    du = fx * (tx * zs - x * tz) / zs**2
    dv = fy * (ty * zs - y * tz) / zs**2
    pixels = torch.sqrt(du**2 + dv**2).amax(dim=-1)
    return torch.where(ok, pixels, 0.0)


__all__ = ["DEFAULT_MAX_STRETCH", "OFFSET_CHANNELS", "projected_spacing", "sample_offsets"]
