"""Reprojection-only baseline: the point-cloud memory splatted into the camera, holes filled.

What a world gets from geometry alone, without any generative model: the reference RGB-D is
lifted into a `PointCloudMemory` (same voxel size as the runtime), every step it is splatted with
the z-buffer into the new camera and each empty pixel takes the colour and depth of the nearest
splatted pixel. Only the reference (and its sweep, written by the model worlds' rules,
`sim_env.memory.writer`) enters the memory — the baseline's own hole-filled frames
carry no new information. Poses move with the runtime's kinematics and the same collision rule
(`kinematics.block_forward`), decided on the baseline's own depth.
Hands are not drawn (geometry alone cannot know them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from bridge.actions import NavLimits, action_to_nav
from bridge.types import Action, Observation
from sim_env.kinematics import block_forward, integrate_nav
from sim_env.memory.splat import splat
from sim_env.memory.writer import MemoryWriter
from sim_env.reference_sweep import ReferenceViews, as_views
from sim_env.runtime import DEFAULT_COLLISION_DEPTH_M, DEFAULT_VOXEL_SIZE_M

AGENT = "agent_0"


def fill_nearest(
    rgb: NDArray[np.uint8], depth: NDArray[np.float32], mask: NDArray[np.bool_]
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Give every pixel outside ``mask`` the colour and depth of the nearest pixel inside it.

    With an empty mask nothing can be copied: black and +inf (nothing seen) are returned.
    """
    if not mask.any():
        return np.zeros_like(rgb), np.full_like(depth, np.inf)
    _, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return rgb[rows, cols], depth[rows, cols]


class ReprojectionWorld:
    """Single-agent World-like baseline: ``reset(seed, options={"reference": {...}})`` / ``step``.

    Args:
        height: frame rows.
        width: frame columns.
        nav_limits: per-step navigation scale (the engines').
        collision_depth_m: forward motion is blocked when the previous depth ahead is below.
        memory_capacity: voxels of the memory; None = room for ``reference_views`` frames twice over.
        voxel_size: voxel edge in metres.
        dt: seconds per step.
        reference_views: the most reference views a reset may give (the reference and its sweep).
    """

    def __init__(
        self,
        height: int,
        width: int,
        nav_limits: NavLimits = NavLimits(),  # noqa: B008 - frozen dataclass
        collision_depth_m: float = DEFAULT_COLLISION_DEPTH_M,
        memory_capacity: int | None = None,
        voxel_size: float = DEFAULT_VOXEL_SIZE_M,
        dt: float = 0.1,
        reference_views: int = 1,
    ) -> None:
        self.height, self.width = int(height), int(width)
        self.nav_limits, self.collision_depth_m, self.dt = nav_limits, float(collision_depth_m), float(dt)
        # The model worlds' reference rules (pins, a sweep's hands and overlaps); nothing else is written.
        self.writer = MemoryWriter(
            1, 1, self.height, self.width, voxel_size, reference_views, memory_capacity, pin_references=True
        )
        self.memory, self.reference_views = self.writer.memory, self.writer.reference_views
        self._obs: Observation | None = None

    def reset(self, seed: int | None = None, options: Mapping | None = None) -> dict[str, Observation]:
        """Start from ``options["reference"]["agent_0"]``: an Observation or [reference, *sweep].

        Each Observation carries RGB-D, K and pose; the sweep is `sim_env.reference_sweep`'s.
        """
        given = dict(options or {}).get("reference", {}).get(AGENT)
        if given is None:
            raise ValueError(
                "options['reference']['agent_0'] is required (the baseline renders nothing itself)"
            )
        observed = as_views(given, "options['reference']['agent_0']")
        views = ReferenceViews.from_observations([observed])
        if views.count > self.reference_views:
            raise ValueError(
                f"options['reference']['agent_0']: 1 to {self.reference_views} views, got {views.count}"
            )
        rgb, depth, K, pose, hands = views.view(0)
        self.writer.write_references(
            rgb, depth, K, pose, hands, torch.ones(1, dtype=torch.bool), views.after_first()
        )
        reference = observed[0]
        self._obs = Observation(
            rgb=reference.rgb.copy(),
            depth=reference.depth.copy(),
            pose=reference.pose.copy(),
            K=reference.K.copy(),
            frame_id=0,
            sim_time=0.0,
        )
        return {AGENT: self._obs}

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """Move (runtime kinematics and collision rule), splat the memory, fill the holes."""
        if self._obs is None:
            raise RuntimeError("call reset before step")
        prev = self._obs
        nav = torch.as_tensor(action_to_nav(actions.get(AGENT, Action.noop())))[None]
        nav, blocked = block_forward(nav, [torch.as_tensor(prev.depth)[None]], self.collision_depth_m)
        pose = integrate_nav(torch.as_tensor(prev.pose)[None], nav, self.nav_limits)[0]
        self._obs = self._render(prev, pose.numpy(), bool(blocked[0]))
        return {AGENT: self._obs}

    def set_pose(self, agent_id: str, pose: NDArray[np.float64]) -> Observation:
        """Teleport the camera (no collision check, as `World.set_pose`) and render there."""
        if self._obs is None:
            raise RuntimeError("call reset before set_pose")
        if agent_id != AGENT:
            raise ValueError(f"unknown agent id {agent_id!r}")
        self._obs = self._render(self._obs, np.asarray(pose, dtype=np.float64), False)
        return self._obs

    def _render(self, prev: Observation, pose: NDArray[np.float64], collided: bool) -> Observation:
        """The next frame at ``pose``: splat the memory, fill the holes."""
        h, w, mem = self.height, self.width, self.memory
        rgb, depth, mask = splat(
            mem.xyz,
            mem.rgb,
            mem.valid,
            torch.as_tensor(prev.K)[None].float(),
            torch.as_tensor(pose)[None].float(),
            h,
            w,
        )
        rgb_np = rgb[0].round().clamp(0, 255).to(torch.uint8).numpy()
        filled_rgb, filled_depth = fill_nearest(rgb_np, depth[0].numpy(), mask[0].numpy())
        return Observation(
            rgb=filled_rgb,
            depth=filled_depth.astype(np.float32),
            pose=pose,
            K=prev.K,
            frame_id=prev.frame_id + 1,
            sim_time=(prev.frame_id + 1) * self.dt,
            collided=collided,
        )

    def close(self) -> None:
        """Nothing to free."""
