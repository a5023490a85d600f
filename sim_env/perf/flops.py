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


def dit_forward_flops(config: DiTConfig, batch: int, frames: int | None = None, cached: bool = True) -> int:
    """FLOPs of one DiT forward over ``frames`` frames (default: one chunk) of ``batch`` streams.

    Args:
        config: the model shape.
        batch: streams in the forward.
        frames: frames in the forward; a cached forward takes exactly one chunk.
        cached: attention over the ST-cache (every slot) instead of a chunk-causal clip.
    """
    frames = config.chunk_frames if frames is None else frames
    d, t = config.dim, config.tokens_per_frame
    tokens = frames * t
    keys_per_query = config.cache_frames * t if cached else None
    patch = math.prod(config.patch_size)
    per_block = (
        linear_flops(tokens, d, 3 * d)  # self-attention q, k, v
        + linear_flops(tokens, d, d)  # self-attention output
        + linear_flops(tokens, d, d)  # cross-attention q
        + linear_flops(config.context_len, d, 2 * d)  # cross-attention k, v of the context
        + linear_flops(tokens, d, d)  # cross-attention output
        + attention_flops(tokens, config.context_len, d)
        + linear_flops(tokens, d, config.ffn_dim)
        + linear_flops(tokens, config.ffn_dim, d)
    )
    if cached:
        per_block += attention_flops(tokens, keys_per_query, d)
    else:  # chunk-causal clip: chunk c attends to chunks 0..c
        chunk_tokens = config.chunk_frames * t
        chunks = math.ceil(frames / config.chunk_frames)
        per_block += sum(attention_flops(chunk_tokens, (c + 1) * chunk_tokens, d) for c in range(chunks))
    embed = linear_flops(tokens, config.in_channels * patch, d) + linear_flops(
        config.context_len, config.text_dim, d
    )
    head = linear_flops(tokens, d, config.out_channels * patch)
    return batch * (config.num_layers * per_block + embed + head)


def step_flops(config: DiTConfig, batch: int, denoising_steps: int, cache_pass: bool = True) -> int:
    """DiT FLOPs of one runtime step: the denoising forwards plus the clean cache pass."""
    return dit_forward_flops(config, batch) * (denoising_steps + int(cache_pass))
