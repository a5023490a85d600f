"""Configuration of the causal DiT and its spatio-temporal cache.

Input channel layout (what ``CausalDiT.forward`` concatenates, in this order)::

    [ noisy target (C) | reprojected condition (C) | validity mask (1) | hand skeleton (H) ]

where C = ``out_channels`` (the channels the model generates) and H = ``hand_channels``. History
frames (already generated, re-encoded as clean context) carry zeros in every conditioning
channel: the condition exists only for frames being generated (InSpatio-World §3.2.2, WorldScape
§2.1). With ``conditioned=False`` the input is the noisy target alone, which is exactly the
Wan2.1-T2V layout (``in_channels == out_channels``).

``tiny64`` works in pixel space on 64×64 RGB-D frames, C = 4:

* channels 0–2: RGB in [-1, 1];
* channel 3: log-depth normalised to [-1, 1] over [``DEPTH_MIN_M``, ``DEPTH_MAX_M``]
  (see :func:`encode_depth` / :func:`decode_depth`). Log spacing gives near geometry — what
  collisions and reprojection care about — most of the range.

``wan2.1-1.3b`` works in Wan-VAE latent space (16 channels, 8× spatial / 4× temporal compression):
``vae`` names the TAEHV layout that decodes its latents and encodes its condition video
(``sim_env/latent_chunk.py``); ``height``/``width`` are then latent sizes and
``image_height``/``image_width`` the pixel sizes (8× larger).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import torch

# Depth range of the tiny64 pixel-space depth channel (metres, planar depth).
DEPTH_MIN_M = 0.05
DEPTH_MAX_M = 100.0
_LOG_DEPTH_MIN = math.log(DEPTH_MIN_M)
_LOG_DEPTH_SPAN = math.log(DEPTH_MAX_M) - _LOG_DEPTH_MIN


def encode_depth(depth_m: torch.Tensor) -> torch.Tensor:
    """Planar depth in metres (``+inf`` = nothing hit) → normalised log-depth in [-1, 1]."""
    d = depth_m.clamp(DEPTH_MIN_M, DEPTH_MAX_M)  # +inf clamps to the far plane
    return 2.0 * (d.log() - _LOG_DEPTH_MIN) / _LOG_DEPTH_SPAN - 1.0


def decode_depth(depth_channel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_depth` (values outside [-1, 1] are clamped first)."""
    u = (depth_channel.clamp(-1.0, 1.0) + 1.0) * 0.5
    return torch.exp(_LOG_DEPTH_MIN + u * _LOG_DEPTH_SPAN)


@dataclass(frozen=True)
class DiTConfig:
    """Shape of the causal DiT (Wan2.1 block structure) and of its fixed-shape ST-cache.

    Attributes:
        name: registry name.
        dim: transformer width.
        num_layers: number of DiT blocks.
        num_heads: attention heads (``dim % num_heads == 0``).
        ffn_dim: hidden width of the GELU-tanh feed-forward.
        patch_size: (t, h, w) patch of the Conv3d patch embedding; t must be 1 (one token grid
            per frame, so every frame has its own timestep and cache slot).
        out_channels: channels generated per frame (C).
        hand_channels: channels of the rendered hand-skeleton map (H).
        conditioned: whether the condition channels are concatenated to the input.
        text_dim: width of the cross-attention context before ``text_embedding``.
        context_len: number of cross-attention context tokens.
        learned_context: use a learned context (no text encoder) — tiny64; Wan takes T5 tokens.
        camera_embedding: add a per-token Plücker ray embedding.
        freq_dim: width of the sinusoidal timestep embedding.
        eps: epsilon of the norms.
        rope_theta: RoPE base.
        height: frame height in model space (pixels for tiny64, latents for Wan).
        width: frame width in model space.
        image_height: height of the image the intrinsics K refer to (Plücker rays).
        image_width: width of the image the intrinsics K refer to.
        anchor_frames: cache slots of the reference / sink anchor.
        memory_frames: cache slots of the memory pool.
        window_frames: cache slots of the local sliding window.
        chunk_frames: frames generated per autoregressive step (the current chunk).
        vae: name of the TAEHV layout (``sim_env.model.taehv.TAEHV_CONFIGS``) that encodes the
            condition video to latents and decodes the generated latents; None = pixel space.
        anchor_gate: the head also predicts a per-pixel gate that pulls the clean estimate toward
            the reprojected anchor where it is valid (`sim_env.model.anchor_gate.anchor_blend`).
        anchor_gate_channels: how many leading output channels the gate blends (None = all). 3
            in pixel-space RGB-D gates the colour only: the depth stays the model's own, so the
            gate cannot copy a drifting memory's geometry into the collision check.
        anchor_gate_fill: sweeps of hole filling applied to the gate's anchor (0 = none). Each
            sweep gives every empty pixel next to a filled one the mean of its filled 3×3
            neighbours, so the gate can also copy the memory's colour into the holes a close or
            oblique view tears into the splat (`sim_env.model.anchor_gate.fill_anchor_holes`).
        anchor_gate_reference: the condition carries one more channel, 1 where the splatted pixel
            comes from a pinned reference voxel (ground truth the world was given) and 0 where it
            comes from the model's own generated frames. Only the gate reads it, as a learned
            logit offset, so the gate can copy observed surfaces exactly while it stays wary of
            generated memory that may have drifted; the trunk's input is unchanged.
    """

    name: str
    dim: int
    num_layers: int
    num_heads: int
    ffn_dim: int
    patch_size: tuple[int, int, int]
    out_channels: int
    hand_channels: int = 1
    conditioned: bool = True
    text_dim: int = 4096
    context_len: int = 512
    learned_context: bool = False
    camera_embedding: bool = True
    freq_dim: int = 256
    eps: float = 1e-6
    rope_theta: float = 10000.0
    height: int = 60
    width: int = 104
    image_height: int = 480
    image_width: int = 832
    anchor_frames: int = 1
    memory_frames: int = 4
    window_frames: int = 3
    chunk_frames: int = 3
    vae: str | None = None
    anchor_gate: bool = False
    anchor_gate_channels: int | None = None
    anchor_gate_fill: int = 0
    anchor_gate_reference: bool = False

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2 or self.head_dim // 2 < 3:
            raise ValueError(f"head_dim {self.head_dim} too small for a 3D RoPE split")
        pt, ph, pw = self.patch_size
        if pt != 1:
            raise ValueError("temporal patch size must be 1 (per-frame tokens, timesteps and cache slots)")
        if self.height % ph or self.width % pw:
            raise ValueError(f"frame {self.height}x{self.width} is not divisible by patch {ph}x{pw}")
        if min(self.anchor_frames, self.memory_frames, self.window_frames) < 0 or self.chunk_frames < 1:
            raise ValueError("cache slot sizes must be >= 0 and chunk_frames >= 1")
        if self.anchor_frames > self.chunk_frames:
            raise ValueError("anchor_frames must be <= chunk_frames (anchors are committed from a chunk)")
        if self.anchor_gate and not self.conditioned:
            raise ValueError("anchor_gate needs a conditioned config (the anchor is a condition channel)")
        gated = self.anchor_gate_channels
        if gated is not None and not 1 <= gated <= self.out_channels:
            raise ValueError(f"anchor_gate_channels must lie in [1, {self.out_channels}], got {gated}")
        if self.anchor_gate_fill < 0 or (self.anchor_gate_fill and not self.anchor_gate):
            raise ValueError(
                f"anchor_gate_fill must be >= 0 and needs anchor_gate, got {self.anchor_gate_fill}"
            )
        if self.anchor_gate_reference and (not self.anchor_gate or self.vae is not None):
            raise ValueError("anchor_gate_reference needs anchor_gate in pixel space (vae=None)")

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        """Per-head width."""
        return self.dim // self.num_heads

    @property
    def trunk_condition_channels(self) -> int:
        """Condition channels the trunk embeds: reprojection (C) + validity (1) + hand skeleton (H)."""
        return self.out_channels + 1 + self.hand_channels if self.conditioned else 0

    @property
    def condition_channels(self) -> int:
        """All condition channels: the trunk's, then the reference-provenance channel if gated."""
        return self.trunk_condition_channels + int(self.anchor_gate_reference)

    @property
    def in_channels(self) -> int:
        """Channels of the patch embedding input: noisy target + the trunk's conditioning."""
        return self.out_channels + self.trunk_condition_channels

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) of one frame."""
        return self.height // self.patch_size[1], self.width // self.patch_size[2]

    @property
    def tokens_per_frame(self) -> int:
        """Tokens of one frame: h·w of the patch grid."""
        h, w = self.grid
        return h * w

    @property
    def cache_frames(self) -> int:
        """Frame slots of the ST-cache: anchor + memory + window + chunk."""
        return self.anchor_frames + self.memory_frames + self.window_frames + self.chunk_frames

    # ------------------------------------------------------------------ (de)serialisation
    def to_json(self) -> str:
        """JSON string of all fields (stored in checkpoint metadata)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DiTConfig:
        """Inverse of :meth:`to_json` (unknown keys are rejected)."""
        fields = json.loads(text)
        fields["patch_size"] = tuple(fields["patch_size"])
        return cls(**fields)


CONFIGS: dict[str, DiTConfig] = {
    # Pixel-space RGB-D at 64×64, patch 4×4 → 16×16 = 256 tokens per frame. Small enough for a CPU.
    "tiny64": DiTConfig(
        name="tiny64",
        dim=128,
        num_layers=4,
        num_heads=4,
        ffn_dim=512,
        patch_size=(1, 4, 4),
        out_channels=4,
        hand_channels=1,
        text_dim=64,
        context_len=8,
        learned_context=True,
        freq_dim=128,
        height=64,
        width=64,
        image_height=64,
        image_width=64,
        anchor_frames=1,
        memory_frames=4,
        window_frames=2,
        chunk_frames=1,
    ),
    # Wan2.1-T2V-1.3B backbone at 480×832 (latents 60×104, 30×52 = 1560 tokens per frame).
    "wan2.1-1.3b": DiTConfig(
        name="wan2.1-1.3b",
        dim=1536,
        num_layers=30,
        num_heads=12,
        ffn_dim=8960,
        patch_size=(1, 2, 2),
        out_channels=16,
        hand_channels=1,
        text_dim=4096,
        context_len=512,
        freq_dim=256,
        height=60,
        width=104,
        image_height=480,
        image_width=832,
        # 10 slots: a one-frame sink, 3 memory-pool frames, the previous chunk as the local
        # window, the current chunk (docs/world_model.md, "Cache sizes").
        anchor_frames=1,
        memory_frames=3,
        window_frames=3,
        chunk_frames=3,
        vae="taew2_1",
    ),
    # Test-only latent config: the wan2.1-1.3b chunk structure (16 latent channels, 3 latent
    # frames = 12 video frames per chunk, text-context cross-attention) at 32×48 pixels
    # (4×6 latents) with one narrow layer and the few-channel TAEHV, so CPU tests run in seconds.
    "tiny-latent-test": DiTConfig(
        name="tiny-latent-test",
        dim=64,
        num_layers=1,
        num_heads=2,
        ffn_dim=128,
        patch_size=(1, 2, 2),
        out_channels=16,
        hand_channels=1,
        text_dim=32,
        context_len=4,
        freq_dim=64,
        height=4,
        width=6,
        image_height=32,
        image_width=48,
        anchor_frames=3,
        memory_frames=2,
        window_frames=3,
        chunk_frames=3,
        vae="taehv-tiny-test",
    ),
    # Test-only pixel-space config for long rollouts (the 2,000-step world-level cache check):
    # tiny64's layout at 16×16 with one narrow layer.
    "tiny16-test": DiTConfig(
        name="tiny16-test",
        dim=32,
        num_layers=1,
        num_heads=2,
        ffn_dim=64,
        patch_size=(1, 4, 4),
        out_channels=4,
        hand_channels=1,
        text_dim=16,
        context_len=2,
        learned_context=True,
        freq_dim=32,
        height=16,
        width=16,
        image_height=16,
        image_width=16,
        anchor_frames=1,
        memory_frames=2,
        window_frames=2,
        chunk_frames=1,
    ),
}
# tiny64 with the anchor gate on the colour channels only (the gate-only finetune of
# docs/model.md); checkpoints carry their config, so loading one needs no name.
CONFIGS["tiny64-colour-gate"] = dataclasses.replace(
    CONFIGS["tiny64"], name="tiny64-colour-gate", anchor_gate=True, anchor_gate_channels=3
)
# The colour gate blending toward a hole-filled anchor (32 sweeps reach across half a 64×64 frame).
CONFIGS["tiny64-colour-gate-fill"] = dataclasses.replace(
    CONFIGS["tiny64-colour-gate"], name="tiny64-colour-gate-fill", anchor_gate_fill=32
)
# The colour gate told which anchor pixels are the pinned ground-truth reference.
CONFIGS["tiny64-colour-gate-ref"] = dataclasses.replace(
    CONFIGS["tiny64-colour-gate"], name="tiny64-colour-gate-ref", anchor_gate_reference=True
)
CONFIGS["tiny64-colour-gate-fill-ref"] = dataclasses.replace(
    CONFIGS["tiny64-colour-gate-fill"], name="tiny64-colour-gate-fill-ref", anchor_gate_reference=True
)
# The 1-latent-frame chunk mode of wan2.1-1.3b (4 video frames per step): lowest
# action-to-frame latency, same cache history as the 3-frame mode (8 slots).
CONFIGS["wan2.1-1.3b-chunk1"] = dataclasses.replace(
    CONFIGS["wan2.1-1.3b"], name="wan2.1-1.3b-chunk1", chunk_frames=1
)


def get_config(name: str) -> DiTConfig:
    """Named config; raises KeyError listing the known names."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown model config {name!r}; known: {sorted(CONFIGS)}") from None
