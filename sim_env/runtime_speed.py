"""How the generative runtime runs its DiT fast: the model-side speed options in one place.

`GenerativeRuntime(speed=SpeedOptions(...))` takes them; all of them leave the model's function
unchanged (the GPU tests in ``tests/sim_env/test_speed_gpu.py`` compare each with its reference
form on fixed inputs). Applied in this order, because each works on what the previous left:

- ``fuse_qkv`` (None = on CUDA): one fused q/k/v product per self-attention
  (`SelfAttention.fuse_projections`); at Wan's 4,680 tokens three dim-wide products are short
  of full waves. The CPU keeps the separate products, bit-identical to earlier releases.
- ``fp8_linears``: the blocks' dense layers in FP8 with row-wise scales (`sim_env.model.fp8`;
  CUDA of compute capability ≥ 8.9, or the CPU). On CUDA with Triton the activations are
  quantised by a one-pass kernel (`sim_env.model.fp8_kernel`, the FFN's GELU folded in);
  elsewhere by the PyTorch reference, which ``compile_blocks`` fuses into the producing kernel.
- ``compile_blocks``: ``torch.compile`` each DiT block (one graph serves all, as each block gets
  its own cache views) with ``compile_mode`` (None = default; e.g.
  ``"max-autotune-no-cudagraphs"`` autotunes the products). It compiles on the first step, and a
  CUDA graph captures the compiled kernels afterwards. The runtime then also compiles the
  ST-cache's zero-key mirror refresh, the memory-pool admission and the TAEHV codec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from bridge.types import InvalidArgumentError
from sim_env.model.dit import CausalDiT
from sim_env.model.fp8 import fp8_supported, to_fp8_linears
from sim_env.model.fp8_kernel import triton_available

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedOptions:
    """How the runtime runs, never what it computes (the GPU tests compare each with its reference).

    Attributes:
        padded_attention: keep the ST-cache's padded attention mirror so cached attention runs
            mask-free on FlashAttention / cuDNN (`sim_env.model.st_cache`); None = on CUDA where
            zero-key attention is not chosen. The CPU default keeps the masked reference path
            (bit-identical to earlier releases).
        zero_key_attention: the zero-key mirror with the exact log-sum-exp correction instead
            (`sim_env.model.st_cache`); None = on CUDA in half precision with head_dim ≥ 64,
            where the padded form's 8 extra channels push cuDNN onto a wider, slower tile.
        compile_blocks, compile_mode, fuse_qkv, fp8_linears: the model's options above;
            ``compile_blocks`` also compiles the ST-cache's zero-key mirror refresh and the TAEHV
            codec.
        overlap_decode: latent configs decode the chunk and insert it into the memory on a second
            CUDA stream while the clean cache pass runs (neither needs the other's result); None =
            on CUDA. The phase split then shows both, overlapping.
    """

    padded_attention: bool | None = None
    zero_key_attention: bool | None = None
    compile_blocks: bool = False
    compile_mode: str | None = None
    fuse_qkv: bool | None = None
    fp8_linears: bool = False
    overlap_decode: bool | None = None


DEFAULT_SPEED = SpeedOptions()


def speed_up_model(
    model: CausalDiT,
    device: torch.device,
    fuse_qkv: bool | None = None,
    fp8_linears: bool = False,
    compile_blocks: bool = False,
    compile_mode: str | None = None,
) -> bool:
    """Apply the options to ``model`` (on ``device``) in place; returns whether q/k/v were fused."""
    fuse = device.type == "cuda" if fuse_qkv is None else bool(fuse_qkv)
    if fuse:
        for block in model.blocks:
            block.self_attn.fuse_projections()
    if fp8_linears:
        if not fp8_supported(device):
            raise InvalidArgumentError(f"fp8_linears needs compute capability ≥ 8.9 on {device}")
        row_kernel = device.type == "cuda" and triton_available()
        converted = to_fp8_linears(model.blocks, row_kernel=row_kernel)
        quantiser = "the Triton row kernel" if row_kernel else "PyTorch"
        log.info(
            "fp8_linears: %d dense layers of the DiT blocks run in FP8 (inputs: %s)", converted, quantiser
        )
    if compile_blocks:
        for block in model.blocks:
            block.compile(dynamic=False, mode=compile_mode)
    return fuse
