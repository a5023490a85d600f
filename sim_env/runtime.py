"""The batched generative runtime: the world model stepped as tensors on one device.

`sim_env.generative_world.GenerativeWorld` adds the `bridge.World` protocol on top. Two layers:

- a tensor API for vector envs, `reset_batch` / `step_batch` / `teleport_batch`, over N streams
  (stream ``i = b * agents_per_world + a``: agent a of world b). Everything stays on the device:
  no `.item()`, `.cpu()` or data-dependent shapes in `step_batch`, state lives in preallocated
  buffers updated in place, so the step can later be captured in a CUDA graph;
- the `World` protocol (handshake / reset / step / set_pose / close) that converts to numpy.
  Agent ids are ``agent_{a}`` when there is one world (B = 1, as `MujocoWorld` names its
  cameras) and ``world_{b}/agent_{a}`` otherwise.

One step (ARCHITECTURE.md §6): block the forward component where the PREVIOUS generated depth
(and, with ``reference_collisions``, the pinned reference splatted into that view) is below
``collision_depth_m`` in the centre third; integrate poses and hands (`sim_env.kinematics`);
splat the world's point-cloud memory into every stream's new camera (the memory rules:
`sim_env.memory_rules`); build the conditioning (`sim_env.conditioning`); denoise with
`FlowSampler` (t = 1000·σ, each stream's own ST-cache and hashed counter-based noise, so a
stream's frames do not depend on the batch); run the clean cache pass; decode RGB-D; insert it
into the memory and advance the cache with `MemoryPoolPolicy` admission. The advance (the
cache roll) is deferred to the next step, beside its conditioning (`sim_env.cache_roll`).

Ablations for the evaluation: ``memory_mode="window"`` (no memory pool, a point cloud of the
latest frame only), ``condition_hands=False``, ``pin_reference=False`` (reference voxels age and
merge like generated ones). ``reset_batch(world_mask=...)`` is the vector env's autoreset.

Two paths share this step. Pixel-space RGB-D configs (``tiny64``) generate and decode one frame
per step, depth included. Latent configs (``DiTConfig.vae``: ``wan2.1-1.3b``) generate one chunk
of ``video_frames`` video frames per step, and `step_batch` returns the whole chunk, (N, F, ...);
``self.rgb`` / ``self.depth`` / ``self.pose`` are its last frame (`sim_env.latent_chunk`).

``phase_timer`` (name → context manager, default a no-op) brackets the step's phases for the
benchmark: ``conditioning``, ``denoise``, ``cache_pass``, ``decode``, ``memory``, ``cache_roll``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import torch

from bridge.actions import NavLimits
from bridge.conventions import intrinsics_from_fov
from bridge.hands import DEFAULT_HAND_LIMITS, HandLimits
from bridge.types import FailedPreconditionError, InvalidArgumentError
from sim_env.anchor_view import AnchorRules, render_anchor
from sim_env.cache_roll import CacheSnapshot, DeferredCacheRoll
from sim_env.checkpoints import load_world_model
from sim_env.conditioning import (
    build_condition,
    camera_rays,
    decode_frame,
    encode_frame,
    hand_skeleton_map,
    plucker_input,
    pool_admission,
    rays_to_plucker,
    scale_intrinsics,
    skeleton_tables,
    surfel_passthrough,
)
from sim_env.kinematics import HandKinematics, apply_hand_actions, block_forward, integrate_nav
from sim_env.latent_chunk import LatentChunkPath
from sim_env.memory.point_cloud import checked_pinned_margin
from sim_env.memory.reference_pin import hand_free_mask
from sim_env.memory.writer import MemoryWriter
from sim_env.model.config import DiTConfig, get_config
from sim_env.model.st_cache import STCache, attention_mirror, drop_policy
from sim_env.reference_sweep import ReferenceViews
from sim_env.reset_request import checked_reset
from sim_env.runtime_speed import DEFAULT_SPEED, SpeedOptions, speed_up_model
from sim_env.sampler import NUM_TRAIN_TIMESTEPS, FlowSampler, FlowSchedule
from sim_env.stream_noise import StreamNoise, stream_keys
from sim_env.stream_rows import commit_rows

log = logging.getLogger(__name__)

WORLD_NAME = "genworld.generative"
DEFAULT_COLLISION_DEPTH_M = 0.3  # MujocoWorld's walking agents keep about this far from walls
DEFAULT_VOXEL_SIZE_M = 0.05  # ~ the footprint of a 64×64, 70° pixel at 3 m
DEFAULT_PINNED_MARGIN = 4.0  # chosen on the validation seeds (docs/model.md)
MEMORY_MODES = ("full", "window")
DEFAULT_SCHEDULE_SHIFT = 5.0  # Wan2.1 / Self-Forcing shift for few-step sampling


class GenerativeRuntime:
    """Batched generative world model: B worlds × A agents = N streams on one device.

    Args:
        checkpoint: safetensors / torch checkpoint path; None = random weights (logged warning).
        config: model config name (a config stored in the checkpoint takes precedence).
        device: torch device of the model and all state.
        num_worlds: B, worlds with independent point-cloud memories.
        agents_per_world: A, cameras sharing one world's memory.
        denoising_steps: flow-matching steps per frame (the clean cache pass comes on top).
        seed: seeds the random weights and, when `reset` gets none, the noise streams.
        collision_depth_m: forward motion is blocked when the previous frame's depth ahead is below.
        reference_collisions: also read the depth ahead from the pinned reference splatted into the
            view (ground truth), so a known wall drawn too far cannot be walked through (on
            tiny64 it raises PSNR, SSIM, loop closure and collision agreement, docs/model.md).
        pinned_margin: a generated voxel hides a pinned reference voxel only when nearer than
            1/(1 + pinned_margin) of its depth (`PointCloudMemory.render`); 0 = plain z-buffer.
            Pixel-space configs only (the latent path's large references are not pinned).
        footprint_occlusion: every voxel also hides what lies behind its projected square, so a
            near surface's sparse splat no longer shows the reference beyond it through its gaps
            (`sim_env.memory.footprint_occlusion`). Off by default: on tiny64 it raises PSNR and
            SSIM at steps 32 and 128 with one view and with a sweep, but the world then stops in
            front of walls the engine lets it pass, and loop closure falls (docs/model.md).
        reference_passthrough: copy the pinned reference wherever it lands and into the small gaps
            of its splat (gate fully open there; ``anchor_gate_reference`` configs only).
        reference_surfels: with ``reference_passthrough``, also copy the reference drawn as
            surfels of its voxels' projected size (`sim_env.memory.reference_surfels`), colour and
            depth, so a surface approached closer than the reference saw it is copied without
            gaps (on tiny64 it raises PSNR and SSIM at step 32 most, docs/model.md).
        carve_free_space: generated pixels whose points lie in the empty space in front of a
            reference's surfaces stay out of the memory (`sim_env.memory.free_space`), and the
            collision rule ignores them; not in ``memory_mode="window"``, which keeps no reference.
            Both on: with them tiny64 gains PSNR/SSIM@128 and loop closure (docs/model.md).
        background_free: a reference pixel that saw the background (+inf depth) makes its whole
            ray free space for carving (`MemoryWriter`). Opt-in: on tiny64 it gains loop closure
            but fails the adoption rule at step 128 on the CPU validation seeds (docs/model.md).
        sample_footprints: with ``footprint_occlusion``, a reference voxel also occludes the
            pixels between its view's samples (`sim_env.memory.sample_spacing`), so a wall a
            reference saw from afar or edge-on hides what lies behind it up close; opt-in.
        nav_limits: per-step scale of navigation (same as the engines).
        fov_deg: vertical field of view of the cameras when no reference K is given.
        hand_limits: per-step scale of hand actions.
        memory_capacity, reference_views, pin_reference: the memory's size, the reference views per
            stream a reset writes (the reference and up to V − 1 of its sweep,
            ``reset_batch(sweep=...)``) and whether they are pinned (never evicted or recoloured
            by generated frames, hands excepted); None = `MemoryWriter`'s defaults.
        voxel_size: voxel edge of the memory in metres.
        schedule_shift: Wan/SD3 shift of the sampling schedule.
        dt: simulated seconds per step (``sim_time = frame_id · dt``, as MujocoWorld).
        memory_mode: ``"full"`` (memory pool + global point cloud) or ``"window"``, the
            window-only ablation: no memory pool (frames leaving the window are forgotten) and
            a point cloud holding only the latest frame(s) — what a model without long-term
            memory sees.
        condition_hands: False zeroes the hand-skeleton condition channel (the hand ablation).
        dtype: dtype of the DiT weights, its ST-cache and the TAEHV (bfloat16 for wan2.1-1.3b on
            a GPU); the sampler state, poses and depth stay float32/float64.
        taehv_checkpoint: TAEHV weights for latent configs (None: random, seeded).
        speed: how the model runs, never what it computes (`sim_env.runtime_speed.SpeedOptions`:
            attention mirrors, fused q/k/v, FP8, torch.compile, decode overlap).
    """

    def __init__(
        self,
        checkpoint: str | None = None,
        config: str = "tiny64",
        device: str = "cpu",
        num_worlds: int = 1,
        agents_per_world: int = 1,
        denoising_steps: int = 4,
        seed: int = 0,
        collision_depth_m: float = DEFAULT_COLLISION_DEPTH_M,
        reference_collisions: bool = True,
        pinned_margin: float = DEFAULT_PINNED_MARGIN,
        footprint_occlusion: bool = False,
        reference_passthrough: bool = True,
        reference_surfels: bool = True,
        carve_free_space: bool = True,
        background_free: bool = False,
        sample_footprints: bool = False,
        nav_limits: NavLimits = NavLimits(),  # noqa: B008 - frozen dataclass, safe default
        fov_deg: float = 70.0,
        hand_limits: HandLimits = DEFAULT_HAND_LIMITS,
        memory_capacity: int | None = None,
        reference_views: int = 1,
        voxel_size: float = DEFAULT_VOXEL_SIZE_M,
        schedule_shift: float = DEFAULT_SCHEDULE_SHIFT,
        dt: float = 0.1,
        memory_mode: str = "full",
        condition_hands: bool = True,
        pin_reference: bool | None = None,
        dtype: torch.dtype = torch.float32,
        taehv_checkpoint: str | None = None,
        speed: SpeedOptions = DEFAULT_SPEED,
    ) -> None:
        if num_worlds < 1 or agents_per_world < 1:
            raise InvalidArgumentError("num_worlds and agents_per_world must be positive")
        if memory_mode not in MEMORY_MODES:
            raise InvalidArgumentError(f"memory_mode must be one of {MEMORY_MODES}, got {memory_mode!r}")
        self.memory_mode, self.condition_hands = memory_mode, bool(condition_hands)
        self.device = torch.device(device)
        self.checkpoint, self.seed = checkpoint, int(seed)
        model = load_world_model(checkpoint, get_config(config), self.seed)
        self.model, self.dtype = model.to(self.device, dtype).eval(), dtype
        self.fp8_linears, self.compile_blocks = bool(speed.fp8_linears), bool(speed.compile_blocks)
        self.fuse_qkv = speed_up_model(
            self.model, self.device, speed.fuse_qkv, self.fp8_linears, self.compile_blocks, speed.compile_mode
        )
        cfg: DiTConfig = self.model.config
        self.config = cfg
        self.num_worlds, self.agents_per_world = int(num_worlds), int(agents_per_world)
        self.num_streams = n = self.num_worlds * self.agents_per_world
        self.height, self.width = cfg.image_height, cfg.image_width  # the frames a step returns
        dev = self.device
        codec = {"checkpoint": taehv_checkpoint, "seed": self.seed, "compile_codec": self.compile_blocks}
        self.latent = None if cfg.vae is None else LatentChunkPath(cfg, n, dev, dtype, **codec)
        if self.latent is None and (cfg.chunk_frames != 1 or (cfg.height, cfg.width) != self.image_size):
            raise InvalidArgumentError(
                f"config {cfg.name!r}: pixel-space configs generate one full-size frame per step"
            )
        self.video_frames = 1 if self.latent is None else self.latent.video_frames
        overlap = dev.type == "cuda" if speed.overlap_decode is None else bool(speed.overlap_decode)
        if overlap and dev.type != "cuda":
            raise InvalidArgumentError("overlap_decode needs a CUDA device")
        self._side_stream = torch.cuda.Stream(dev) if overlap and self.latent is not None else None
        # Times nothing by default; the benchmark swaps in a timer (`sim_env.bench_world`).
        self.phase_timer: Callable[[str], contextlib.AbstractContextManager[object]] = contextlib.nullcontext
        self.collision_depth_m = float(collision_depth_m)
        self.nav_limits, self.hand_limits = nav_limits, hand_limits
        self.fov_deg, self.dt = float(fov_deg), float(dt)
        h, w, f = self.height, self.width, self.video_frames

        self.sampler = FlowSampler(
            self._velocity, FlowSchedule.uniform(denoising_steps, shift=schedule_shift), device=dev
        )
        padded, zero_key = attention_mirror(cfg, dev, dtype, speed.padded_attention, speed.zero_key_attention)
        self.cache = STCache(cfg, n, dev, dtype, padded, zero_key, compile_mirror=self.compile_blocks)
        use_pool = bool(cfg.memory_frames) and memory_mode == "full"
        self.admission = pool_admission(cfg, use_pool, compile_policy=self.compile_blocks)
        self._roll = DeferredCacheRoll(self.cache, self.admission or drop_policy, self._side_stream)
        self.carve_free_space = bool(carve_free_space) and memory_mode == "full"
        self.writer = MemoryWriter(
            self.num_worlds,
            self.agents_per_world,
            h,
            w,
            voxel_size,
            reference_views,
            memory_capacity,
            window_only=memory_mode == "window",
            pin_references=pin_reference,
            carve_free_space=self.carve_free_space,
            background_free=background_free,
            sample_footprints=sample_footprints and footprint_occlusion,
            device=dev,
        )
        self.memory = self.writer.memory
        self.reference_views, self.pin_reference = self.writer.reference_views, self.writer.pin_references
        self.background_free = self.writer.background_free
        self.sample_footprints = self.writer.sample_footprints
        self.footprint_occlusion = bool(footprint_occlusion)
        self.reference_collisions = bool(reference_collisions)
        self.pinned_margin = checked_pinned_margin(pinned_margin)
        self.reference_passthrough = bool(reference_passthrough) and cfg.anchor_gate_reference
        self._copyable: torch.Tensor | bool = True  # (N, 1, 1, h, w): where passthrough may copy
        self.reference_surfels = bool(reference_surfels) and self.reference_passthrough
        self._surfels: tuple[torch.Tensor, torch.Tensor] | None = None  # (shown, values) per step
        self.hands = HandKinematics(dev)
        # Per-stream counter-based noise (`sim_env.stream_noise`): key and draw counter per stream.
        self.noise = StreamNoise(n, (cfg.chunk_frames, cfg.out_channels, cfg.height, cfg.width), dev)
        self.noise_key, self.noise_counter = self.noise.key, self.noise.counter
        # Cross-attention context: the learned tokens, or for text-conditioned configs (Wan) a zero
        # text embedding (no T5 here: "no prompt"), preallocated so the step builds nothing. Its
        # context_len tokens are identical, and attention over identical tokens is attention over
        # one of them, so one token stands for all (CrossAttention then skips the attention).
        self._context = (
            None if cfg.learned_context else torch.zeros(n, 1, cfg.text_dim, device=dev, dtype=dtype)
        )
        self.context_tokens = cfg.context_len if self._context is None else self._context.shape[1]
        # Per-stream state: preallocated, updated in place (stable data_ptrs for CUDA graphs).
        self.pose = torch.eye(4, dtype=torch.float64, device=dev).repeat(n, 1, 1)
        K = intrinsics_from_fov(cfg.image_width, cfg.image_height, self.fov_deg)
        self.K = torch.as_tensor(K, device=dev).repeat(n, 1, 1)
        # The frames of the last step (F = video_frames); rgb / depth are views of the last one.
        self.frames_rgb = torch.zeros(n, f, h, w, 3, dtype=torch.uint8, device=dev)
        self.frames_depth = torch.full((n, f, h, w), float("inf"), device=dev)
        self.frames_pose = torch.eye(4, dtype=torch.float64, device=dev).repeat(n, f, 1, 1)
        self.rgb, self.depth = self.frames_rgb[:, -1], self.frames_depth[:, -1]
        self.collided = torch.zeros(n, dtype=torch.bool, device=dev)
        # Depth of the pinned reference splatted into the last frame's view (+inf where none).
        self.reference_depth = torch.full((n, h, w), float("inf"), device=dev)
        self.carved = torch.zeros(n, h, w, dtype=torch.bool, device=dev)  # last frame's carved pixels
        self.frame_id = torch.zeros(n, dtype=torch.int64, device=dev)
        self.wrist = self.hands.default_wrists.repeat(n, 1, 1, 1)
        self.grip = torch.zeros(n, 2, dtype=torch.float64, device=dev)
        self.hands_active = torch.zeros(n, dtype=torch.bool, device=dev)
        # Step-invariant device constants: hand raster tables and the model-resolution intrinsics
        # (K changes only at reset), so step_batch creates no tensor from host data.
        self._skeleton = skeleton_tables(cfg.height, cfg.width, dev)
        self.K_model = torch.zeros_like(self.K)
        self._rays_cam = torch.zeros(n, *cfg.grid, 3, device=dev)  # camera-frame rays of K (reset)
        self._plucker: torch.Tensor | None = None  # camera rays of the frame being generated
        self.is_reset = False  # a reset has started every stream (a step needs one)
        self._closed = False

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the frames a step returns."""
        return self.height, self.width

    # ------------------------------------------------------------------ tensor API
    @torch.no_grad()
    def reset_batch(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose: torch.Tensor,
        seed: int | None = None,
        stream_seeds: Sequence[int] | None = None,
        world_mask: torch.Tensor | None = None,
        reference_hands: torch.Tensor | None = None,
        sweep: ReferenceViews | None = None,
    ) -> dict[str, torch.Tensor]:
        """Start every stream (or the worlds in ``world_mask``) from a reference RGB-D frame and pose.

        The reference frames seed the point-cloud memory (all agents of a world insert into
        it; with ``pin_reference`` their voxels are pinned, hands excepted — see
        `sim_env.memory.reference_pin`) and, encoded as clean frames, the ST-cache anchor.
        With ``world_mask`` only those worlds (all their agents) start over — memory, cache,
        noise, pose, frame, hands — and every other stream keeps its state untouched: the
        vector env's autoreset.

        Args:
            rgb: (N, H, W, 3) uint8 reference colours.
            depth: (N, H, W) planar depth in metres (+inf = no hit).
            K: (N, 3, 3) intrinsics of the H×W images.
            pose: (N, 4, 4) camera-to-world poses.
            seed: episode seed; stream i draws its noise from ``episode_stream_seeds(seed, N)[i]``.
            stream_seeds: explicit per-stream noise seeds (overrides ``seed``).
            world_mask: (B,) bool, the worlds to reset (None: all). Inputs keep their full
                (N, ...) shapes; rows of streams outside the mask are ignored.
            reference_hands: (N, 2, 21, 3) camera-frame keypoints of the hands the references
                show (NaN where a stream shows none); those pixels are not pinned. None: no hands.
            sweep: up to ``reference_views`` − 1 more views per stream around the reference,
                written into the memory as references too (`sim_env.memory.writer`); the
                ST-cache anchor stays the reference frame.

        Returns:
            The observation tensors, as `step_batch`.
        """
        n, dev = self.num_streams, self.device
        _, streams, seed_tensor = checked_reset(self, rgb, depth, seed, stream_seeds, world_mask)
        if sweep is not None:
            sweep = sweep.checked(n, self.height, self.width, self.reference_views - 1).to(dev)
        self.flush_cache_roll()  # the streams that are not reset keep their rolled history

        def take(buffer: torch.Tensor, new: torch.Tensor) -> None:
            commit_rows(buffer, new, streams)  # only the streams being reset

        take(self.noise_key, stream_keys(seed_tensor))
        take(self.noise_counter, torch.zeros_like(self.noise_counter))
        take(self.pose, pose)
        take(self.K, K)
        cfg = self.config
        image_size = (cfg.image_height, cfg.image_width)
        take(self.K_model, scale_intrinsics(self.K, image_size, (cfg.height, cfg.width)))
        take(self._rays_cam, camera_rays(self.K, cfg))
        take(self.frames_rgb, rgb.to(dev)[:, None].expand_as(self.frames_rgb))
        take(self.frames_depth, depth.to(dev)[:, None].expand_as(self.frames_depth))
        take(self.frames_pose, self.pose[:, None].expand_as(self.frames_pose))
        take(self.collided, torch.zeros_like(self.collided))
        take(self.reference_depth, torch.full_like(self.reference_depth, float("inf")))
        take(self.carved, torch.zeros_like(self.carved))
        take(self.frame_id, torch.zeros_like(self.frame_id))
        take(self.wrist, self.hands.default_wrists.expand_as(self.wrist))
        take(self.grip, torch.zeros_like(self.grip))
        take(self.hands_active, torch.zeros_like(self.hands_active))
        self.cache.reset(streams)
        hands = None if reference_hands is None else reference_hands.to(dev)
        self.writer.write_references(self.rgb, self.depth, self.K, self.pose, hands, streams, sweep)
        # Encode the references as clean frames (t = 0). Every stream runs (static shapes), but
        # the chunk slots this writes are scratch until committed, and only reset streams commit.
        if self.latent is None:
            frame = encode_frame(self.rgb, self.depth)[:, :, None]  # (N, C, 1, H, W)
        else:  # the reference held still for a whole chunk, TAEHV-encoded: (N, C, T, h, w)
            frame = self.latent.reference_latents(self.rgb, streams).transpose(1, 2)
        t0 = torch.zeros(n, self.config.chunk_frames, device=dev)
        plucker = plucker_input(self.K, self.pose, self.config)
        self.model(frame.to(self.dtype), t0, None, plucker, self.cache, self._context, cache_only=True)
        self.cache.commit_anchor(self.pose.float()[:, None], worlds=streams)
        self.is_reset = True
        return self._outputs()

    @torch.no_grad()
    def step_batch(
        self, nav: torch.Tensor, hand: torch.Tensor | None = None, hand_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Advance every stream by one step: one frame, or one chunk of latent configs (no host sync).

        Args:
            nav: (N, 6) continuous navigation in [-1, 1] (keys: `kinematics.keys_to_nav`).
            hand: (N, 14) hand actions, or None to leave every hand as it is.
            hand_mask: (N,) bool, streams whose hand action applies (default: all when ``hand``).

        Returns:
            Device tensors, the world's live buffers (valid until the next call; clone to keep):
            rgb uint8 (N, H, W, 3), depth float32 (N, H, W), pose float64 (N, 4, 4), K float64
            (N, 3, 3), collided bool (N,), frame_id int64 (N,) — for latent configs rgb, depth and
            pose carry the chunk's F video frames after N, and frame_id counts video frames.
        """
        self._require_reset()
        nav = nav.to(self.device, torch.float64)
        # A surface drawn in the reference's empty space is no wall (carving): +inf there.
        own = torch.where(self.carved, float("inf"), self.depth)
        depths = (own, self.reference_depth) if self.reference_collisions else (own,)
        # A chunk moves video_frames times before the next depth is known (`block_forward`).
        travel = (self.video_frames - 1) * self.nav_limits.max_translation
        nav, blocked = block_forward(nav, depths, self.collision_depth_m, travel)
        if hand is not None:
            mask = torch.ones_like(self.collided) if hand_mask is None else hand_mask.to(self.device)
            wrist, grip = apply_hand_actions(self.wrist, self.grip, hand.to(self.device), self.hand_limits)
            self.wrist.copy_(torch.where(mask[:, None, None, None], wrist, self.wrist))
            self.grip.copy_(torch.where(mask[:, None], grip, self.grip))
            self.hands_active |= mask
        if self.latent is None:
            self._generate(integrate_nav(self.pose, nav, self.nav_limits), None)
        else:
            self._generate_chunk(self.latent.chunk_poses(self.pose, nav, self.nav_limits), None)
        self.collided.copy_(blocked)
        self.frame_id += self.video_frames
        return self._outputs()

    @torch.no_grad()
    def teleport_batch(self, pose: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Move the streams in ``mask`` (N,) to ``pose`` (N, 4, 4) and generate their frames there.

        Other streams keep their frame, cache, memory and noise state (their work is computed
        and discarded; teleports are rare). No time passes: frame_id is unchanged.
        """
        self._require_reset()
        mask = mask.to(self.device, torch.bool)
        target = torch.where(mask[:, None, None], pose.to(self.device, torch.float64), self.pose)
        self.flush_cache_roll()
        snapshot = CacheSnapshot(self.cache)
        counter = self.noise_counter.clone()
        if self.latent is None:
            self._generate(target, mask)
        else:  # the camera holds still at the target for the whole chunk
            self._generate_chunk(target[:, None].expand(-1, self.video_frames, -1, -1), mask)
        self.flush_cache_roll()  # roll the teleported streams now; the others are restored below
        snapshot.restore_except(mask)
        self.noise_counter.copy_(torch.where(mask, self.noise_counter, counter))
        self.collided.masked_fill_(mask, False)
        return self._outputs()

    def flush_cache_roll(self) -> None:
        """Roll the ST-cache now if the last step left its roll pending (`sim_env.cache_roll`).

        Each step's roll runs at the start of the next, beside its conditioning; code outside the
        runtime that reads ``cache`` between steps must call this first.
        """
        self._roll.flush(self.phase_timer)

    # ------------------------------------------------------------------ internals
    def _velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Sampler adapter: x (N, F, C, H, W), σ (N, F) → velocity, via the cached DiT at t = 1000·σ."""
        with self.phase_timer("denoise"):
            xt, t = x.transpose(1, 2).to(self.dtype), NUM_TRAIN_TIMESTEPS * sigma
            copy = self._copyable if self.reference_passthrough else False
            v = self.model(
                xt,
                t,
                cond,
                self._plucker,
                self.cache,
                self._context,
                reference_passthrough=copy,
                reference_surfels=self._surfels,
            )
            return v.transpose(1, 2).to(x.dtype)

    def _cache_pass(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> None:
        """Clean pass at t = 0 with zero conditioning (history frames), writing the chunk K/V."""
        with self.phase_timer("cache_pass"):
            t = NUM_TRAIN_TIMESTEPS * sigma
            x = x.transpose(1, 2).to(self.dtype)
            self.model(x, t, None, self._plucker, self.cache, self._context, cache_only=True)

    def _generate(self, pose: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Generate the frame of every stream at ``pose``; commit state where ``mask`` (None = all)."""
        cfg, a = self.config, self.agents_per_world
        pose32 = pose.float()
        mem = self.memory
        with self._roll.beside(self.phase_timer), self.phase_timer("conditioning"):
            with_pins = self.reference_collisions or cfg.anchor_gate_reference or self.footprint_occlusion
            rules = AnchorRules(
                self.pinned_margin,
                with_pins,
                self.reference_collisions,
                self.footprint_occlusion,
                self.sample_footprints,
            )
            view = render_anchor(mem, self.K.float(), pose32, self.height, self.width, a, rules)
            r_values, r_depth, r_mask = view.values, view.depth, view.mask
            # The reference's depth for the collision rule: its walls stand, whatever is drawn in front.
            updates = [] if view.reference_depth is None else [(self.reference_depth, view.reference_depth)]
            cond = build_condition(r_values, r_depth, r_mask, self._hand_map(), cfg)
            if self.reference_passthrough:  # not where a hand may now cover the reference
                hands = self.hands.keypoints(self.wrist, self.grip)
                free = hand_free_mask(hands, self.hands_active, self.K_model, cfg.height, cfg.width)
                self._copyable = free[:, None, None]
            if self.reference_surfels:
                fx, voxel = self.K[:, 0, 0], self.memory.voxel_size
                self._surfels = surfel_passthrough(r_values, r_depth, r_mask, fx, voxel, self.pinned_margin)
            self._plucker = rays_to_plucker(self._rays_cam, pose, cfg)
        x = self.sampler.sample(self.noise.draw(), cond, self._cache_pass)
        with self.phase_timer("decode"):
            rgb, depth = decode_frame(x[:, -1])
        for buffer, value in [(self.pose, pose), (self.rgb, rgb), (self.depth, depth), *updates]:
            commit_rows(buffer, value, mask)
        with self.phase_timer("memory"):
            self._insert_memory(mask)
        self._roll.defer(pose32[:, None].expand(-1, cfg.chunk_frames, -1, -1))

    def _generate_chunk(self, poses: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Latent configs: generate the chunk of every stream at video-frame ``poses`` (N, F, 4, 4)."""
        latent, keep = self.latent, mask
        assert latent is not None
        with self._roll.beside(self.phase_timer), self.phase_timer("conditioning"):
            inputs = latent.condition(
                self.memory, self.agents_per_world, self.K, poses, self._hand_map(), self._rays_cam
            )
        self._plucker = inputs.plucker
        x = self.sampler.sample(self.noise.draw(), inputs.cond)  # (N, T, C, h, w)

        def decode_and_remember() -> None:
            with self.phase_timer("decode"):
                rgb = latent.codec.decode(x, keep)
            commit_rows(self.frames_rgb, rgb, keep)
            commit_rows(self.frames_depth, inputs.depth, keep)
            commit_rows(self.frames_pose, poses, keep)
            commit_rows(self.pose, poses[:, -1], keep)
            # Generated colours go into the memory at the depth the memory itself reprojected
            # there (holes stay unfilled): the latent path adds no new geometry (no depth decoder).
            with self.phase_timer("memory"):
                self._insert_memory(keep, depth=inputs.raw_last_depth)

        # Decoding and the memory insert need only the clean latents, the cache pass only the
        # model: with a side stream they overlap (every tensor either side reads stays referenced
        # here until the join, so the caching allocator cannot hand its memory to the other).
        side = self._side_stream
        if side is None:
            decode_and_remember()
        else:
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                decode_and_remember()
        self._cache_pass(x, torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device), inputs.cond)
        if side is not None:
            torch.cuda.current_stream(self.device).wait_stream(side)
        self._roll.defer(inputs.latent_poses.float())

    def _hand_map(self) -> torch.Tensor:
        """(N, h, w) hand skeletons of the streams with (conditioned) hands, on the model grid."""
        keypoints = self.hands.keypoints(self.wrist, self.grip)
        active = self.hands_active & self.condition_hands
        cfg = self.config
        return hand_skeleton_map(keypoints, active, self.K_model, cfg.height, cfg.width, self._skeleton)

    def _insert_memory(self, mask: torch.Tensor | None, depth: torch.Tensor | None = None) -> None:
        """Write every stream's current frame into the memory (`MemoryWriter.write_generated`).

        ``depth`` (N, H, W) replaces the current depth (the latent path's raw reprojected depth).
        """
        hands = self.hands.keypoints(self.wrist, self.grip)
        frame_depth = self.depth if depth is None else depth
        keep = self.writer.write_generated(
            self.rgb, frame_depth, self.K, self.pose, mask, hands, self.hands_active
        )
        if keep is not None:
            commit_rows(self.carved, ~keep, mask)

    def _outputs(self) -> dict[str, torch.Tensor]:
        chunked = self.latent is not None
        return {
            "rgb": self.frames_rgb if chunked else self.rgb,
            "depth": self.frames_depth if chunked else self.depth,
            "pose": self.frames_pose if chunked else self.pose,
            "K": self.K,
            "collided": self.collided,
            "frame_id": self.frame_id,
        }

    def _require_reset(self) -> None:
        if self._closed:
            raise FailedPreconditionError("the GenerativeWorld is closed")
        if not self.is_reset:
            raise FailedPreconditionError("call reset before step / set_pose")
