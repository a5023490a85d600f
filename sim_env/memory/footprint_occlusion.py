"""Surfaces hide what lies behind the gaps of their splat: every voxel occludes with its footprint.

The memory splats one pixel per voxel. From a camera nearer to a surface than a voxel's width
spans a pixel, the surface's voxels land a few pixels apart, and whatever the memory holds behind
the surface wins the pixels between them. Once the agent has walked up to a wall, the room the
reference saw beyond that wall shows through it as a dotted pattern, and the pinned reference,
copied as ground truth, makes it permanent.

Here every voxel also stands for the square its 5 cm cube projects to, ``fx · voxel_size / depth``
pixels wide (`footprint_radius`, rounded up so that rounding each voxel to one pixel leaves no
gaps). A pixel inside a surface's splat whose own winner lies clearly behind the surface takes the
values and depth of the surface's nearest voxel there. "Inside" is a grey-level morphological
closing of the depth (the min over each voxel's footprint, then the max of those minima over the
pixel's neighbourhood): between a surface's voxels it gives the surface's depth, while past the
surface's silhouette it gives the background's, so a near object does not fatten over what lies
behind it (the reference seen from its own pose renders as before), and a lone voxel (a speck of
generated noise near the camera) does not blot out a square. Each depth layer closes on its own,
so a floor in front of a box does not fatten over the box either.

"Behind" uses the render's priority (`PointCloudMemory.render`): an unpinned voxel competes at
``(1 + pinned_margin)`` times its depth, so a generated surface hides the reference only where it
would also win the plain z-test. ``OCCLUSION_GAP`` keeps neighbouring voxels of one surface from
replacing each other.

A voxel the reference saw from afar, or on a surface seen edge-on, stands for more than its cube:
the reference sampled that surface only every few centimetres, one voxel per sample, and walked up
to, those voxels land further apart than their cubes reach. Given each voxel's sample spacing
(`sim_env.memory.sample_spacing`, the runtime's ``sample_footprints``), a voxel whose samples now
land s pixels apart also stands for the s − 1 pixels between them, and the surface hides what
lies behind it there too. Seen from where the reference stood, its samples land one pixel apart
whatever the surface's slant (s = 1), so this adds nothing there.

Empty pixels stay empty: footprints decide what is hidden, not what is shown. Holes are the
model's to fill, as in training.

Voxels under a pixel wide have no footprint beyond their pixel, but a surface of them still
leaves single-pixel gaps where the voxel grid beats with the pixel grid; a pixel between two
opposite neighbours that lie clearly in front is hidden too (`single_pixel_gaps`).

Static shapes and no host sync: two max-pools per footprint radius, so it sits in the step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim_env.memory.reference_surfels import MAX_SURFEL_RADIUS, nearest_within

# A footprint hides a pixel only when nearer than 1 / (1 + gap) of the pixel's own winner (in
# priority depth). A wall seen at a grazing angle recedes by a factor 1 + 1/|u − cx| per pixel
# (u − cx pixels off the centre); where its voxels' footprints reach two pixels, that stays under
# 1.25, so one surface's voxels do not hide each other.
OCCLUSION_GAP = 0.25


def footprint_radius(
    depth: torch.Tensor, fx: torch.Tensor, voxel_size: float, max_radius: int
) -> torch.Tensor:
    """(N, H, W) int: pixels an occluding voxel at ``depth`` reaches beyond its own.

    A voxel ``size`` pixels wide: voxels of a surface land up to ``size + 1`` pixels apart once
    each is rounded to one pixel, and a half-width of ceil(size / 2) closes those gaps. A voxel
    under a pixel wide reaches only its own; the single-pixel gaps its surface still leaves are
    `single_pixel_gaps`'.
    """
    size = fx[:, None, None] * voxel_size / depth.clamp_min(1e-6)
    radius = torch.where(size >= 1.0, torch.ceil(size / 2 - 1e-6), 0.0)
    return radius.clamp(0, max_radius).to(torch.int64)


def single_pixel_gaps(priority: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) enclosing depth and (N, H, W) source pixel of every pixel between two opposite neighbours.

    Voxels under a pixel wide still leave single-pixel gaps: the voxel grid, seen at a slant, beats
    with the pixel grid. Through them shows whatever the memory holds behind the surface, which a
    scan (`sim_env.reference_scan`) fills with what it saw from elsewhere. A pixel whose two
    neighbours on one line (left and right, or above and below) both lie in front is such a gap:
    the farther of the two is the enclosing depth, the nearer the source. A gap two pixels wide is
    real (a slit between two objects) and is left alone, and so are diagonal neighbours: a
    silhouette at 45° rasterises as a staircase whose steps are diagonal neighbours around every
    background pixel beside it. Outside the image nothing encloses.
    """
    n, h, w = priority.shape
    inf = float("inf")
    padded = F.pad(torch.where(valid, priority, inf)[:, None], (1, 1, 1, 1), value=inf)[:, 0]
    index = torch.arange(h * w, device=priority.device).reshape(1, h, w).expand(n, h, w)
    padded_index = F.pad(index[:, None].float(), (1, 1, 1, 1))[:, 0].long()
    front = torch.full_like(priority, inf)
    source = torch.zeros(n, h, w, dtype=torch.int64, device=priority.device)
    for dy, dx in ((0, 1), (1, 0)):
        a = padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        b = padded[:, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        index_a = padded_index[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        index_b = padded_index[:, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        enclosing = torch.maximum(a, b)
        nearer = enclosing < front
        front = torch.where(nearer, enclosing, front)
        source = torch.where(nearer, torch.where(a <= b, index_a, index_b), source)
    return front, source


def occlude_by_footprints(
    values: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    pinned: torch.Tensor,
    fx: torch.Tensor,
    voxel_size: float,
    pinned_margin: float,
    max_radius: int = MAX_SURFEL_RADIUS,
    sample_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The splat with every pixel clearly behind the surface enclosing it showing that surface.

    Args:
        values: (N, H, W, C) per-pixel splat values (colour, pinned flag, ...).
        depth: (N, H, W) the splat's planar depth in metres (+inf where empty).
        valid: (N, H, W) bool, the splat's validity.
        pinned: (N, H, W) bool, pixels whose winning voxel is pinned.
        fx: (N,) focal length in pixels.
        voxel_size: voxel edge of the memory in metres.
        pinned_margin: the render's priority of pinned voxels (0: plain depth).
        max_radius: largest footprint half-width drawn, in pixels.
        sample_pixels: (N, H, W) pixels between the samples each pixel's voxel stands for in this
            view (`sim_env.memory.sample_spacing.projected_spacing`): a voxel covers the larger of
            its cube and the s − 1 pixels between samples s apart. None: every voxel is its cube.

    Returns:
        values (N, H, W, C), depth (N, H, W) and the (N, H, W) bool of the pixels that changed.
    """
    n, h, w = depth.shape
    priority = torch.where(pinned, depth, depth * (1.0 + pinned_margin))
    radius = footprint_radius(depth, fx, voxel_size, max_radius)
    if sample_pixels is not None:  # samples s pixels apart leave s - 1 pixels between them
        between = torch.where(sample_pixels >= 2.0, torch.ceil((sample_pixels - 1.0) / 2 - 1e-6), 0.0)
        radius = torch.maximum(radius, between.clamp(0, max_radius).to(torch.int64))
    front = torch.full_like(depth, float("inf"))
    source = torch.zeros(n, h, w, dtype=torch.int64, device=depth.device)
    for r in range(1, max_radius + 1):
        # The nearest voxel whose footprint reaches (a min-pool), then the grey-level closing's
        # erosion: the farthest of those minima around the pixel. A pixel between a surface's
        # voxels keeps the surface's depth; one past its silhouette, or beside a lone voxel, sees
        # the background's minima beside it and keeps its own.
        reach, index = nearest_within(priority, valid & (radius >= r), r)
        enclosing = F.max_pool2d(reach[:, None], 2 * r + 1, stride=1, padding=r)[:, 0]
        nearer = enclosing < front
        front, source = torch.where(nearer, enclosing, front), torch.where(nearer, index, source)
    gap_front, gap_source = single_pixel_gaps(priority, valid)
    nearer = gap_front < front
    front, source = torch.where(nearer, gap_front, front), torch.where(nearer, gap_source, source)
    hidden = valid & (front * (1.0 + OCCLUSION_GAP) < priority)
    flat_source = source.reshape(n, h * w)
    picked = torch.gather(
        values.reshape(n, h * w, -1), 1, flat_source[..., None].expand(-1, -1, values.shape[-1])
    )
    picked_depth = torch.gather(depth.reshape(n, h * w), 1, flat_source)
    values = torch.where(hidden[..., None], picked.reshape(n, h, w, -1), values)
    depth = torch.where(hidden, picked_depth.reshape(n, h, w), depth)
    return values, depth, hidden
