"""Conditioning of the causal DiT for the chunk being generated, and the frame codec.

The DiT's input (``sim_env/model/config.py``) is ``[noisy (C) | condition (C) | mask (1) | hand (H)]``.
For the pixel-space RGB-D configs (``tiny64``: C = 4, H = 1) this module builds the last three
parts from what the world knows before generating a frame:

- condition: the point-cloud memory splatted into the target camera, RGB mapped to [-1, 1] and
  depth through the config's log-depth encoding — the same codec as the generated frames, so
  the model can copy covisible content through (InSpatio-World §3.2.2, Spatia §3);
  pixels the memory does not cover are ZERO (not "black"/"far"): the validity mask says which
  pixels carry information, and zero is also the value history frames see everywhere;
- mask: 1 where some memory point landed, else 0;
- hand: the 2×21 MANO skeletons rasterised as anti-aliased bones in the target camera
  (WorldScape §2.1), zero when a stream has no hands.

History frames (the clean cache pass, the reference anchor) get ``cond=None``, which the model
zero-pads. All functions take (N, ...) tensors with static shapes and never sync the host.

`PoolAdmission` adapts `sim_env.memory.pool_policy.MemoryPoolPolicy` to the ST-cache's
`AdmitPolicy` signature, so the cache's memory pool is filled by view-guided MDL admission
with FPS pruning.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from bridge.hands import HAND_BONES
from sim_env.memory.pool_policy import MemoryPoolPolicy
from sim_env.memory.reference_surfels import reference_surfels
from sim_env.model.anchor_gate import PASSTHROUGH_GAP_SWEEPS
from sim_env.model.config import DiTConfig, decode_depth, encode_depth
from sim_env.model.plucker import plucker_rays
from sim_env.model.st_cache import DROP, STCache

RGB_CHANNELS = 3
RGBD_CHANNELS = 4  # pixel-space configs generate RGB + encoded depth
# The reference surfels' passthrough also copies their depth (the surfel's own, constant over
# its footprint), so a copied surface is where the reference put it.
SURFELS_COPY_DEPTH = True
PIXEL_MAX = 255.0
# Half-width of a rasterised bone in model pixels; the map falls linearly to 0 at this distance.
BONE_RADIUS_PX = 1.0
# Keypoints closer to the camera plane than this (metres) are not drawn (behind / at the eye).
MIN_KEYPOINT_DEPTH_M = 1e-3
_BONES = torch.tensor(HAND_BONES, dtype=torch.int64)  # (20, 2) parent, child


def require_pixel_space(config: DiTConfig) -> None:
    """Raise unless ``config`` generates RGB-D pixels with the one-channel hand map built here."""
    if not config.conditioned or config.out_channels != RGBD_CHANNELS or config.hand_channels != 1:
        raise NotImplementedError(
            f"config {config.name!r} is not a conditioned pixel-space RGB-D config (latent configs "
            "build their condition in sim_env.latent_chunk)"
        )


def encode_frame(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """RGB (N, H, W, 3) in 0..255 and planar depth (N, H, W) metres → model frame (N, 4, H, W)."""
    colour = rgb.to(torch.float32).permute(0, 3, 1, 2) / (PIXEL_MAX / 2) - 1.0
    return torch.cat([colour, encode_depth(depth.to(torch.float32))[:, None]], dim=1)


def decode_frame(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model frame (N, 4, H, W) → (rgb uint8 (N, H, W, 3), depth float32 metres (N, H, W))."""
    colour = ((x[:, :RGB_CHANNELS].clamp(-1.0, 1.0) + 1.0) * (PIXEL_MAX / 2)).round()
    return colour.to(torch.uint8).permute(0, 2, 3, 1).contiguous(), decode_depth(x[:, RGB_CHANNELS]).float()


def scale_intrinsics(K: torch.Tensor, image_size: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Intrinsics (N, 3, 3) of an ``image_size`` image resampled to ``size`` (pixel centres at integers)."""
    sy, sx = size[0] / image_size[0], size[1] / image_size[1]
    # diag(sx, sy, 1) @ K plus the pixel-centre shift, written with Python scalars so that no
    # small constant tensor is copied host→device on every call.
    row_u, row_v = K[..., 0, :] * sx, K[..., 1, :] * sy
    row_u = row_u + torch.nn.functional.pad(torch.full_like(row_u[..., :1], 0.5 * sx - 0.5), (2, 0))
    row_v = row_v + torch.nn.functional.pad(torch.full_like(row_v[..., :1], 0.5 * sy - 0.5), (2, 0))
    return torch.stack([row_u, row_v, K[..., 2, :]], dim=-2)


class SkeletonTables(NamedTuple):
    """Constant device tables of `hand_skeleton_map`, built once per runtime (not per step)."""

    bones: torch.Tensor  # (20, 2) int64 parent, child keypoint indices
    pixels: torch.Tensor  # (1, 1, height·width, 2) float32 pixel centres (u, v)


def skeleton_tables(height: int, width: int, device: torch.device | str | None = None) -> SkeletonTables:
    """The bone table and pixel grid of an (height, width) map, on ``device``.

    Building these inside the step would copy ``HAND_BONES`` host→device on every frame, which
    synchronises with pageable memory and cannot be captured in a CUDA graph.
    """
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    pixels = torch.stack([cols, rows], dim=-1).reshape(1, 1, height * width, 2)
    return SkeletonTables(_BONES.to(device), pixels)


def hand_skeleton_map(
    keypoints_cam: torch.Tensor,
    active: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    tables: SkeletonTables | None = None,
) -> torch.Tensor:
    """Rasterise both hands' bones into an (N, height, width) map in [0, 1].

    Each pixel gets max over bones of ``1 − dist/BONE_RADIUS_PX`` (clamped at 0), dist being the
    pixel-centre distance to the projected bone segment; a fixed-size (N, bones, pixels)
    distance table instead of a line-drawing loop keeps shapes static.

    Args:
        keypoints_cam: (N, 2, 21, 3) keypoints in the camera frame (OpenCV).
        active: (N,) bool, streams that have hands (others get an all-zero map).
        K: (N, 3, 3) intrinsics of the (height, width) image.
        height: map rows.
        width: map columns.
        tables: precomputed `skeleton_tables(height, width, device)`; None builds them (slow path).
    """
    if tables is None:
        tables = skeleton_tables(height, width, keypoints_cam.device)
    dtype = torch.float32
    kp, K = keypoints_cam.to(dtype), K.to(dtype)
    z = kp[..., 2]
    zs = z.clamp_min(MIN_KEYPOINT_DEPTH_M)
    u = K[:, None, None, 0, 0] * kp[..., 0] / zs + K[:, None, None, 0, 2]
    v = K[:, None, None, 1, 1] * kp[..., 1] / zs + K[:, None, None, 1, 2]
    uv = torch.stack([u, v], dim=-1)  # (N, 2, 21, 2)
    bones = tables.bones
    a, b = uv[:, :, bones[:, 0]], uv[:, :, bones[:, 1]]  # (N, 2, 20, 2)
    drawn = (z[:, :, bones[:, 0]] > MIN_KEYPOINT_DEPTH_M) & (z[:, :, bones[:, 1]] > MIN_KEYPOINT_DEPTH_M)
    a, b, drawn = a.flatten(1, 2), b.flatten(1, 2), drawn.flatten(1, 2) & active[:, None]  # 40 bones
    pix = tables.pixels
    ab = (b - a)[:, :, None]
    ap = pix - a[:, :, None]
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
    dist = torch.linalg.vector_norm(ap - t[..., None] * ab, dim=-1)  # (N, 40, pixels)
    value = (1.0 - dist / BONE_RADIUS_PX).clamp_min(0.0) * drawn[..., None]
    return value.amax(dim=1).reshape(-1, height, width)


def pinned_pixels(render: torch.Tensor, render_mask: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: the pixels that show a pinned reference voxel.

    ``render`` is a splat with the pinned flag in channel 3 (`PointCloudMemory.render(with_pins=True)`).
    """
    return (render[..., 3] > 0.5) & render_mask


def pinned_depth(render: torch.Tensor, render_depth: torch.Tensor, render_mask: torch.Tensor) -> torch.Tensor:
    """(N, H, W) depth of the `pinned_pixels`, +inf elsewhere (the reference's own geometry)."""
    return torch.where(pinned_pixels(render, render_mask), render_depth, float("inf"))


def surfel_passthrough(
    render: torch.Tensor,
    render_depth: torch.Tensor,
    render_mask: torch.Tensor,
    fx: torch.Tensor,
    voxel_size: float,
    pinned_margin: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the passthrough copies from the reference surfels (`sim_env.memory.reference_surfels`).

    Args:
        render: (N, H, W, 4) the memory's splat with the pin channel (`PointCloudMemory.render`).
        render_depth: (N, H, W) its depth.
        render_mask: (N, H, W) where it is valid.
        fx: (N,) focal lengths in pixels.
        voxel_size: the memory's voxel edge in metres.
        pinned_margin: the memory's priority of pinned voxels.

    Returns:
        shown (N, 1, 1, H, W) bool and values (N, C, 1, H, W) in the model's encoding: C is the
        colour channels, and depth too with `SURFELS_COPY_DEPTH`.
    """
    values = torch.cat([render[..., :RGB_CHANNELS], render_depth[..., None]], dim=-1)
    shown, picked = reference_surfels(
        values,
        render_depth,
        render_mask,
        pinned_pixels(render, render_mask),
        fx.float(),
        voxel_size,
        pinned_margin,
        gap_radius=PASSTHROUGH_GAP_SWEEPS,
    )
    depth = torch.where(shown, picked[..., RGB_CHANNELS], 1.0)  # finite where not copied
    channels = RGB_CHANNELS + 1 if SURFELS_COPY_DEPTH else RGB_CHANNELS
    return shown[:, None, None], encode_frame(picked[..., :RGB_CHANNELS], depth)[:, :channels, None]


def build_condition(
    render_rgb: torch.Tensor,
    render_depth: torch.Tensor,
    render_mask: torch.Tensor,
    hand_map: torch.Tensor,
    config: DiTConfig,
) -> torch.Tensor:
    """Condition channels (N, condition_channels, chunk_frames, H, W) of the frame being generated.

    Args:
        render_rgb: (N, H, W, 3+) memory splat colours in 0..255; configs with
            ``anchor_gate_reference`` read the splatted pinned flag in channel 3
            (`PointCloudMemory.render(with_pins=True)`), others ignore channels past 3.
        render_depth: (N, H, W) memory splat depth in metres (+inf where empty).
        render_mask: (N, H, W) bool validity of the splat.
        hand_map: (N, H, W) rasterised hand skeleton in [0, 1].
        config: the model config (layout and frame size).
    """
    require_pixel_space(config)
    if config.anchor_gate_reference and render_rgb.shape[-1] < 4:
        raise ValueError(
            f"render_rgb: config {config.name} reads the pinned flag as a 4th splatted channel "
            f"(PointCloudMemory.render(with_pins=True)), got {render_rgb.shape[-1]} channels"
        )
    mask = render_mask.to(torch.float32)[:, None]
    frame = torch.where(render_mask[:, None], encode_frame(render_rgb[..., :3], render_depth), 0.0)
    parts = [frame, mask, hand_map.to(torch.float32)[:, None]]
    if config.anchor_gate_reference:
        parts.append(pinned_pixels(render_rgb, render_mask).to(torch.float32)[:, None])
    cond = torch.cat(parts, dim=1)  # (N, cc, H, W)
    assert cond.shape[1] == config.condition_channels
    return cond[:, :, None].expand(-1, -1, config.chunk_frames, -1, -1)


def plucker_input(K: torch.Tensor, pose: torch.Tensor, config: DiTConfig) -> torch.Tensor:
    """Plücker rays (N, chunk_frames, h, w, 6) of the target cameras for ``CausalDiT(plucker=...)``."""
    rays = plucker_rays(
        K.to(torch.float32), pose.to(torch.float32), config.grid, (config.image_height, config.image_width)
    )
    return rays[:, None].expand(-1, config.chunk_frames, -1, -1, -1)


def camera_rays(K: torch.Tensor, config: DiTConfig) -> torch.Tensor:
    """Unit ray directions (N, h, w, 3) of the token cells in the camera frame, for `rays_to_plucker`.

    They depend on K alone, which changes only at reset: computing them there keeps
    ``torch.linalg.inv`` (whose singularity check synchronises the host on CUDA) out of the step.
    """
    eye = torch.eye(4, dtype=torch.float32, device=K.device).expand(*K.shape[:-2], 4, 4)
    rays = plucker_rays(K.to(torch.float32), eye, config.grid, (config.image_height, config.image_width))
    return rays[..., 3:]  # at the origin the moment o × d vanishes: only directions remain


def rays_to_plucker(rays_cam: torch.Tensor, pose: torch.Tensor, config: DiTConfig) -> torch.Tensor:
    """`plucker_input` from precomputed `camera_rays`: rotate into the world, add the moments.

    Rotation preserves unit length, so this equals `plucker_input` up to float rounding.
    """
    pose = pose.to(torch.float32)
    d = torch.einsum("nij,nhwj->nhwi", pose[:, :3, :3], rays_cam)
    o = pose[:, None, None, :3, 3].expand_as(d)
    rays = torch.cat([torch.linalg.cross(o, d, dim=-1), d], dim=-1)
    return rays[:, None].expand(-1, config.chunk_frames, -1, -1, -1)


class PoolAdmission:
    """ST-cache `AdmitPolicy` backed by `MemoryPoolPolicy.admit` (poses only, no K/V reads).

    Args:
        policy: the memory-pool policy; its budget must equal the cache's ``memory_frames``.
        compile_policy: ``torch.compile`` the admission: its view scores and farthest-point loop
            are some fifty tiny kernels per leaving frame, a few fused ones compiled.
    """

    def __init__(self, policy: MemoryPoolPolicy, compile_policy: bool = False) -> None:
        self.policy = policy
        self._admit = torch.compile(policy.admit, dynamic=False) if compile_policy else policy.admit

    def __call__(
        self, slot_k: torch.Tensor, slot_v: torch.Tensor, pose: torch.Tensor, cache: STCache
    ) -> torch.Tensor:
        """(B,) memory-slot index for the frame leaving the window, ``DROP`` where not admitted."""
        region = slice(cache.memory.start, cache.memory.stop)
        slot, admitted = self._admit(cache.poses[:, region], cache.valid[:, region], pose)
        return torch.where(admitted, slot, torch.full_like(slot, DROP))


def pool_admission(config: DiTConfig, use_pool: bool, compile_policy: bool = False) -> PoolAdmission | None:
    """The cache's admission policy: `MemoryPoolPolicy` over ``memory_frames`` slots, or None.

    None (frames leaving the window are dropped) without memory slots or when ``use_pool`` is
    off — the window-only ablation.
    """
    if not (use_pool and config.memory_frames):
        return None
    return PoolAdmission(MemoryPoolPolicy(config.memory_frames), compile_policy=compile_policy)
