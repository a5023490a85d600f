"""Analytic FLOPs of one `CausalDiT` forward, for achieved-TFLOP/s figures.

Counted as 2 FLOPs per multiply-add of the matrix products (linear layers, the patch
embedding as a matrix product, attention scores and weighted values); norms, RoPE,
modulation and activations are a few FLOPs per element and left out, as in the usual
transformer MFU accounting. Attention counts every key the kernel reads: a cached forward
attends to all ``cache_frames`` slots (invalid ones are masked, not skipped).
"""

from __future__ import annotations

import math

from sim_env.model.config import DiTConfig


def linear_flops(tokens: int, fan_in: int, fan_out: int) -> int:
    """FLOPs of ``tokens`` rows through a dense ``fan_in`` → ``fan_out`` layer."""
    return 2 * tokens * fan_in * fan_out


def attention_flops(queries: int, keys: int, dim: int) -> int:
    """QKᵀ plus the weighted sum over values, all heads together (``dim`` = heads · head_dim)."""
    return 2 * 2 * queries * keys * dim


def block_flops(config: DiTConfig, tokens: int, keys: int, context_tokens: int) -> int:
    """FLOPs of one DiT block over ``tokens`` queries attending to ``keys`` keys.

    A one-token context costs only its value and output projections (`CrossAttention` skips
    the query projection and the attention, whose softmax weight is 1).
    """
    d = config.dim
    if context_tokens == 1:
        cross = linear_flops(1, d, d) + linear_flops(1, d, d)  # value and output of the one token
    else:
        cross = (
            linear_flops(tokens, d, d)  # cross-attention q
            + linear_flops(context_tokens, d, 2 * d)  # cross-attention k, v of the context
            + linear_flops(tokens, d, d)  # cross-attention output
            + attention_flops(tokens, context_tokens, d)
        )
    return (
        linear_flops(tokens, d, 3 * d)  # self-attention q, k, v
        + linear_flops(tokens, d, d)  # self-attention output
        + attention_flops(tokens, keys, d)
        + cross
        + linear_flops(tokens, d, config.ffn_dim)
        + linear_flops(tokens, config.ffn_dim, d)
    )


def dit_forward_flops(
    config: DiTConfig,
    batch: int,
    frames: int | None = None,
    cached: bool = True,
    context_tokens: int | None = None,
    cache_only: bool = False,
) -> int:
    """FLOPs of one DiT forward over ``frames`` frames (default: one chunk) of ``batch`` streams.

    Args:
        config: the model shape.
        batch: streams in the forward.
        frames: frames in the forward; a cached forward takes exactly one chunk.
        cached: attention over the ST-cache (every slot) instead of a chunk-causal clip.
        context_tokens: cross-attention context length (default ``config.context_len``; the
            runtime passes Wan's identical "no prompt" tokens as one).
        cache_only: the clean cache pass (`CausalDiT.forward(cache_only=True)`): the last block
            computes only its keys and values and the head does not run.
    """
    frames = config.chunk_frames if frames is None else frames
    context_tokens = config.context_len if context_tokens is None else context_tokens
    d, t = config.dim, config.tokens_per_frame
    tokens = frames * t
    patch = math.prod(config.patch_size)
    if cached:
        blocks = config.num_layers * block_flops(config, tokens, config.cache_frames * t, context_tokens)
    else:  # chunk-causal clip: chunk c attends to chunks 0..c
        chunk_tokens = config.chunk_frames * t
        chunks = math.ceil(frames / config.chunk_frames)
        per_block = block_flops(config, tokens, 0, context_tokens) + sum(
            attention_flops(chunk_tokens, (c + 1) * chunk_tokens, d) for c in range(chunks)
        )
        blocks = config.num_layers * per_block
    embed = linear_flops(tokens, config.in_channels * patch, d) + linear_flops(
        context_tokens, config.text_dim, d
    )
    head = linear_flops(tokens, d, config.out_channels * patch)
    if cache_only:  # the last block stops after K, V; no head
        last = block_flops(config, tokens, config.cache_frames * t, context_tokens)
        return batch * (blocks - last + linear_flops(tokens, d, 2 * d) + embed)
    return batch * (blocks + embed + head)


def step_flops(
    config: DiTConfig,
    batch: int,
    denoising_steps: int,
    cache_pass: bool = True,
    context_tokens: int | None = None,
) -> int:
    """DiT FLOPs of one runtime step: the denoising forwards plus the clean cache pass."""
    denoise = dit_forward_flops(config, batch, context_tokens=context_tokens) * denoising_steps
    clean = dit_forward_flops(config, batch, context_tokens=context_tokens, cache_only=True)
    return denoise + (clean if cache_pass else 0)
