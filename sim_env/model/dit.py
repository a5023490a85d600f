"""Causal DiT with the Wan2.1 block structure and parameter names.

One block, with per-frame adaLN modulation m = ``modulation`` + e_f (e_f the projected timestep
embedding of frame f, chunked into shift/scale/gate for attention and FFN)::

    x ← x + gate_sa · SelfAttn(norm1(x) · (1 + scale_sa) + shift_sa)     RMSNorm q/k, 3D RoPE
    x ← x + CrossAttn(norm3(x), context)                                  LayerNorm with affine
    x ← x + gate_ff · FFN(norm2(x) · (1 + scale_ff) + shift_ff)          GELU(tanh)

Parameter names follow Wan2.1 ``wan/modules/model.py`` (``patch_embedding``, ``text_embedding.{0,2}``,
``time_embedding.{0,2}``, ``time_projection.1``, ``blocks.N.{self_attn,cross_attn,norm3,ffn,
modulation}``, ``head.{head,modulation}``), so Wan2.1 / Self-Forcing / InSpatio-World checkpoints
load by name. Additions: ``camera_embedding`` (Plücker rays, zero-initialised output) and, for
configs without a text encoder, ``context_tokens`` (a small learned cross-attention context).

Each frame has its own timestep (diffusion forcing / Self-Forcing): history frames sit at t = 0
while the current chunk is noisy. The output is the flow-matching velocity v = ε − x0 of the
noisy target channels (see ``sim_env/sampler.py`` for the sign convention).

Anchor gate (configs with ``anchor_gate``): the reprojected anchor already holds the exact
pixels of every surface the memory has seen, but a small patch model re-synthesises them through
its token bottleneck and blurs them. The head therefore also predicts a per-pixel gate logit g;
with the synthesis estimate y = x_σ − σ·v̂ and the anchor a with validity m, the clean estimate is

    x̂0 = y + sigmoid(g)·m·(a − y)

and the model returns the velocity (x_σ − x̂0)/σ that the sampler and the loss expect
(`anchor_blend`). Where the anchor is valid and right the gate opens and the anchor is copied
sharply; where it is stale, occluded or missing (m = 0) the synthesis stands. With
``anchor_gate_fill`` the gate's anchor is first hole-filled (`fill_anchor_holes`): close to a
wall the splat of a distant view is sparse, and the filled anchor still carries its colour.
With ``anchor_gate_reference`` the condition's last channel r marks anchor pixels that come from
the pinned ground-truth reference, and the gate logit becomes g + β·r with a learned β: the
memory's own generated frames can drift, the reference cannot, and only the provenance tells
the two apart. ``reference_passthrough`` (a runtime option) takes β to infinity: the pinned
reference is copied wherever it lands and into the small gaps of its own splat
(`reference_with_gaps`); with the runtime's ``reference_surfels`` also wherever its voxels'
projected footprints reach, colour and depth (`open_passthrough`). Training sees rollouts of a
few frames, whose synthesis has not drifted yet, so the learned β (2.36 on tiny64) may trust the
reference less than a long rollout should; measured on tiny64 it was a wash (docs/model.md).
The gate's arithmetic lives in `sim_env.model.anchor_gate`.

Attention is chunk-causal: a frame attends to every frame of its own chunk and of earlier
chunks. Without a cache this is an explicit block mask over the whole clip (training); with an
:class:`~sim_env.model.st_cache.STCache` the input is exactly one chunk, its keys/values are
written into the chunk slots and the queries attend to the fixed-shape cache. A cache built with
``padded_attention`` holds pre-rotated keys with a validity channel, so cached attention needs no
mask and runs on FlashAttention / cuDNN kernels; one built with ``zero_key_attention`` holds
zeros in the slots not to attend, and the output is corrected exactly with cuDNN's log-sum-exp
(`STCache` explains both). Each block receives only its own layer's views of the cache
(`STCache.layer`), so one ``torch.compile`` graph serves every block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sim_env.model.anchor_gate import anchor_blend, copy_ungated, fill_anchor_holes, open_passthrough
from sim_env.model.config import DiTConfig
from sim_env.model.plucker import PluckerEmbedding
from sim_env.model.rope import apply_rope, grid_positions, rope_cos_sin
from sim_env.model.st_cache import MASK_CHANNELS, LayerCache, STCache

# Number of adaLN vectors per block (shift, scale, gate for attention and for the FFN) and head.
BLOCK_MODULATIONS = 6
HEAD_MODULATIONS = 2
# Base of the sinusoidal timestep embedding (as in Wan2.1 / DiT).
TIME_EMBED_BASE = 10000.0
# Std of the learned context tokens and of the text/time embeddings at init (Wan2.1 init).
EMBED_INIT_STD = 0.02
# Initial anchor-gate logit: sigmoid(−2) ≈ 0.12, a mostly-closed gate that training opens.
GATE_INIT_LOGIT = -2.0


def timestep_embedding(t: torch.Tensor, freq_dim: int) -> torch.Tensor:
    """Sinusoidal embedding [cos | sin] of timesteps on the 1000 scale, shape (*t.shape, freq_dim)."""
    half = freq_dim // 2
    freqs = TIME_EMBED_BASE ** (-torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.to(torch.float32)[..., None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def attention_with_lse(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention on (B, heads, L, d) tensors and its float32 log-normaliser (B, heads, Lq).

    cuDNN's fused kernel on CUDA (half precision); elsewhere the same quantities from explicit
    float32 scores, which is what the CPU tests check the correction against.
    """
    if q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        cudnn = torch.ops.aten._scaled_dot_product_cudnn_attention
        out, lse = cudnn(q, k, v, None, True, 0.0, False, False)[:2]  # compute_log_sumexp=True
        return out, lse.reshape(out.shape[:-1]).float()
    scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.exp(scores - lse[..., None]) @ v.float()
    return out.to(q.dtype), lse


def remove_zero_keys(out: torch.Tensor, lse: torch.Tensor, invalid_keys: torch.Tensor | int) -> torch.Tensor:
    """Attention over the valid keys, from mask-free attention in which the invalid keys were zeroed.

    A zero key scores exactly 0, so each of the ``invalid_keys`` adds 1 to the softmax sum
    exp(lse) and (with a zero value) nothing to the weighted sum; dividing by the valid share
    1 − invalid_keys · exp(−lse) removes them exactly.

    Args:
        out: (B, heads, Lq, d) attention output over all keys.
        lse: (B, heads, Lq) natural-log softmax normaliser of the scaled scores (any trailing 1s).
        invalid_keys: zeroed keys per stream, an int or a (B,) tensor (on the device inside a
            CUDA graph: a host int becomes a host-to-device copy).
    """
    lse = lse.reshape(out.shape[:-1]).float()
    count = torch.as_tensor(invalid_keys, device=out.device, dtype=torch.float32).reshape(-1, 1, 1)
    valid_share = 1.0 - count * torch.exp(-lse)
    return (out.float() / valid_share[..., None]).to(out.dtype)


class Attention(nn.Module):
    """Multi-head attention with RMSNorm on queries and keys (over the full width, as Wan2.1)."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1))

    @staticmethod
    def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """SDPA on (B, L, heads, head_dim) tensors, returning (B, Lq, dim)."""
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.to(q.dtype).transpose(1, 2), attn_mask=bias
        )
        return out.transpose(1, 2).flatten(2)

    @staticmethod
    def _attend_padded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Mask-free SDPA over a padded cache mirror: (B, Lq, heads, head_dim) queries → (B, Lq, dim).

        The queries get a 1 in the keys' validity channel and zeros in the other pad channels, so
        valid scores are exactly q·k and invalid slots drop out; the softmax scale stays that of
        the real head width and the values' pad channels (zero) are cut off.
        """
        d = q.shape[-1]
        q = F.pad(q, (0, MASK_CHANNELS))
        q[..., d] = 1.0
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=1.0 / math.sqrt(d)
        )
        return out[..., :d].transpose(1, 2).flatten(2)

    @staticmethod
    def _attend_zero_keys(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, invalid_keys: torch.Tensor
    ) -> torch.Tensor:
        """Mask-free attention over a zero-key cache mirror, (B, Lq, heads, head_dim) → (B, Lq, dim).

        Each of a stream's ``invalid_keys`` (B,) zero keys scores 0 and so adds exactly 1 to the
        softmax normaliser exp(lse) and nothing to the weighted sum (its value is 0); dividing
        the output by the valid share 1 − invalid_keys · exp(−lse) removes them exactly.
        """
        out = remove_zero_keys(
            *attention_with_lse(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)), invalid_keys
        )
        return out.transpose(1, 2).flatten(2)


class SelfAttention(Attention):
    """Self-attention over the clip (masked) or over the ST-cache (chunk queries)."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__(dim, num_heads, eps)
        self.qkv: nn.Linear | None = None  # set by fuse_projections

    def fuse_projections(self) -> None:
        """Inference: one (3·dim × dim) product for q, k and v instead of three, same weights.

        At Wan's token counts the three dim × dim products are short of full waves on the GPU;
        one three-times-wider product keeps the tensor cores busy. The separate layers (and
        their checkpoint names) are replaced, so fuse after loading weights.
        """
        if self.qkv is not None:
            return
        q, k, v = self.q, self.k, self.v
        fused = nn.Linear(q.in_features, 3 * q.out_features, device=q.weight.device, dtype=q.weight.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([q.weight, k.weight, v.weight]))
            fused.bias.copy_(torch.cat([q.bias, k.bias, v.bias]))
        self.qkv = fused
        del self.q, self.k, self.v

    def _projections(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys (RMS-normed, un-rotated) and values of tokens ``x``, as (B, L, heads, d)."""
        if self.qkv is None:
            q, k, v = self.q(x), self.k(x), self.v(x)
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self._heads(self.norm_q(q)), self._heads(self.norm_k(k)), self._heads(v)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Un-rotated keys (RMS-normed) and values of tokens ``x`` (B, L, dim), as (B, L, heads, d)."""
        if self.qkv is None:
            return self._heads(self.norm_k(self.k(x))), self._heads(self.v(x))
        return self._projections(x)[1:]

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        bias: torch.Tensor | None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """Attend; with a cache, store this chunk's un-rotated K/V first, then attend to all slots."""
        q, k, v = self._projections(x)
        if cache is None:
            assert rope is not None
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        else:
            cache.write_chunk(k, v)
            q = apply_rope(q, cache.chunk_cos, cache.chunk_sin)
            k, v = cache.attn_keys, cache.attn_values
            if k is not None and v is not None:
                if cache.invalid_keys is not None:
                    return self.o(self._attend_zero_keys(q, k, v, cache.invalid_keys))
                return self.o(self._attend_padded(q, k, v))
            k = apply_rope(cache.keys, cache.cos, cache.sin)
            v = cache.values
        return self.o(self._attend(q, k, v, bias))


class CrossAttention(Attention):
    """Cross-attention from the video tokens to the (text or learned) context tokens."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attend from ``x`` (B, L, dim) to ``context`` (B, Lc, dim).

        A one-token context gets softmax weight 1 whatever the query, so the output is that
        token's value for every query: the query projection and the attention are skipped. A
        context of identical tokens (Wan's zero "no prompt" embedding) attends exactly as one of
        them, which is how the runtime passes it.
        """
        if context.shape[1] == 1:
            return self.o(self.v(context)).expand(-1, x.shape[1], -1)
        q = self._heads(self.norm_q(self.q(x)))
        k = self._heads(self.norm_k(self.k(context)))
        v = self._heads(self.v(context))
        return self.o(self._attend(q, k, v, None))


class DiTBlock(nn.Module):
    """Wan2.1 attention block with per-frame adaLN modulation."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim, eps = config.dim, config.eps
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, config.num_heads, eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(dim, config.num_heads, eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, config.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(config.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, BLOCK_MODULATIONS, dim) / math.sqrt(dim))

    def forward(
        self,
        x: torch.Tensor,
        e: torch.Tensor,
        context: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        bias: torch.Tensor | None,
        cache: LayerCache | None,
    ) -> torch.Tensor:
        """Update tokens ``x`` (B, F, T, dim) given per-frame modulation ``e`` (B, F, 6, dim).

        ``cache`` is this block's layer of the ST-cache (`STCache.layer`), None for a clip.
        """
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = (self.modulation + e).chunk(
            BLOCK_MODULATIONS, dim=2
        )  # each (B, F, 1, dim): one vector per frame, broadcast over its tokens
        frames = x.shape[1]
        y = self.self_attn((self.norm1(x) * (1 + scale_sa) + shift_sa).flatten(1, 2), rope, bias, cache)
        x = x + gate_sa * y.unflatten(1, (frames, -1))
        x = x + self.cross_attn(self.norm3(x).flatten(1, 2), context).unflatten(1, (frames, -1))
        x = x + gate_ff * self.ffn(self.norm2(x) * (1 + scale_ff) + shift_ff)
        return x

    def write_cache(self, x: torch.Tensor, e: torch.Tensor, cache: LayerCache) -> None:
        """Only write this chunk's keys and values into ``cache`` (the last block of a cache pass).

        The cache pass needs every block's K/V but nothing the last block computes after them.
        """
        shift_sa, scale_sa = (self.modulation + e).chunk(BLOCK_MODULATIONS, dim=2)[:2]
        tokens = (self.norm1(x) * (1 + scale_sa) + shift_sa).flatten(1, 2)
        cache.write_chunk(*self.self_attn.keys_values(tokens))


class Head(nn.Module):
    """Output projection with its own (shift, scale) modulation from the timestep embedding.

    With ``anchor_gate`` a second projection ``gate`` gives one gate logit per pixel.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim = config.dim
        self.norm = nn.LayerNorm(dim, eps=config.eps, elementwise_affine=False)
        self.head = nn.Linear(dim, math.prod(config.patch_size) * config.out_channels)
        self.modulation = nn.Parameter(torch.randn(1, HEAD_MODULATIONS, dim) / math.sqrt(dim))
        self.gate = nn.Linear(dim, math.prod(config.patch_size)) if config.anchor_gate else None
        # β of the reference-provenance offset (zero: starts as the plain gate).
        self.gate_reference = nn.Parameter(torch.zeros(())) if config.anchor_gate_reference else None

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Project tokens (B, F, T, dim) with per-frame embedding ``e`` (B, F, dim).

        Returns:
            Velocity patches (B, F, T, p·C) and gate-logit patches (B, F, T, p), or None.
        """
        shift, scale = (self.modulation + e[:, :, None, :]).chunk(HEAD_MODULATIONS, dim=2)
        h = self.norm(x) * (1 + scale) + shift
        return self.head(h), None if self.gate is None else self.gate(h)


class CausalDiT(nn.Module):
    """Chunk-causal video DiT predicting the flow-matching velocity of the target channels."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(
            config.in_channels, dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.text_embedding = nn.Sequential(
            nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, BLOCK_MODULATIONS * dim))
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.num_layers))
        self.head = Head(config)
        if config.camera_embedding:
            self.camera_embedding = PluckerEmbedding(dim)
        if config.learned_context:
            self.context_tokens = nn.Parameter(
                torch.randn(config.context_len, config.text_dim) * EMBED_INIT_STD
            )
        self.init_weights()

    def init_weights(self) -> None:
        """Wan2.1-style init: Xavier linears with zero bias, small-normal embeddings."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for seq in (self.text_embedding, self.time_embedding):
            for index in (0, 2):
                nn.init.normal_(seq[index].weight, std=EMBED_INIT_STD)
        if self.config.camera_embedding:
            nn.init.zeros_(self.camera_embedding[2].weight)  # camera starts as a no-op
        if self.head.gate is not None:
            nn.init.zeros_(self.head.gate.weight)
            nn.init.constant_(self.head.gate.bias, GATE_INIT_LOGIT)

    # ------------------------------------------------------------------ pieces
    def embed(self, x: torch.Tensor, cond: torch.Tensor | None, plucker: torch.Tensor | None) -> torch.Tensor:
        """Patchify [noisy | condition] to tokens (B, F, T, dim) and add the camera embedding."""
        cfg = self.config
        if cfg.conditioned:
            if cond is None:  # history frames: conditioning is zero-padded
                cond = x.new_zeros(x.shape[0], cfg.trunk_condition_channels, *x.shape[2:])
            x = torch.cat([x, cond[:, : cfg.trunk_condition_channels].to(x.dtype)], dim=1)
        tokens = self.patch_embedding(x).flatten(3).transpose(1, 2).transpose(2, 3)  # (B, F, h·w, dim)
        if plucker is not None and cfg.camera_embedding:
            tokens = tokens + self.camera_embedding(plucker.to(tokens.dtype)).flatten(2, 3)
        return tokens

    def unpatchify(self, out: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        """Tokens (B, F, T, pt·ph·pw·C) → video (B, C, F, H, W) (Wan2.1's (p, q, r, c) order).

        ``channels`` defaults to ``out_channels`` (1 for the gate logits).
        """
        cfg = self.config
        c = cfg.out_channels if channels is None else channels
        (pt, ph, pw), (h, w) = cfg.patch_size, cfg.grid
        b, f = out.shape[:2]
        u = out.reshape(b, f, h, w, pt, ph, pw, c)
        return torch.einsum("bfhwpqrc->bcfphqwr", u).reshape(b, c, f * pt, h * ph, w * pw)

    def context(self, batch: int, context: torch.Tensor | None) -> torch.Tensor:
        """Cross-attention context after ``text_embedding``: given tokens or the learned ones."""
        if context is None:
            if not self.config.learned_context:
                raise ValueError(f"config {self.config.name!r} needs a text context")
            context = self.context_tokens.expand(batch, -1, -1)
        return self.text_embedding(context)

    def clip_rope_and_mask(
        self,
        frames: int,
        device: torch.device,
        dtype: torch.dtype,
        frame_positions: torch.Tensor | None = None,
    ) -> tuple:
        """RoPE tables and the chunk-causal additive mask for an uncached clip of ``frames``.

        ``frame_positions`` (frames,) gives each frame's RoPE time index; the default 0..F−1 is a
        plain clip, while training passes the ST-cache slot indices the frames would occupy at
        inference (anchor 0, memory pool, window, current chunk last), so that the positions the
        model learns are exactly those the fixed-position cache uses.
        """
        cfg = self.config
        t = cfg.tokens_per_frame
        if frame_positions is None:
            frame_positions = torch.arange(frames, device=device)
        elif frame_positions.shape != (frames,):
            raise ValueError(
                f"frame_positions must have shape ({frames},), got {tuple(frame_positions.shape)}"
            )
        positions = grid_positions(frame_positions.to(device), *cfg.grid)
        rope = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, dtype)
        chunk_of_token = torch.arange(frames * t, device=device) // (t * cfg.chunk_frames)
        allowed = chunk_of_token[None, :] <= chunk_of_token[:, None]
        mask = torch.zeros(allowed.shape, device=device, dtype=dtype).masked_fill_(~allowed, float("-inf"))
        return rope, mask

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        plucker: torch.Tensor | None = None,
        cache: STCache | None = None,
        context: torch.Tensor | None = None,
        frame_positions: torch.Tensor | None = None,
        cache_only: bool = False,
        reference_passthrough: bool | torch.Tensor = False,
        reference_surfels: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | None:
        """Predict the flow-matching velocity.

        Args:
            x: (B, C, F, H, W) noisy target frames.
            t: (B, F) per-frame timesteps on the 1000 scale (1000·σ); 0 for clean history.
            cond: (B, condition_channels, F, H, W) reprojected condition | validity mask | hand
                skeleton (| reference provenance with ``anchor_gate_reference``); None means zeros
                (history frames).
            plucker: (B, F, h, w, 6) Plücker rays at the token grid (``plucker.plucker_rays``).
            cache: ST-cache; then F must equal ``chunk_frames``, this chunk's K/V are written into
                the chunk slots and attention covers the whole cache.
            context: (B, Lc, text_dim) text tokens; None uses the learned context.
            frame_positions: (F,) RoPE time index per frame of an uncached clip (default 0..F−1);
                ignored with a cache, whose slots have fixed positions.
            cache_only: with a cache, only write the chunk's K/V (the clean cache pass): the last
                block stops after its keys and values, the head does not run, None is returned.
            reference_passthrough: with ``anchor_gate_reference``, the gate is fully open on the
                pinned reference's pixels (r = 1) and the gaps between them, so they are copied;
                a bool tensor broadcastable to (B, 1, F, H, W) limits that to where it is True.
            reference_surfels: with ``reference_passthrough``, (shown, anchor): a bool mask
                broadcastable to (B, 1, F, H, W) where the reference's surfels show
                (`sim_env.memory.reference_surfels`) and their values in the model's encoding
                (B, G or more, F or 1, H, W): the G gated channels, and optionally the next ones
                (depth); copied there too, over the splat's anchor.

        Returns:
            (B, C, F, H, W) velocity ε − x0, dtype of ``x`` (with ``anchor_gate`` and a ``cond``,
            the gated velocity of `anchor_blend`); None with ``cache_only``.
        """
        cfg = self.config
        b, _, frames = x.shape[:3]
        tokens = self.embed(x, cond, plucker)
        e_head = self.time_embedding(timestep_embedding(t, cfg.freq_dim).to(tokens.dtype))  # (B, F, dim)
        e = self.time_projection(e_head).unflatten(-1, (BLOCK_MODULATIONS, cfg.dim))  # (B, F, 6, dim)
        ctx = self.context(b, context).to(tokens.dtype)
        if cache is None:
            rope, bias = self.clip_rope_and_mask(frames, x.device, tokens.dtype, frame_positions)
        else:
            if frames != cfg.chunk_frames:
                raise ValueError(f"cached forward takes one chunk of {cfg.chunk_frames} frames, got {frames}")
            rope = None
            bias = cache.attention_bias(tokens.dtype) if cache.attn_keys is None else None
        if cache_only and cache is None:
            raise ValueError("cache_only needs a cache")
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            if cache_only and layer == last:
                block.write_cache(tokens, e, cache.layer(layer))
                return None
            tokens = block(tokens, e, ctx, rope, bias, None if cache is None else cache.layer(layer))
        out, gate = self.head(tokens, e_head)
        velocity = self.unpatchify(out)
        if gate is None or cond is None:  # no anchor (e.g. the clean cache pass): plain synthesis
            return velocity.to(x.dtype)
        c = cfg.out_channels
        gated = c if cfg.anchor_gate_channels is None else cfg.anchor_gate_channels
        anchor, validity = cond[:, :gated], cond[:, c : c + 1]
        splatted = validity
        if cfg.anchor_gate_fill:
            anchor, validity = fill_anchor_holes(anchor, validity, cfg.anchor_gate_fill)
        gate_logit = self.unpatchify(gate, 1)
        beyond = None
        if self.head.gate_reference is not None:
            reference = cond[:, -1:].float()
            gate_logit = gate_logit.float() + self.head.gate_reference * reference
            if reference_passthrough is not False:
                allowed = reference_passthrough if isinstance(reference_passthrough, torch.Tensor) else None
                anchor, validity, gate_logit, beyond = open_passthrough(
                    anchor, validity, splatted, reference, gate_logit, allowed, reference_surfels
                )
        blended = anchor_blend(x[:, :gated], t, velocity[:, :gated], anchor, validity, gate_logit)
        rest = velocity[:, gated:].float()
        if beyond is not None:  # surfel channels past the gated ones (depth) are copied too
            rest = copy_ungated(x[:, gated:], t, rest, *beyond)
        return torch.cat([blended, rest], dim=1).to(x.dtype)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
