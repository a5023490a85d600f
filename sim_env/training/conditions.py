"""Model inputs of a training clip, built with the runtime's own functions.

The world model only works if training conditions it exactly as `sim_env.runtime` does at
inference, so everything here calls the same builders: `PointCloudMemory` + `splat` with the
runtime's capacity and voxel size (earlier frames of the clip inserted one by one, each new
frame's camera rendered before its own frame enters — as the runtime renders the memory before
it generates), `build_condition`, `hand_skeleton_map` at the model-resolution intrinsics, and
the Plücker rays of `sim_env.model.plucker`.
"""

from __future__ import annotations

import torch

from sim_env.conditioning import (
    build_condition,
    encode_frame,
    hand_skeleton_map,
    scale_intrinsics,
    skeleton_tables,
)
from sim_env.memory.point_cloud import PointCloudMemory
from sim_env.memory.reference_pin import DEFAULT_MEMORY_CAPACITY, reference_fits, reference_pin_mask
from sim_env.model.config import DiTConfig
from sim_env.model.plucker import plucker_rays
from sim_env.runtime import DEFAULT_PINNED_MARGIN, DEFAULT_VOXEL_SIZE_M


class Reprojection:
    """A batch of point-cloud memories rendered into target cameras (the runtime's explicit anchor).

    Args:
        batch: B, one memory per clip.
        config: model config (render size).
        device: where the memory lives.
        capacity: voxels per memory (the runtime's default).
        voxel_size: voxel edge in metres (the runtime's default).
        pinned_margin: priority of the pinned reference in the z-test (the runtime's default).
    """

    def __init__(
        self,
        batch: int,
        config: DiTConfig,
        device: torch.device | str,
        capacity: int = DEFAULT_MEMORY_CAPACITY,
        voxel_size: float = DEFAULT_VOXEL_SIZE_M,
        pinned_margin: float = DEFAULT_PINNED_MARGIN,
    ) -> None:
        self.config = config
        self.pinned_margin = pinned_margin
        self.memory = PointCloudMemory(batch, capacity, voxel_size, device=device)

    def insert(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose: torch.Tensor,
        reference_hands: torch.Tensor | None = None,
        reference: bool = False,
    ) -> None:
        """Insert one RGB-D frame per clip: rgb (B, H, W, 3), depth (B, H, W), K (B, 3, 3), pose (B, 4, 4).

        ``reference=True`` pins the frame's voxels as the runtime pins its reference frames (when
        they fit, `reference_fits`), except near ``reference_hands`` (B, 2, 21, 3) camera-frame
        keypoints (`reference_pin_mask`).
        """
        h, w = depth.shape[1:]
        pin = None
        if reference and reference_fits(h * w, self.memory.capacity):
            pin = reference_pin_mask(reference_hands, K, h, w)
        self.memory.insert(rgb, depth, K, pose, pin_mask=pin)

    def render(self, K: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Splat every memory into its camera: (rgb (B, H, W, 3 or 4), depth (B, H, W), mask (B, H, W)).

        The colour carries the pinned flag as a 4th channel for configs that read it, and the
        pinned reference has the runtime's z-test priority (`PointCloudMemory.render`).
        """
        cfg = self.config
        with_pins = cfg.anchor_gate_reference
        return self.memory.render(
            K.float(),
            pose.float(),
            cfg.height,
            cfg.width,
            with_pins=with_pins,
            pinned_margin=self.pinned_margin,
        )


def ground_truth_reprojections(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    pose: torch.Tensor,
    config: DiTConfig,
    capacity: int = DEFAULT_MEMORY_CAPACITY,
    reference_hands: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render frames 0..t−1 of each recorded window into camera t, for every t.

    Frame 0 is the reference: pinned in the memory as the runtime pins it, hands excepted.

    Args:
        rgb: (B, T, H, W, 3) uint8.
        depth: (B, T, H, W) metres.
        K: (B, T, 3, 3).
        pose: (B, T, 4, 4).
        config: model config.
        capacity: voxels of the memory.
        reference_hands: (B, 2, 21, 3) camera-frame hand keypoints of frame 0, or None.

    Returns:
        (rgb (B, T, H, W, 3), depth (B, T, H, W), mask (B, T, H, W)); frame 0 is empty (the
        reference frame is never generated). The colour has the pinned flag as a 4th channel for
        configs with ``anchor_gate_reference``.
    """
    b, t = rgb.shape[:2]
    memory = Reprojection(b, config, rgb.device, capacity)
    channels = 4 if config.anchor_gate_reference else 3
    out_rgb = torch.zeros(b, t, config.height, config.width, channels, device=rgb.device)
    out_depth = torch.full((b, t, config.height, config.width), float("inf"), device=rgb.device)
    out_mask = torch.zeros(b, t, config.height, config.width, dtype=torch.bool, device=rgb.device)
    for j in range(1, t):
        memory.insert(rgb[:, j - 1], depth[:, j - 1], K[:, j - 1], pose[:, j - 1], reference_hands, j == 1)
        r_rgb, r_depth, r_mask = memory.render(K[:, j], pose[:, j])
        out_rgb[:, j], out_depth[:, j], out_mask[:, j] = r_rgb, r_depth, r_mask
    return out_rgb, out_depth, out_mask


def hand_maps(
    keypoints: torch.Tensor, has_hands: torch.Tensor, K: torch.Tensor, config: DiTConfig
) -> torch.Tensor:
    """Hand skeleton maps (B, T, H, W) of camera-frame keypoints (B, T, 2, 21, 3), as in the runtime."""
    b, t = keypoints.shape[:2]
    size = (config.image_height, config.image_width)
    k_model = scale_intrinsics(K.flatten(0, 1), size, (config.height, config.width))
    tables = skeleton_tables(config.height, config.width, keypoints.device)
    active = has_hands[:, None].expand(b, t).flatten()
    maps = hand_skeleton_map(keypoints.flatten(0, 1), active, k_model, config.height, config.width, tables)
    return maps.unflatten(0, (b, t))


def clip_condition(
    r_rgb: torch.Tensor, r_depth: torch.Tensor, r_mask: torch.Tensor, hands: torch.Tensor, config: DiTConfig
) -> torch.Tensor:
    """Condition channels (B, condition_channels, T, H, W) of per-frame renders and hand maps (B, T, ...)."""
    b, t = r_rgb.shape[:2]
    cond = build_condition(
        r_rgb.flatten(0, 1), r_depth.flatten(0, 1), r_mask.flatten(0, 1), hands.flatten(0, 1), config
    )[:, :, 0]  # (B·T, cc, H, W)
    return cond.unflatten(0, (b, t)).transpose(1, 2)


def encode_clip(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Frames (B, T, H, W, 3) uint8 + depth (B, T, H, W) → model clip (B, C, T, H, W)."""
    b, t = rgb.shape[:2]
    return encode_frame(rgb.flatten(0, 1), depth.flatten(0, 1)).unflatten(0, (b, t)).transpose(1, 2)


def clip_plucker(K: torch.Tensor, pose: torch.Tensor, config: DiTConfig) -> torch.Tensor:
    """Plücker rays (B, T, h, w, 6) of every clip frame's camera at the token grid."""
    b, t = K.shape[:2]
    rays = plucker_rays(
        K.flatten(0, 1).float(),
        pose.flatten(0, 1).float(),
        config.grid,
        (config.image_height, config.image_width),
    )
    return rays.unflatten(0, (b, t))
