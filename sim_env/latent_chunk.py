"""The latent path of the generative runtime: multi-frame chunks in Wan-VAE latent space.

Latent configs (``DiTConfig.vae`` set, e.g. ``wan2.1-1.3b``) generate ``chunk_frames`` latent
frames per step, each standing for ``t_upscale`` video frames (Wan-VAE: 4× temporal, 8× spatial;
3 latents = 12 video frames at 832×480 for ``wan2.1-1.3b``). This module holds what the pixel
path does not need; `sim_env.runtime.GenerativeRuntime` calls it:

- `chunk_poses`: one navigation action per env-step, applied at every video frame of the chunk
  (the per-frame motion equals the engines' per-step motion, so a chunk moves 12× as far);
- `LatentCodec`: a TAEHV (``sim_env.model.taehv``) whose ENCODER turns the memory reprojected
  into each video frame's camera into Wan-VAE-compatible condition latents, and whose streaming
  DECODER turns generated latents into video frames. TAEHV's encoder is a fast stand-in for the
  Wan-VAE encoder (same latent space, ~1/100 of the cost, lower fidelity); the real Wan-VAE
  encoder is not used anywhere. The decoder state is a fixed set of preallocated buffers updated
  in place, so a step keeps static shapes and stable storage (CUDA-graph capturable);
- `latent_condition`: [condition latents | validity mask | hand skeleton] on the latent grid;
- `fill_depth_holes`: DEPTH. There is no depth decoder for Wan latents, so the latent path
  never generates depth: a frame's depth is the point-cloud memory's depth reprojected into its
  camera, with holes filled from the nearest valid depth (pull-push, below). Collisions and the
  memory therefore only know the geometry of the reference frames (and of what teleports see
  through the memory); generated colours are painted onto that geometry.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from bridge.actions import NavLimits
from sim_env.checkpoints import load_checkpoint
from sim_env.kinematics import integrate_nav
from sim_env.memory.point_cloud import PointCloudMemory
from sim_env.memory.splat import splat
from sim_env.model.config import DiTConfig
from sim_env.model.taehv import TAEHV, get_taehv_config, load_taehv_state_dict

PIXEL_MAX = 255.0


def chunk_poses(pose: torch.Tensor, nav: torch.Tensor, limits: NavLimits, frames: int) -> torch.Tensor:
    """Poses (N, frames, 4, 4) of a chunk's video frames: ``nav`` integrated once per frame from ``pose``."""
    out = []
    for _ in range(frames):
        pose = integrate_nav(pose, nav, limits)
        out.append(pose)
    return torch.stack(out, dim=1)


def fill_depth_holes(depth: torch.Tensor) -> torch.Tensor:
    """Fill non-finite pixels of (B, H, W) depth from the nearest valid depth (pull-push).

    Pull: a pyramid where each level keeps the MINIMUM valid depth of 2×2 blocks below (+inf
    where a block has none). Push: coarse to fine, a hole takes the value of its parent. So a
    hole gets the nearest surface of the smallest enclosing power-of-two block that saw one:
    approximately the nearest valid pixel, biased towards nearer surfaces (conservative for
    collisions). Static shapes, a fixed number of levels, no host synchronisation; a frame with
    no valid pixel at all stays +inf (nothing known ahead: no collision).
    """
    levels, factors = [depth[:, None]], []
    while max(levels[-1].shape[-2:]) > 1:
        factor = tuple(2 if size > 1 else 1 for size in levels[-1].shape[-2:])
        factors.append(factor)
        levels.append(-F.max_pool2d(-levels[-1], factor, ceil_mode=True))
    filled = levels[-1]
    for level, (fy, fx) in zip(reversed(levels[:-1]), reversed(factors), strict=True):
        h, w = level.shape[-2:]
        parent = filled.repeat_interleave(fy, dim=-2).repeat_interleave(fx, dim=-1)[..., :h, :w]
        filled = torch.where(torch.isfinite(level), level, parent)
    return filled[:, 0]


def latent_mask(mask: torch.Tensor, frames_per_latent: int, space: int) -> torch.Tensor:
    """(N, F, H, W) bool validity → (N, F / frames_per_latent, H / space, W / space) covered fraction."""
    pooled = F.avg_pool3d(mask[:, None].float(), (frames_per_latent, space, space))
    return pooled[:, 0]


def latent_condition(
    cond_latents: torch.Tensor, mask: torch.Tensor, hand_map: torch.Tensor, config: DiTConfig
) -> torch.Tensor:
    """Condition channels (N, condition_channels, T, h, w) of a latent chunk.

    Args:
        cond_latents: (N, T, C, h, w) TAEHV-encoded memory reprojection of the chunk.
        mask: (N, T, h, w) covered fraction of each latent cell (`latent_mask`); latent cells
            that no memory point reached get a zero condition (as the pixel path's zero pixels).
        hand_map: (N, h, w) hand skeleton rasterised on the latent grid (hands are constant
            within a chunk: a hand action applies at the chunk's start).
        config: the model config.
    """
    covered = (mask > 0)[:, :, None]
    cond = torch.where(covered, cond_latents.to(mask.dtype), 0.0)
    hands = hand_map.to(mask.dtype)[:, None, None].expand(-1, mask.shape[1], -1, -1, -1)
    out = torch.cat([cond, mask[:, :, None], hands], dim=2)  # (N, T, cc, h, w)
    if out.shape[2] != config.condition_channels:
        raise ValueError(
            f"latent condition has {out.shape[2]} channels, config needs {config.condition_channels}"
        )
    return out.transpose(1, 2)


def plucker_frames(rays_cam: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
    """Plücker rays (N, T, h, w, 6) of camera rays (N, h, w, 3) at per-frame poses (N, T, 4, 4)."""
    poses = poses.to(torch.float32)
    d = torch.einsum("ntij,nhwj->nthwi", poses[..., :3, :3], rays_cam)
    o = poses[:, :, None, None, :3, 3].expand_as(d)
    return torch.cat([torch.linalg.cross(o, d, dim=-1), d], dim=-1)


class LatentCodec:
    """TAEHV encoder (condition video → latents) and streaming decoder (latents → video).

    Args:
        config: the DiT config (``vae`` names the TAEHV layout).
        num_streams: N, streams with their own decoder state.
        device: where the TAEHV and its state live.
        dtype: TAEHV weights and state dtype.
        checkpoint: TAEHV weights (``taew2_1.pth`` / safetensors by the public key names); None =
            random weights, seeded by ``seed`` without touching the global RNG.
        seed: seed of the random weights.
        compile_codec: ``torch.compile`` the TAEHV's streaming decode and its encode: the
            ReLUs, residual adds, concatenations and pixel shuffles fuse, and the convolutions
            keep one memory layout instead of cuDNN converting every input and output.
    """

    def __init__(
        self,
        config: DiTConfig,
        num_streams: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        checkpoint: str | None = None,
        seed: int = 0,
        compile_codec: bool = False,
    ) -> None:
        if config.vae is None:
            raise ValueError(f"config {config.name!r} has no vae: it is a pixel-space config")
        vae_cfg = get_taehv_config(config.vae)
        if vae_cfg.t_upscale != vae_cfg.t_downscale or vae_cfg.latent_channels != config.out_channels:
            raise ValueError(f"TAEHV layout {config.vae!r} does not match config {config.name!r}")
        s = vae_cfg.space_upscale
        if (config.height * s, config.width * s) != (config.image_height, config.image_width):
            raise ValueError(
                f"config {config.name!r}: latents {config.height}x{config.width} × {s} != image "
                f"{config.image_height}x{config.image_width}"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            vae = TAEHV(vae_cfg)
        if checkpoint is not None:
            state, _ = load_checkpoint(checkpoint)
            missing, unexpected = load_taehv_state_dict(vae, state)
            if missing or unexpected:
                raise ValueError(f"TAEHV checkpoint {checkpoint}: missing {missing}, unexpected {unexpected}")
        self.vae = vae.to(device, dtype).eval()
        self._decode_step = self.vae.decode_step
        self._encode_video = self.vae.encode_video
        if compile_codec:
            self._decode_step = torch.compile(self._decode_step, dynamic=False)
            self._encode_video = torch.compile(self._encode_video, dynamic=False)
        self.dtype = dtype
        self.frames_per_latent = vae_cfg.t_upscale
        self.space = s
        self.video_frames = config.chunk_frames * vae_cfg.t_upscale
        self.state = self.vae.init_decoder_state(num_streams, config.height, config.width, device, dtype)

    def reset(self, latents: torch.Tensor, worlds: torch.Tensor | None = None) -> None:
        """Restart the decoder streams of ``worlds`` (N,) bool (None = all) and prime them on ``latents``.

        The reference chunk's latents go through the decoder once (output discarded), so the
        first generated chunk continues from the reference like a stream that decoded it.
        """
        zero = tuple(torch.zeros_like(s) for s in self.state)
        _, primed = self._decode_step(latents.to(self.dtype), zero)
        for live, new in zip(self.state, primed, strict=True):
            live.copy_(new if worlds is None else torch.where(worlds[:, None, None, None], new, live))

    def encode(self, rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, F, H, W, 3) 0..255 colours, (N, F, H, W) validity → (N, F / 4, C, H / 8, W / 8) latents.

        Uncovered pixels are black. Each chunk is encoded on its own (encoder memory starts at
        zero), since the reprojected condition video restarts at every chunk.
        """
        video = torch.where(mask[..., None], rgb.to(self.dtype) / PIXEL_MAX, 0.0)
        return self._encode_video(video.permute(0, 1, 4, 2, 3)).float()

    def decode(self, latents: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T, C, h, w) latents → (N, 4·T, H, W, 3) uint8 frames; advances the decoder state.

        Args:
            latents: the chunk's generated latents.
            keep: (N,) bool, streams whose decoder state advances (None = all); the others keep it
                (a teleport of other streams must not move theirs).
        """
        frames, new_state = self._decode_step(latents.to(self.dtype), self.state)
        for live, new in zip(self.state, new_state, strict=True):
            live.copy_(new if keep is None else torch.where(keep[:, None, None, None], new, live))
        rgb = (frames.float() * PIXEL_MAX).round().to(torch.uint8)  # decode_step clamps to [0, 1]
        return rgb.permute(0, 1, 3, 4, 2).contiguous()

    def state_bytes(self) -> int:
        """Bytes of the decoder streaming state (constant for the codec's lifetime)."""
        return sum(s.numel() * s.element_size() for s in self.state)


def video_frames_per_step(config: DiTConfig) -> int:
    """Video frames one env-step produces: ``chunk_frames`` × the VAE's temporal factor (1 in pixel space)."""
    if config.vae is None:
        return config.chunk_frames
    return config.chunk_frames * get_taehv_config(config.vae).t_upscale


def pixels_per_latent(config: DiTConfig) -> int:
    """Image pixels per latent cell along H and W (1 in pixel space)."""
    return 1 if config.vae is None else get_taehv_config(config.vae).space_upscale


class LatentInputs(NamedTuple):
    """What one latent chunk's generation needs, built from the memory before denoising."""

    cond: torch.Tensor  # (N, condition_channels, T, h, w)
    plucker: torch.Tensor  # (N, T, h, w, 6) rays of each latent frame's camera
    latent_poses: torch.Tensor  # (N, T, 4, 4) pose of each latent frame (its last video frame)
    depth: torch.Tensor  # (N, F, H, W) reprojected memory depth, holes filled
    raw_last_depth: torch.Tensor  # (N, H, W) the last frame's reprojected depth, holes +inf


class LatentChunkPath:
    """The runtime's latent-config step pieces: chunk poses, conditions, reference latents, codec.

    Args:
        config: a latent DiT config (``vae`` set).
        num_streams: N.
        device: device of the runtime.
        dtype: TAEHV dtype.
        checkpoint: TAEHV weights (None: random, seeded).
        seed: seed of the random TAEHV weights.
        compile_codec: compile the TAEHV (`LatentCodec`).
    """

    def __init__(
        self,
        config: DiTConfig,
        num_streams: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        checkpoint: str | None = None,
        seed: int = 0,
        compile_codec: bool = False,
    ) -> None:
        self.config = config
        self.codec = LatentCodec(config, num_streams, device, dtype, checkpoint, seed, compile_codec)
        self.frames_per_latent = self.codec.frames_per_latent
        self.video_frames = self.codec.video_frames

    def chunk_poses(self, pose: torch.Tensor, nav: torch.Tensor, limits: NavLimits) -> torch.Tensor:
        """(N, F, 4, 4) video-frame poses of one step of ``nav`` from ``pose`` (`chunk_poses`)."""
        return chunk_poses(pose, nav, limits, self.video_frames)

    def reference_latents(self, rgb: torch.Tensor, streams: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T, C, h, w) latents of the reference (N, H, W, 3) held still for a chunk.

        Also restarts and primes the TAEHV decoder of ``streams`` (N,) bool (None = all).
        """
        video = rgb[:, None].expand(-1, self.video_frames, -1, -1, -1)
        ones = torch.ones(video.shape[:-1], dtype=torch.bool, device=rgb.device)
        latents = self.codec.encode(video, ones)
        self.codec.reset(latents, streams)
        return latents

    def condition(
        self,
        memory: PointCloudMemory,
        agents_per_world: int,
        K: torch.Tensor,
        poses: torch.Tensor,
        hand_map: torch.Tensor,
        rays_cam: torch.Tensor,
    ) -> LatentInputs:
        """Splat every stream's world memory into each video frame's camera and build the inputs.

        Args:
            memory: the worlds' point clouds (B worlds; stream i reads world i // agents_per_world).
            agents_per_world: A.
            K: (N, 3, 3) intrinsics of the H×W frames.
            poses: (N, F, 4, 4) video-frame poses of the chunk.
            hand_map: (N, h, w) hand skeletons on the latent grid.
            rays_cam: (N, h, w, 3) camera-frame rays of the token grid (`conditioning.camera_rays`).
        """
        cfg = self.config
        n, f = poses.shape[:2]
        height, width = cfg.image_height, cfg.image_width
        copies = agents_per_world * f
        rgb, depth, mask = splat(
            memory.xyz.repeat_interleave(copies, 0),
            memory.rgb.repeat_interleave(copies, 0),
            memory.valid.repeat_interleave(copies, 0),
            K.float().repeat_interleave(f, 0),
            poses.flatten(0, 1).float(),
            height,
            width,
        )
        rgb = rgb.unflatten(0, (n, f))
        mask = mask.unflatten(0, (n, f))
        raw = depth.unflatten(0, (n, f))
        cond = latent_condition(
            self.codec.encode(rgb, mask),
            latent_mask(mask, self.frames_per_latent, self.codec.space),
            hand_map,
            cfg,
        )
        latent_poses = poses[:, self.frames_per_latent - 1 :: self.frames_per_latent]
        return LatentInputs(
            cond=cond,
            plucker=plucker_frames(rays_cam, latent_poses),
            latent_poses=latent_poses,
            depth=fill_depth_holes(depth).unflatten(0, (n, f)),
            raw_last_depth=raw[:, -1],
        )
