"""The memory as the model is given it: the splat into the target cameras and the render rules on it.

`render_anchor` splats the point-cloud memory (`sim_env.memory.point_cloud`) and applies, in order:
- the reference's own depth for the collision rule, read before anything hides it: the
  reference's walls stand whatever is drawn in front of them;
- footprint occlusion (`sim_env.memory.footprint_occlusion`), with the references' sample
  spacing when ``sample_footprints`` is on (`sim_env.memory.sample_spacing`);
- the primary reference's gaps (`sim_env.memory.primary_gaps`): other spots' voxels seen through
  the start's own views are left to the model.

Static shapes and no host sync, so it sits in the captured step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from sim_env.conditioning import pinned_depth, pinned_pixels
from sim_env.memory.footprint_occlusion import occlude_by_footprints
from sim_env.memory.point_cloud import OFFSET_CHANNELS, PointCloudMemory
from sim_env.memory.primary_gaps import hide_primary_gaps
from sim_env.memory.sample_spacing import projected_spacing


@dataclass(frozen=True)
class AnchorRules:
    """Which render rules the anchor runs (`GenerativeRuntime`'s memory rules)."""

    pinned_margin: float
    with_pins: bool
    reference_depth: bool
    footprint_occlusion: bool
    sample_footprints: bool


class AnchorView(NamedTuple):
    """The anchor of N cameras and the pinned reference's depth for the collision rule.

    values (N, H, W, C), depth (N, H, W), mask (N, H, W); reference_depth (N, H, W), +inf where no
    pinned voxel shows, or None unless the rules ask for it.
    """

    values: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    reference_depth: torch.Tensor | None


def render_anchor(
    memory: PointCloudMemory,
    K: torch.Tensor,
    pose_c2w: torch.Tensor,
    height: int,
    width: int,
    cameras_per_world: int,
    rules: AnchorRules,
) -> AnchorView:
    """The memory splatted into N = B·A cameras (``K`` (N, 3, 3), ``pose_c2w`` (N, 4, 4)) under ``rules``."""
    values, depth, mask = memory.render(
        K,
        pose_c2w,
        height,
        width,
        with_pins=rules.with_pins,
        cameras_per_world=cameras_per_world,
        pinned_margin=rules.pinned_margin,
        with_offsets=rules.sample_footprints,
    )
    between = None  # how many pixels apart the references' samples land in this view
    if rules.sample_footprints:
        between = projected_spacing(values[..., OFFSET_CHANNELS], depth, K, pose_c2w)
    values = values[..., : OFFSET_CHANNELS.start]
    reference_depth = pinned_depth(values, depth, mask) if rules.reference_depth else None
    if rules.footprint_occlusion:
        pinned, fx = pinned_pixels(values, mask), K[:, 0, 0]
        occlusion = (pinned, fx, memory.voxel_size, rules.pinned_margin)
        values, depth, _ = occlude_by_footprints(values, depth, mask, *occlusion, sample_pixels=between)
    if rules.with_pins:
        values, depth, mask = hide_primary_gaps(values, depth, mask)
    return AnchorView(values, depth, mask, reference_depth)


__all__ = ["AnchorRules", "AnchorView", "render_anchor"]
