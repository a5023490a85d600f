"""Forward warping of RGB-D frames between cameras, and photometric comparison.

`warp_to_view` splats every source pixel with finite depth into a destination camera:
unproject with the source K and planar depth, move through the world frame with both
camera-to-world poses, project with the destination K, round to the nearest pixel and
keep the nearest surface per pixel (a z-buffer). It is plain vectorised numpy so it can
serve as the reference for the C++ conformance test and the world model's torch/CuPy
splatting, and as the engine's ground-truth geometry check.

Conventions are GenWorld's (ARCHITECTURE.md §3): OpenCV cameras, 4x4 camera-to-world
poses, planar depth in metres with +inf for "no hit", pixel centres at integer
coordinates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bridge.conventions import se3_inverse
from bridge.types import Observation

# Points closer than this to the destination camera plane are dropped (behind or at the eye).
MIN_PROJECTION_DEPTH = 1e-6
# Default relative depth agreement for "the same surface" in covisibility tests. Forward
# splatting rounds to the nearest pixel, so on a slanted surface the splatted depth
# differs from the destination's by up to half a pixel's worth of depth gradient.
DEFAULT_DEPTH_REL_TOL = 0.05


def warp_to_view(
    rgb_src: ArrayLike,
    depth_src: ArrayLike,
    K_src: ArrayLike,
    pose_src: ArrayLike,
    K_dst: ArrayLike,
    pose_dst: ArrayLike,
    height: int,
    width: int,
) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.bool_]]:
    """Forward-splats a source RGB-D frame into a destination camera.

    Args:
        rgb_src: (H_s, W_s, 3) uint8 source colours.
        depth_src: (H_s, W_s) planar depth in metres; non-finite or <= 0 pixels are skipped.
        K_src: (3, 3) source intrinsics.
        pose_src: (4, 4) source camera-to-world.
        K_dst: (3, 3) destination intrinsics.
        pose_dst: (4, 4) destination camera-to-world.
        height: destination rows.
        width: destination columns.

    Returns:
        rgb_warped: (height, width, 3) uint8, zero where nothing landed.
        depth_warped: (height, width) float32 planar depth in the destination camera,
            +inf where nothing landed (holes, disocclusions, outside the source view).
        valid: (height, width) bool, True where some source pixel landed.
    """
    rgb = np.asarray(rgb_src)
    depth = np.asarray(depth_src, dtype=np.float64)
    K_s, K_d = np.asarray(K_src, dtype=np.float64), np.asarray(K_dst, dtype=np.float64)
    src_to_dst = se3_inverse(pose_dst) @ np.asarray(pose_src, dtype=np.float64)

    rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0.0))
    z = depth[rows, cols]
    # Unproject (pixel centres at integer coordinates) and move into the destination frame.
    points = np.stack([(cols - K_s[0, 2]) / K_s[0, 0] * z, (rows - K_s[1, 2]) / K_s[1, 1] * z, z], axis=1)
    points = points @ src_to_dst[:3, :3].T + src_to_dst[:3, 3]
    z_dst = points[:, 2]
    in_front = z_dst > MIN_PROJECTION_DEPTH
    points, z_dst, rows, cols = points[in_front], z_dst[in_front], rows[in_front], cols[in_front]
    u = np.rint(K_d[0, 0] * points[:, 0] / z_dst + K_d[0, 2])
    v = np.rint(K_d[1, 1] * points[:, 1] / z_dst + K_d[1, 2])
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    u, v, z_dst = u[inside].astype(np.int64), v[inside].astype(np.int64), z_dst[inside]
    rows, cols = rows[inside], cols[inside]

    # z-buffer: sort by (destination pixel, depth) and keep the first hit of each pixel.
    target = v * width + u
    order = np.lexsort((z_dst, target))
    target, first = target[order], np.ones(len(order), dtype=bool)
    first[1:] = target[1:] != target[:-1]
    winners = order[first]

    rgb_warped = np.zeros((height, width, 3), dtype=np.uint8)
    depth_warped = np.full((height, width), np.inf, dtype=np.float32)
    valid = np.zeros((height, width), dtype=bool)
    wv, wu = v[winners], u[winners]
    rgb_warped[wv, wu] = rgb[rows[winners], cols[winners]]
    depth_warped[wv, wu] = z_dst[winners]
    valid[wv, wu] = True
    return rgb_warped, depth_warped, valid


def covisible_mask(
    depth_warped: ArrayLike,
    valid: ArrayLike,
    depth_dst: ArrayLike,
    rel_tol: float = DEFAULT_DEPTH_REL_TOL,
) -> NDArray[np.bool_]:
    """Pixels where the warped source surface is the surface the destination sees.

    A warped pixel is rejected when something else occludes it in the destination (the
    destination depth is nearer) or when it fills a spot whose true surface was hidden
    from the source (the warped depth is nearer): both show up as a relative depth
    disagreement above `rel_tol`. Pixels with no destination depth (sky) are rejected.

    Args:
        depth_warped: (H, W) splatted planar depth from `warp_to_view`.
        valid: (H, W) mask from `warp_to_view`.
        depth_dst: (H, W) the destination frame's own planar depth.
        rel_tol: allowed |warped - dst| / dst.
    """
    dw = np.asarray(depth_warped, dtype=np.float64)
    dd = np.asarray(depth_dst, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(dw) & np.isfinite(dd) & (dd > 0.0)
    with np.errstate(invalid="ignore"):
        agree = np.abs(dw - dd) <= rel_tol * dd
    return ok & agree


def photometric_error(a: ArrayLike, b: ArrayLike, mask: ArrayLike) -> float:
    """Mean absolute colour difference over `mask`, in [0, 255] units (channels averaged).

    Returns NaN when the mask is empty, so callers must decide what "no overlap" means.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return float("nan")
    diff = np.abs(np.asarray(a, dtype=np.float64)[m] - np.asarray(b, dtype=np.float64)[m])
    return float(diff.mean())


def reprojection_consistency(
    source: Observation, target: Observation, target_pose: ArrayLike | None = None
) -> tuple[float, float]:
    """How well `source`, warped into `target`'s camera, reproduces `target`'s colours.

    This is the ground-truth geometry check every World's frames must pass: with the
    reported depth, K and poses, frame t warped into frame t+1 must match it over the
    covisible pixels. Passing `target_pose` (e.g. a deliberately perturbed pose) checks
    that the test would notice wrong geometry.

    Returns:
        (mean absolute photometric error over covisible pixels in [0, 255] units, NaN
        when nothing is covisible; the covisible fraction of the target image).
    """
    pose = target.pose if target_pose is None else np.asarray(target_pose, dtype=np.float64)
    rgb, depth, valid = warp_to_view(
        source.rgb, source.depth, source.K, source.pose, target.K, pose, target.height, target.width
    )
    mask = covisible_mask(depth, valid, target.depth)
    return photometric_error(rgb, target.rgb, mask), float(mask.mean())
