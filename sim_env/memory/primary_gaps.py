"""Gaps in the start's own views are the model's to fill, not the other spots' to show through.

A reference scan (`sim_env.reference_scan`) pins what the engine showed from several spots. The
start's own views are the primary reference: near the start they cover almost every pixel, and
where their splat leaves a gap (a surface seen at a slant, the voxel grid beating with the pixel
grid), the other spots' voxels win it. Those voxels are ground truth, but seen from elsewhere: a
wall's texture sampled at another scale and angle, or, where the start's wall is thin in the
splat, the room behind it. Measured one step after reset, the model fills such gaps better than
the other spots' colours do (docs/model.md).

So a pixel showing another spot's pinned voxel is left empty where the primary reference encloses
it: within `PRIMARY_GAP_RADIUS` (r) pixels on both sides along a row or a column (beyond the
image's edge counts as enclosing, where a gap has no outer neighbour). A gap up to r pixels wide is
left empty whole; a run of 2·r pixels or more, a region of the other spots' own (a room the start
never saw, a corridor round a corner), stays whole.

Static shapes and no host sync: a few shifted ORs, so it sits in the step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PRIMARY_GAP_RADIUS = 5  # pixels
PRIMARY_LEVEL = 1.5  # the render's pinned channel: 0 unpinned, 1 pinned, 2 primary


def primary_gaps(
    pin_level: torch.Tensor, valid: torch.Tensor, radius: int = PRIMARY_GAP_RADIUS
) -> torch.Tensor:
    """(N, H, W) bool: pixels of other spots' pinned voxels enclosed by the primary reference.

    Args:
        pin_level: (N, H, W) the render's pinned channel (`PointCloudMemory.render(with_pins=True)`).
        valid: (N, H, W) bool, the pixels rendered.
        radius: how far, in pixels, the enclosing primary pixels may lie on each side.
    """
    primary = valid & (pin_level > PRIMARY_LEVEL)
    secondary = valid & (pin_level > 0.5) & ~primary
    _n, h, w = primary.shape
    padded = F.pad(primary[:, None].float(), (radius, radius, radius, radius))[:, 0] > 0.5
    enclosed = torch.zeros_like(primary)
    for dy, dx, size in ((0, 1, w), (1, 0, h)):
        before, after = torch.zeros_like(primary), torch.zeros_like(primary)
        for k in range(1, radius + 1):
            before |= padded[:, radius - k * dy : radius - k * dy + h, radius - k * dx : radius - k * dx + w]
            after |= padded[:, radius + k * dy : radius + k * dy + h, radius + k * dx : radius + k * dx + w]
        # Within ``radius`` of the image's edge, the edge encloses that side.
        index = torch.arange(size, device=primary.device)
        shape = (1, 1, size) if dx else (1, size, 1)
        edge_before, edge_after = (index < radius).reshape(shape), (index >= size - radius).reshape(shape)
        # Both sides enclosed, and at least one by the primary itself.
        enclosed |= (before | edge_before) & (after | edge_after) & (before | after)
    return secondary & enclosed


def hide_primary_gaps(
    values: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The render with `primary_gaps` emptied: values 0, depth +inf, not valid.

    Args:
        values: (N, H, W, C) the render's values, the pinned channel last.
        depth: (N, H, W) its depth (+inf where empty).
        valid: (N, H, W) bool, its validity.
    """
    shown = valid & ~primary_gaps(values[..., -1], valid)
    return torch.where(shown[..., None], values, 0.0), torch.where(shown, depth, float("inf")), shown


__all__ = ["PRIMARY_GAP_RADIUS", "hide_primary_gaps", "primary_gaps"]
