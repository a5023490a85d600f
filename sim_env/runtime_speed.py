"""How the generative runtime runs its DiT fast: the model-side speed options in one place.

`GenerativeRuntime` takes these as keyword arguments; all of them leave the model's function
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

import torch

from bridge.types import InvalidArgumentError
from sim_env.model.dit import CausalDiT
from sim_env.model.fp8 import fp8_supported, to_fp8_linears
from sim_env.model.fp8_kernel import triton_available

log = logging.getLogger(__name__)


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
