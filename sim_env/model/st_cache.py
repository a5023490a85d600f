"""Fixed-shape spatio-temporal KV cache (InSpatio-World §3.2.1, WorldScape §2.4).

Per layer, keys and values live in one preallocated tensor of frame slots::

    [ anchor (A) | memory pool (M) | local window (W) | current chunk (C) ]   × tokens_per_frame

* anchor: the reference / sink frames, written once at reset and kept for the whole rollout;
* memory pool: frames that left the window and were admitted by a pluggable policy
  (view-guided selection, MDL dedup and pruning live in ``sim_env/memory/pool_policy.py``);
* local window: the most recent generated frames, for motion continuity;
* current chunk: the frames being denoised; every forward pass overwrites it.

Every slot has a FIXED RoPE time position — its slot index — so positions are bounded by the
number of slots however long the rollout runs (position-index fixing), and nothing ever changes
shape. Keys are stored BEFORE the rotary embedding; the model rotates the whole cache with the
fixed per-slot tables at attention time, so a frame that moves from the window into the pool
simply takes that slot's position. Empty slots are masked out with an additive −inf bias
(``valid``), not by slicing, so shapes are static. All updates are in-place tensor ops with no
``.item()`` or other host synchronisation: a step can be captured in a CUDA graph.

Fast attention (``padded_attention=True``, used by the runtime on CUDA): an additive mask keeps
SDPA off its FlashAttention kernel, and rotating every slot's keys in every layer of every pass
repeats work that only changes when the history does. The cache then also keeps ``attn_keys`` /
``attn_values``: keys already rotated with their slot's position and values, both padded with
``MASK_CHANNELS`` extra channels. Channel ``head_dim`` of a key is 0 for a slot that may be
attended and ``INVALID_KEY_SCORE`` otherwise; the model gives every query a 1 there, so an
invalid slot's score drops by ~10⁴ (its softmax weight underflows to exactly 0) and a valid
slot's score is unchanged (it adds an exact 0). Attention then runs mask-free on any SDPA
backend. The history part of the mirror is refreshed once per mutation of the history (reset,
anchor commit, window roll, memory write: once per step), the chunk part at every chunk write.

Zero-key attention (``zero_key_attention=True``, the runtime's CUDA default in half precision
for head_dim ≥ 64, see `attention_mirror`): the mirror keeps
the real head width, and a slot that must not be attended holds zero keys and zero values. A
zero key scores exactly 0, so each of the ``invalid_keys`` such tokens adds exactly 1 to the
softmax normaliser exp(lse) and nothing to the weighted sum; the model removes them exactly by
rescaling the output with exp(lse) / (exp(lse) − invalid_keys) (`sim_env.model.dit`). Attention
then runs mask-free at head_dim 128, where cuDNN's kernels are fastest (the padded form's
d + 8 channels push them onto slower tiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from sim_env.model.config import DiTConfig
from sim_env.model.rope import apply_rope, grid_positions, rope_cos_sin

# Index a policy returns for a world whose leaving frame should not enter the pool.
DROP = -1
# Extra head channels of the padded attention mirror (a multiple of 8, as attention kernels want);
# the first carries the validity score, the rest are zero.
MASK_CHANNELS = 8
# Validity channel of a slot that must not be attended: with the query's 1 it lowers the score
# by this × softmax scale (≥ 10³ for head_dim ≤ 512), so exp() underflows to 0 even in float32.
# Representable in bfloat16 and float16.
INVALID_KEY_SCORE = -30000.0


def zero_key_mirror(
    keys: torch.Tensor,
    values: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    attend: torch.Tensor,
    out_keys: torch.Tensor,
    out_values: torch.Tensor,
) -> None:
    """Write the zero-key mirror of a token range of every layer in place.

    Args:
        keys: (layers, B, L, heads, head_dim) un-rotated keys.
        values: values, same shape.
        cos: (L, head_dim // 2) the tokens' rotation cosines.
        sin: the sines, same shape.
        attend: (B, L) bool, tokens that may be attended.
        out_keys: the mirror's view of the same range: rotated keys where attended, else 0.
        out_values: values where attended, else 0.
    """
    keep = attend[None, :, :, None, None]
    out_keys.copy_(torch.where(keep, apply_rope(keys, cos, sin), 0.0))
    out_values.copy_(torch.where(keep, values, 0.0))


# Smallest head width where the runtime picks the zero-key mirror by default: below it the padded
# form's 8 extra channels stay inside cuDNN's head-dim tile and cost little.
ZERO_KEY_MIN_HEAD_DIM = 64


def attention_mirror(
    config: DiTConfig,
    device: torch.device,
    dtype: torch.dtype,
    padded_attention: bool | None = None,
    zero_key_attention: bool | None = None,
) -> tuple[bool, bool]:
    """(padded_attention, zero_key_attention) for a cache, filling in the defaults left as None.

    Zero-key on CUDA in half precision with head_dim ≥ `ZERO_KEY_MIN_HEAD_DIM` (cuDNN returns the
    log-sum-exp it needs); padded elsewhere on CUDA; the masked reference path on the CPU.
    """
    if zero_key_attention is None:
        half = dtype in (torch.float16, torch.bfloat16)
        wide = config.head_dim >= ZERO_KEY_MIN_HEAD_DIM
        zero_key_attention = device.type == "cuda" and half and wide and not padded_attention
    if padded_attention is None:
        padded_attention = device.type == "cuda" and not zero_key_attention
    return bool(padded_attention), bool(zero_key_attention)


class AdmitPolicy(Protocol):
    """Decides whether a frame leaving the local window enters the memory pool, and where."""

    def __call__(
        self, slot_k: torch.Tensor, slot_v: torch.Tensor, pose: torch.Tensor, cache: STCache
    ) -> torch.Tensor | None:
        """Choose memory slots for a leaving frame.

        Args:
            slot_k: (layers, B, tokens_per_frame, heads, head_dim) un-rotated keys of the frame.
            slot_v: values, same shape.
            pose: (B, 4, 4) camera-to-world pose of the frame.
            cache: the cache (read ``frame_keys``, ``poses``, ``valid`` of the memory region).

        Returns:
            None to drop the frame in every world, or a (B,) int64 tensor of memory-slot indices
            in [0, memory_frames), ``DROP`` (−1) for worlds that drop it. Must not sync the host.
        """
        ...


def drop_policy(
    slot_k: torch.Tensor, slot_v: torch.Tensor, pose: torch.Tensor, cache: STCache
) -> torch.Tensor | None:
    """Default policy: frames leaving the window are forgotten (anchor + window only)."""
    return None


@dataclass(frozen=True)
class Region:
    """A contiguous range of frame slots."""

    start: int
    frames: int

    @property
    def stop(self) -> int:
        """One past the last frame slot."""
        return self.start + self.frames


@dataclass(frozen=True)
class LayerCache:
    """One layer's view of an `STCache`: the tensors a block reads and writes, no layer index.

    Handing each block views of its own layer (instead of the cache and an integer index) keeps
    per-layer constants out of the block's code, so one ``torch.compile`` graph serves all blocks.

    Attributes:
        keys, values: (B, slots·tokens, heads, head_dim) un-rotated keys / values of the layer.
        attn_keys, attn_values: the layer's attention mirror (padded or zero-key), or None.
        invalid_keys: (B,) zero-key count of the zero-key mirror, or None.
        cos, sin: rotation tables of every cache token.
        chunk_cos, chunk_sin: rotation tables of the chunk tokens (the queries).
        chunk: token range of the chunk slots.
        head_dim: channels per head (the padded mirror has more).
    """

    keys: torch.Tensor
    values: torch.Tensor
    attn_keys: torch.Tensor | None
    attn_values: torch.Tensor | None
    invalid_keys: torch.Tensor | None
    cos: torch.Tensor
    sin: torch.Tensor
    chunk_cos: torch.Tensor
    chunk_sin: torch.Tensor
    chunk: slice
    head_dim: int

    def write_chunk(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the chunk's un-rotated keys/values (B, C·tokens, heads, head_dim), mirror included."""
        tok, d = self.chunk, self.head_dim
        self.keys[:, tok].copy_(k)
        self.values[:, tok].copy_(v)
        if self.attn_keys is not None and self.attn_values is not None:
            self.attn_keys[:, tok, :, :d] = apply_rope(self.keys[:, tok], self.chunk_cos, self.chunk_sin)
            self.attn_values[:, tok, :, :d] = self.values[:, tok]


class STCache:
    """Preallocated per-layer K/V slots with fixed RoPE positions and a validity mask.

    Attributes:
        keys: (layers, B, slots·tokens, heads, head_dim) un-rotated keys.
        values: same shape.
        valid: (B, slots) whether a frame slot holds data (the chunk slots always count as valid).
        active: (B, slots) attention switch a memory policy may use for view-guided selection.
        poses: (B, slots, 4, 4) camera-to-world pose of each frame slot.
        positions: (slots·tokens, 3) fixed (t, h, w) RoPE positions; t is the frame-slot index.
        cos, sin: rotation tables for ``positions``.
        attn_keys, attn_values: with ``padded_attention``, (layers, B, slots·tokens, heads,
            head_dim + MASK_CHANNELS) rotated keys with the validity channel, and values; with
            ``zero_key_attention``, rotated keys and values at head_dim, zero in unattended
            slots; else None.
        invalid_keys: with ``zero_key_attention``, (B,) float32 count of unattended key tokens.

    ``compile_mirror`` compiles the zero-key mirror refresh (``torch.compile``) into one pass
    over the history's keys and values; eager, the rotation alone reads and writes them several
    times, once per step for all layers.
    """

    def __init__(
        self,
        config: DiTConfig,
        batch_size: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        padded_attention: bool = False,
        zero_key_attention: bool = False,
        compile_mirror: bool = False,
    ) -> None:
        if padded_attention and zero_key_attention:
            raise ValueError("choose one of padded_attention and zero_key_attention")
        self.config = config
        self.batch_size = batch_size
        self.tokens_per_frame = config.tokens_per_frame
        self.anchor = Region(0, config.anchor_frames)
        self.memory = Region(self.anchor.stop, config.memory_frames)
        self.window = Region(self.memory.stop, config.window_frames)
        self.chunk = Region(self.window.stop, config.chunk_frames)
        self.num_slots = self.chunk.stop
        shape = (
            config.num_layers,
            batch_size,
            self.num_slots * self.tokens_per_frame,
            config.num_heads,
            config.head_dim,
        )
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.valid = torch.zeros(batch_size, self.num_slots, dtype=torch.bool, device=device)
        self.valid[:, self.chunk.start : self.chunk.stop] = True
        self.active = torch.ones(batch_size, self.num_slots, dtype=torch.bool, device=device)
        self.poses = torch.eye(4, device=device, dtype=torch.float32).repeat(batch_size, self.num_slots, 1, 1)
        slot_time = torch.arange(self.num_slots, device=device)
        self.positions = grid_positions(slot_time, *config.grid)
        self.cos, self.sin = rope_cos_sin(self.positions, config.head_dim, config.rope_theta, dtype)
        self._batch_index = torch.arange(batch_size, device=device)
        self.padded_attention = bool(padded_attention)
        self.zero_key_attention = bool(zero_key_attention)
        self.attn_keys: torch.Tensor | None = None
        self.attn_values: torch.Tensor | None = None
        self.invalid_keys: torch.Tensor | None = None
        if self.padded_attention or self.zero_key_attention:
            extra = MASK_CHANNELS if self.padded_attention else 0
            mirror = (*shape[:-1], config.head_dim + extra)
            self.attn_keys = torch.zeros(mirror, device=device, dtype=dtype)
            self.attn_values = torch.zeros(mirror, device=device, dtype=dtype)
            if self.zero_key_attention:
                self.invalid_keys = torch.zeros(batch_size, device=device, dtype=torch.float32)
            self._compiled_mirror = compile_mirror
            self._zero_key_mirror = (
                torch.compile(zero_key_mirror, dynamic=False) if compile_mirror else zero_key_mirror
            )
            self.refresh_attention()

    # ------------------------------------------------------------------ views
    def _tokens(self, region: Region) -> slice:
        return slice(region.start * self.tokens_per_frame, region.stop * self.tokens_per_frame)

    def frame_keys(self) -> torch.Tensor:
        """Keys viewed per frame slot: (layers, B, slots, tokens, heads, head_dim)."""
        return self.keys.unflatten(2, (self.num_slots, self.tokens_per_frame))

    def frame_values(self) -> torch.Tensor:
        """Values viewed per frame slot: (layers, B, slots, tokens, heads, head_dim)."""
        return self.values.unflatten(2, (self.num_slots, self.tokens_per_frame))

    def chunk_rope(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotation tables of the current-chunk tokens (the queries' positions)."""
        tok = self._tokens(self.chunk)
        return self.cos[tok], self.sin[tok]

    def attention_bias(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive (B, 1, 1, slots·tokens) bias: 0 where a slot is valid and active, −inf elsewhere."""
        attend = (self.valid & self.active).repeat_interleave(self.tokens_per_frame, dim=1)
        bias = torch.zeros(attend.shape, dtype=dtype, device=attend.device)
        return bias.masked_fill_(~attend, float("-inf"))[:, None, None, :]

    def refresh_attention(self, changed: slice | None = None) -> None:
        """Rebuild the padded attention mirror of every slot from keys, values, ``valid`` and ``active``.

        A no-op without a mirror. The mutating methods call it; code that writes ``keys``,
        ``values``, ``valid`` or ``active`` directly must call it afterwards. The zero-key form
        refreshes the history slots only (``changed``, a slot range, narrows it further): the
        chunk's mirror is written by `write_chunk` in every pass, before anything attends to it.
        """
        if self.attn_keys is None or self.attn_values is None:
            return
        d = self.config.head_dim
        attend = (self.valid & self.active).repeat_interleave(self.tokens_per_frame, dim=1)
        if self.invalid_keys is not None:  # zero-key form: unattended slots hold zeros
            # The history only: every pass writes the chunk's mirror itself (`write_chunk`), and
            # the chunk slots are always attended.
            first, stop = (0, self.chunk.start) if changed is None else (changed.start, changed.stop)
            tok = slice(first * self.tokens_per_frame, min(stop, self.chunk.start) * self.tokens_per_frame)
            # Compiled, one fused pass over all layers; eager, one layer at a time, which bounds
            # the rotation's temporaries to one layer's keys.
            layers = (
                [slice(None)] if self._compiled_mirror else [slice(i, i + 1) for i in range(len(self.keys))]
            )
            for layer in layers:
                self._zero_key_mirror(
                    self.keys[layer, :, tok],
                    self.values[layer, :, tok],
                    self.cos[tok],
                    self.sin[tok],
                    attend[:, tok],
                    self.attn_keys[layer, :, tok],
                    self.attn_values[layer, :, tok],
                )
            self.invalid_keys.copy_((~attend).sum(dim=1))
            return
        for layer in range(self.config.num_layers):  # one layer at a time bounds the temporaries
            self.attn_keys[layer, ..., :d] = apply_rope(self.keys[layer], self.cos, self.sin)
        self.attn_values[..., :d] = self.values
        score = torch.where(attend, 0.0, INVALID_KEY_SCORE).to(self.attn_keys.dtype)  # (B, slots·tokens)
        self.attn_keys[..., d] = score[None, :, :, None]

    # ------------------------------------------------------------------ writes
    def layer(self, layer: int) -> LayerCache:
        """The views of one layer that its block reads and writes."""
        chunk_cos, chunk_sin = self.chunk_rope()
        return LayerCache(
            keys=self.keys[layer],
            values=self.values[layer],
            attn_keys=None if self.attn_keys is None else self.attn_keys[layer],
            attn_values=None if self.attn_values is None else self.attn_values[layer],
            invalid_keys=self.invalid_keys,
            cos=self.cos,
            sin=self.sin,
            chunk_cos=chunk_cos,
            chunk_sin=chunk_sin,
            chunk=self._tokens(self.chunk),
            head_dim=self.config.head_dim,
        )

    def write_chunk(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the current chunk's un-rotated keys/values of one layer, (B, C·tokens, heads, head_dim)."""
        self.layer(layer).write_chunk(k, v)

    def commit_anchor(self, pose: torch.Tensor, worlds: torch.Tensor | None = None) -> None:
        """Copy the first ``anchor_frames`` chunk frames into the anchor slots.

        Call after a t = 0 forward pass over the reference frames.

        Args:
            pose: (B, anchor_frames, 4, 4) camera-to-world poses of the reference frames.
            worlds: optional (B,) bool; only these worlds take the new anchor.
        """
        a = self.anchor.frames
        src = slice(self.chunk.start, self.chunk.start + a)
        dst = slice(self.anchor.start, self.anchor.stop)
        self._copy_frames(src, dst, worlds)
        take = self._world_mask(worlds)
        self.poses[:, dst] = torch.where(
            take[:, None, None, None], pose.to(self.poses.dtype), self.poses[:, dst]
        )
        self.valid[:, dst] |= take[:, None]
        self.refresh_attention()

    def advance(self, chunk_pose: torch.Tensor, admit: AdmitPolicy = drop_policy) -> None:
        """Roll the window after the clean pass: the chunk enters the window.

        The ``chunk_frames`` oldest frames of (window | chunk) leave; each is offered to the
        memory pool through ``admit`` and is otherwise forgotten.

        Args:
            chunk_pose: (B, chunk_frames, 4, 4) poses of the frames just generated.
            admit: memory-pool admission policy.
        """
        c, w = self.chunk.frames, self.window.frames
        self.poses[:, self.chunk.start : self.chunk.stop] = chunk_pose.to(self.poses.dtype)
        start = self.window.start
        if self.memory.frames:
            fk, fv = self.frame_keys(), self.frame_values()
            for f in range(start, start + c):
                index = admit(fk[:, :, f], fv[:, :, f], self.poses[:, f], self)
                if index is not None:
                    index = torch.where(self.valid[:, f], index, torch.full_like(index, DROP))
                    self._admit_window_frame(f, index)
        if w:
            self._copy_frames(slice(start + c, start + c + w), slice(start, start + w), None)
            self.poses[:, start : start + w] = self.poses[:, start + c : start + c + w].clone()
            self.valid[:, start : start + w] = self.valid[:, start + c : start + c + w].clone()
        self.refresh_attention(slice(self.memory.start, self.window.stop))  # the anchor is unchanged

    def write_memory(self, index: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pose: torch.Tensor) -> None:
        """Write one frame per world into memory slot ``index`` (B,); ``DROP`` leaves a world as is.

        Args:
            index: (B,) int64 memory-slot index or ``DROP``.
            k: (layers, B, tokens, heads, head_dim) un-rotated keys.
            v: values, same shape.
            pose: (B, 4, 4) pose of the frame.
        """
        self._write_memory(index, k, v, pose)
        self.refresh_attention()

    def _write_memory(
        self, index: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pose: torch.Tensor
    ) -> None:
        """`write_memory` without refreshing the attention mirror (the caller refreshes once)."""
        keep = index >= 0
        slot = self.memory.start + index.clamp(min=0, max=max(self.memory.frames - 1, 0))
        b = self._batch_index
        fk, fv = self.frame_keys(), self.frame_values()
        keep_kv = keep[None, :, None, None, None]
        # Materialise the sources first: k/v may be views of the cache itself.
        new_k = torch.where(keep_kv, k, fk[:, b, slot])
        new_v = torch.where(keep_kv, v, fv[:, b, slot])
        fk[:, b, slot] = new_k
        fv[:, b, slot] = new_v
        self.poses[b, slot] = torch.where(keep[:, None, None], pose.to(self.poses.dtype), self.poses[b, slot])
        self.valid[b, slot] = self.valid[b, slot] | keep

    def _admit_window_frame(self, frame: int, index: torch.Tensor) -> None:
        """Copy history frame slot ``frame`` into memory slot ``index`` (B,), ``DROP`` keeping a world as is.

        One frame-row copy per world instead of a blend with the old memory content: a world
        that drops the frame copies it onto its own slot (destination = source), which changes
        nothing. Half the memory traffic of `_write_memory`, which must read the old content.
        """
        keep = index >= 0
        slot = self.memory.start + index.clamp(min=0, max=max(self.memory.frames - 1, 0))
        dest = torch.where(keep, slot, frame)
        rows = self._batch_index * self.num_slots + dest
        for data in (self.keys, self.values):
            per_slot = data.view(data.shape[0], self.batch_size * self.num_slots, -1)
            # A copy first: index_copy_ refuses a source that overlaps its destination.
            source = data.view(data.shape[0], self.batch_size, self.num_slots, -1)[:, :, frame].clone()
            per_slot.index_copy_(1, rows, source)
        b = self._batch_index
        self.poses[b, dest] = self.poses[:, frame].clone()
        self.valid[b, dest] = self.valid[b, dest] | keep

    def reset(self, worlds: torch.Tensor | None = None) -> None:
        """Forget anchor, memory and window (of ``worlds``, a (B,) bool mask, or all worlds)."""
        forget = self._world_mask(worlds)[:, None].clone()
        history = slice(0, self.chunk.start)
        self.valid[:, history] &= ~forget
        self.active[:, history] |= forget
        self.refresh_attention()

    # ------------------------------------------------------------------ helpers
    def _world_mask(self, worlds: torch.Tensor | None) -> torch.Tensor:
        if worlds is None:
            return torch.ones(self.batch_size, dtype=torch.bool, device=self.valid.device)
        return worlds.to(torch.bool)

    def _copy_frames(self, src: slice, dst: slice, worlds: torch.Tensor | None) -> None:
        """Copy frame slots ``src`` → ``dst`` (same length) in every layer, optionally per world."""
        overlap = src.start < dst.stop and dst.start < src.stop
        for frames in (self.frame_keys(), self.frame_values()):
            data = frames[:, :, src].clone() if overlap else frames[:, :, src]
            if worlds is not None:
                data = torch.where(
                    worlds.to(torch.bool)[None, :, None, None, None, None], data, frames[:, :, dst]
                )
            frames[:, :, dst] = data

    def memory_bytes(self) -> int:
        """Bytes held by the K/V tensors and the attention mirror (constant for the cache's lifetime)."""
        tensors = [self.keys, self.values, self.attn_keys, self.attn_values]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)
