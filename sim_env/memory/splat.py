"""Batched z-buffered nearest-pixel splatting of world points into a camera (torch).

This is the renderer of the explicit geometric memory (InSpatio-World §3.2.2, Spatia §3):
the global point cloud is projected into the target camera and the nearest surface per
pixel gives the conditioning image, its planar depth and a validity mask.

It follows `bridge.reprojection.warp_to_view` exactly (that numpy function is the
reference): OpenCV camera, camera-to-world poses, pixel centres at integer coordinates,
round-half-to-even to the nearest pixel, points with camera depth <= MIN_PROJECTION_DEPTH
dropped, and the nearest point wins (ties: the lower point index, as the reference's
stable sort does).

The z-test needs no sort and no data-dependent shapes: each point's float32 depth bits
(monotonic as integers for positive floats) are packed above its index into one int64,
and `scatter_reduce(amin)` per pixel leaves the winner's key. Everything has static
shapes and no host synchronisation, so it can sit inside a CUDA-graph-captured step. On
CUDA with cupy importable the same algorithm runs as one fused kernel pair
(`splat_cupy`), chosen automatically.
"""

from __future__ import annotations

import functools

import torch

from bridge.reprojection import MIN_PROJECTION_DEPTH

# Sentinel z-buffer key: above every packed (positive float32 depth bits << 32 | index).
EMPTY_KEY = torch.iinfo(torch.int64).max
INDEX_BITS = 32
INDEX_MASK = (1 << INDEX_BITS) - 1
MAX_POINTS = 1 << INDEX_BITS  # the point index must fit below the depth bits
BACKENDS = ("auto", "torch", "cupy")


def world_to_camera(pose_c2w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation (B, 3, 3) and translation (B, 3) of the rigid inverse of camera-to-world poses.

    Uses R^T and -R^T t rather than a general inverse: exact for rigid poses and free of
    the error checks (host syncs) some linear-algebra kernels do.
    """
    R = pose_c2w[..., :3, :3].transpose(-1, -2)
    t = -(R * pose_c2w[..., None, :3, 3]).sum(-1)
    return R.contiguous(), t.contiguous()


def project_points(
    points_xyz: torch.Tensor, K: torch.Tensor, pose_c2w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel column u, row v (rounded, float) and planar depth z of world points.

    The transform is written as explicit multiply-adds in a fixed order (not a matmul) so
    the fused CuPy kernel can reproduce it bit for bit with round-to-nearest intrinsics.

    Args:
        points_xyz: (B, N, 3) world points.
        K: (B, 3, 3) intrinsics.
        pose_c2w: (B, 4, 4) camera-to-world.
    """
    R, t = world_to_camera(pose_c2w)
    x, y, z = points_xyz.unbind(-1)

    def row(i: int) -> torch.Tensor:
        r = R[:, i, :, None]  # (B, 3, 1)
        return ((r[:, 0] * x + r[:, 1] * y) + r[:, 2] * z) + t[:, i, None]

    xc, yc, zc = row(0), row(1), row(2)
    u = torch.round((K[:, 0, 0, None] * xc) / zc + K[:, 0, 2, None])
    v = torch.round((K[:, 1, 1, None] * yc) / zc + K[:, 1, 2, None])
    return u, v, zc


def lift_to_camera(depth: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame x and y (N, H, W) of every pixel at planar ``depth`` (N, H, W) under ``K`` (N, 3, 3).

    The inverse of `project_points` at pixel centres; ``depth`` should be 0 where a pixel has none
    (its x and y are then 0 too). One formula for every lift of a depth map in the memory.
    """
    _n, h, w = depth.shape
    rows, cols = torch.meshgrid(
        torch.arange(h, device=depth.device, dtype=depth.dtype),
        torch.arange(w, device=depth.device, dtype=depth.dtype),
        indexing="ij",
    )
    x = (cols - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None] * depth
    y = (rows - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None] * depth
    return x, y


def splat_torch(
    points_xyz: torch.Tensor,
    points_rgb: torch.Tensor,
    valid: torch.Tensor,
    K: torch.Tensor,
    pose_c2w: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The torch implementation of `splat` (same arguments and returns)."""
    B, N = valid.shape
    u, v, z = project_points(points_xyz, K, pose_c2w)
    keep = valid & (z > MIN_PROJECTION_DEPTH) & torch.isfinite(z) & (u >= 0) & (u < width)
    keep &= (v >= 0) & (v < height)
    num_pixels = height * width
    # Dropped points go to one extra dump slot so the scatter keeps a static shape.
    target = torch.where(keep, v * width + u, torch.full_like(u, num_pixels)).long()
    depth_bits = z.float().clamp_min(0.0).view(torch.int32).long()
    index = torch.arange(N, device=z.device, dtype=torch.int64).expand(B, N)
    key = torch.where(keep, (depth_bits << INDEX_BITS) | index, EMPTY_KEY)
    zbuf = torch.full((B, num_pixels + 1), EMPTY_KEY, device=z.device, dtype=torch.int64)
    zbuf.scatter_reduce_(1, target, key, reduce="amin", include_self=True)
    zbuf = zbuf[:, :num_pixels]

    mask = zbuf != EMPTY_KEY
    winner = torch.where(mask, zbuf & INDEX_MASK, 0)
    rgb = torch.gather(points_rgb, 1, winner[..., None].expand(B, num_pixels, points_rgb.shape[-1]))
    rgb = torch.where(mask[..., None], rgb, torch.zeros((), dtype=rgb.dtype, device=rgb.device))
    depth = torch.gather(z, 1, winner).float()
    depth = torch.where(mask, depth, torch.full((), float("inf"), device=depth.device))
    return (
        rgb.reshape(B, height, width, -1),
        depth.reshape(B, height, width),
        mask.reshape(B, height, width),
    )


@functools.cache
def cupy_available() -> bool:
    """Whether the fused CuPy kernel can be used (cupy importable and a CUDA device present)."""
    if not torch.cuda.is_available():
        return False
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def splat(
    points_xyz: torch.Tensor,
    points_rgb: torch.Tensor,
    valid: torch.Tensor,
    K: torch.Tensor,
    pose_c2w: torch.Tensor,
    height: int,
    width: int,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Splats B point sets into B cameras with a z-buffer; the nearest point wins each pixel.

    Args:
        points_xyz: (B, N, 3) world points (float32 or float64; the projection runs in it).
        points_rgb: (B, N, C) per-point colours (any dtype; returned unchanged per pixel).
        valid: (B, N) bool, False for empty slots.
        K: (B, 3, 3) intrinsics (same dtype as points_xyz).
        pose_c2w: (B, 4, 4) camera-to-world poses (same dtype as points_xyz).
        height: image rows.
        width: image columns.
        backend: "auto" (cupy on CUDA when importable, else torch), "torch" or "cupy".

    Returns:
        rgb: (B, height, width, C) colour of the nearest point, zero where empty.
        depth: (B, height, width) float32 planar depth in the camera, +inf where empty.
        mask: (B, height, width) bool, True where some point landed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if points_xyz.shape[1] > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points per world, got {points_xyz.shape[1]}")
    use_cupy = backend == "cupy" or (
        backend == "auto" and points_xyz.is_cuda and points_xyz.dtype == torch.float32 and cupy_available()
    )
    if use_cupy:
        from sim_env.memory.splat_cupy import splat_cupy

        return splat_cupy(points_xyz, points_rgb, valid, K, pose_c2w, height, width)
    return splat_torch(points_xyz, points_rgb, valid, K, pose_c2w, height, width)
