"""The pinned reference drawn as surfels: each voxel covers its projected footprint.

The memory splats one pixel per voxel. Seen from nearer than the reference, a surface's voxels
project further apart than a pixel, so the reference shows as a sparse grid; the gaps between its
pixels fill with generated voxels (the model's own drift, a little in front of or behind the
surface), which the reference passthrough must not copy as if they were ground truth. Drawing each
pinned voxel as a square of its projected size, ``fx · voxel_size / depth`` pixels, gives the view
the reference actually implies: the surface without gaps. A pixel the reference does not show takes
the surfel of the nearest pixel whose footprint reaches it (as the reprojection baseline's nearest
fill does); a reference pixel keeps its own voxel unless a surfel lies clearly in front of it, so a
near object's footprint does not fatten over its background. Where the memory's winner at a pixel is
an unpinned voxel nearer than the surfel by the pinned-margin rule (`PointCloudMemory.render`),
something stands in front of the reference — a generated object — and the surfel stays hidden.

Static shapes and no host sync: one max-pool per footprint radius, so it sits in the step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Largest footprint radius in pixels: a 64-pixel, 70° view with 5 cm voxels reaches it at about
# 0.14 m, nearer than the collision rule lets a camera come to a wall.
MAX_SURFEL_RADIUS = 8


def surfel_radius(depth: torch.Tensor, fx: torch.Tensor, voxel_size: float, max_radius: int) -> torch.Tensor:
    """(N, H, W) int: pixels a voxel at ``depth`` reaches beyond its own, floor(fx·size / 2·depth).

    A pixel centre k pixels away lies inside the voxel's square footprint when k ≤ s/2, so a
    voxel seen at the reference's own scale (s ≈ 1) covers only its pixel.
    """
    size = fx[:, None, None] * voxel_size / depth.clamp_min(1e-6)
    return torch.floor(size / 2).clamp(0, max_radius).to(torch.int64)


def reference_surfels(
    values: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    pinned: torch.Tensor,
    fx: torch.Tensor,
    voxel_size: float,
    pinned_margin: float,
    gap_radius: int = 0,
    max_radius: int = MAX_SURFEL_RADIUS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the pinned reference's surfels show, and their values (colour, depth, ...).

    Args:
        values: (N, H, W, C) per-pixel splat values to carry, e.g. colour and depth.
        depth: (N, H, W) memory splat depth in metres (+inf where empty).
        valid: (N, H, W) bool, splat validity.
        pinned: (N, H, W) bool, pixels whose winning voxel is pinned (`conditioning.pinned_pixels`).
        fx: (N,) focal length in pixels of the view.
        voxel_size: voxel edge of the memory in metres.
        pinned_margin: the render's margin m: an unpinned voxel nearer than 1/(1 + m) of a
            surfel's depth hides it.
        gap_radius: pixels within this many of a reference pixel that the `closing` of the
            reference marks also take its nearest reference voxel. A voxel's point is rounded to
            a pixel, so footprints a little under two pixels wide (surfaces a little nearer than
            the reference saw them) still leave one-pixel gaps; the closing fills those without
            growing the reference over the rim of a wide hole.
        max_radius: largest footprint radius drawn.

    Returns:
        (N, H, W) bool where a surfel shows, and (N, H, W, C) the values of its source pixel
        there (unspecified where no surfel shows).
    """
    n, h, w = depth.shape
    reference = pinned & valid
    radius = surfel_radius(depth, fx, voxel_size, max_radius)
    gaps = closing(reference, gap_radius) & ~reference
    first = torch.full_like(depth, float("inf"))  # the surfel of the nearest ring that reaches
    first_source = torch.zeros(n, h, w, dtype=torch.int64, device=depth.device)
    front = torch.full_like(depth, float("inf"))  # the nearest surfel that reaches, any ring
    front_source = torch.zeros_like(first_source)
    for r in range(1, max(max_radius, gap_radius) + 1):
        reach, index = nearest_within(depth, reference & (radius >= r), r)
        if r <= gap_radius:  # any reference pixel reaches a gap; elsewhere only a wide footprint
            gap_reach, gap_index = nearest_within(depth, reference, r)
            reach, index = torch.where(gaps, gap_reach, reach), torch.where(gaps, gap_index, index)
        new = torch.isinf(first) & torch.isfinite(reach)
        first, first_source = torch.where(new, reach, first), torch.where(new, index, first_source)
        nearer = reach < front
        front, front_source = torch.where(nearer, reach, front), torch.where(nearer, index, front_source)
    # A reference pixel keeps its own voxel unless a surfel lies clearly in front of it (the
    # margin rule): a near object's footprint does not fatten over the background it borders.
    own = torch.arange(h * w, device=depth.device).expand(n, h * w).reshape(n, h, w)
    hidden = reference & (front * (1.0 + pinned_margin) < depth)
    surfel = torch.where(reference, torch.where(hidden, front, depth), first)
    source = torch.where(reference, torch.where(hidden, front_source, own), first_source)
    in_front = valid & ~reference & (depth * (1.0 + pinned_margin) < surfel)
    shown = torch.isfinite(surfel) & ~in_front
    flat = values.reshape(n, h * w, -1)
    picked = torch.gather(flat, 1, source.reshape(n, h * w, 1).expand(-1, -1, flat.shape[-1]))
    return shown, picked.reshape(n, h, w, -1)


def nearest_within(
    depth: torch.Tensor, eligible: torch.Tensor, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) depth and flat pixel index of the nearest eligible pixel within ``radius`` (inf: none)."""
    key = torch.where(eligible, -depth, float("-inf"))[:, None]
    pooled, index = F.max_pool2d(key, 2 * radius + 1, stride=1, padding=radius, return_indices=True)
    return -pooled[:, 0], index[:, 0]


def closing(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, H, W) bool morphological closing (dilate, then erode) of ``mask`` by a square of ``radius``.

    It marks holes narrower than 2·radius + 1 pixels that the mask surrounds, but not the rim of
    a wider hole.
    """
    size = 2 * radius + 1
    dilated = F.max_pool2d(mask[:, None].float(), size, stride=1, padding=radius)
    return (1.0 - F.max_pool2d(1.0 - dilated, size, stride=1, padding=radius))[:, 0] > 0.5
