"""FP8 (e4m3) linear layers for inference: row-wise scaled `torch._scaled_mm`.

At the ``wan2.1-1.3b`` token counts the DiT's linear layers are compute-bound, and Hopper's FP8
tensor cores run them about twice as fast as bf16 in theory (1.3–1.7× measured at these shapes).
Each `Fp8Linear` keeps its weight quantised once, per output row; each input row (token) is
quantised on the fly with its own scale::

    s_x = max|x_row| / 448,   s_w = max|w_row| / 448,   y = (x / s_x)₈ · (w / s_w)₈ᵀ · s_x · s_wᵀ + b

Per-token and per-channel scales keep an outlier token or channel from crushing the others'
precision (the usual row-wise recipe). The on-the-fly quantisation is a reduction and a cast over
the activations: eager it costs more than the faster product saves, but inside compiled blocks
(``torch.compile``) it fuses into the norm / modulation / activation kernel that makes the input, so
FP8 is meant for ``SpeedOptions(fp8_linears=True, compile_blocks=True)``. On CUDA with
Triton the runtime quantises with the one-pass kernel of `sim_env.model.fp8_kernel` instead
(``row_kernel``), which also takes over the FFN's GELU: Inductor's fused form reads each row twice.

`to_fp8_linears` converts the DiT blocks' dense layers (self- and cross-attention projections
and the FFN); embeddings, the time projection and the head stay in their dtype, as they are
small and set the output's precision. Inference only: the quantised weights are buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from sim_env.model.fp8_kernel import (
    AMAX_FLOOR,
    FP8_DTYPE,
    FP8_MAX,
    MAX_ROW,
    gelu_tanh,
    quantize_rows_fast,
)

# `torch._scaled_mm` needs both matrix dimensions of the weight divisible by 16 on CUDA.
FP8_ALIGNMENT = 16


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise the rows of a 2-D tensor to e4m3 with one float32 scale per row.

    Returns:
        (the FP8 rows (M, K), the scales (M, 1)) with ``rows · scales ≈ x``.
    """
    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp_min(AMAX_FLOOR)
    scale = amax / FP8_MAX
    rows = (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return rows, scale


def fp8_supported(device: torch.device | str) -> bool:
    """True where `torch._scaled_mm` runs row-wise FP8: the CPU, or CUDA of compute capability ≥ 8.9."""
    device = torch.device(device)
    if device.type == "cpu":
        return True
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


class Fp8Linear(nn.Module):
    """A frozen `nn.Linear` whose product runs in FP8 with row-wise scales (see the module doc).

    Args:
        linear: the layer to quantise (its weight and bias are copied, the layer is not kept).
        out_dtype: dtype of the output and of the bias (the model's activation dtype).
        row_kernel: quantise CUDA inputs with the one-pass Triton kernel
            (`sim_env.model.fp8_kernel`) instead of the PyTorch reference.

    ``input_gelu`` (set by `to_fp8_linears` when it folds an FFN's activation in) applies the tanh
    GELU to the input first, inside the kernel.
    """

    def __init__(
        self, linear: nn.Linear, out_dtype: torch.dtype | None = None, row_kernel: bool = False
    ) -> None:
        super().__init__()
        # Rows wider than the kernel's register budget keep the PyTorch quantisation.
        self.row_kernel, self.input_gelu = bool(row_kernel) and linear.in_features <= MAX_ROW, False
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype if out_dtype is None else out_dtype
        weight, scale = quantize_rows(linear.weight.detach())
        self.register_buffer("weight_fp8", weight)  # (N, K), row-major: .t() is the column-major B
        self.register_buffer("weight_scale", scale.reshape(1, -1).contiguous())  # (1, N)
        bias = None if linear.bias is None else linear.bias.detach().to(self.out_dtype)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs (..., in_features) → outputs (..., out_features) in ``out_dtype``."""
        flat = x.reshape(-1, self.in_features)
        if self.row_kernel and flat.is_cuda:
            rows, scale = quantize_rows_fast(flat, gelu=self.input_gelu)
        else:
            rows, scale = quantize_rows(gelu_tanh(flat) if self.input_gelu else flat)
        # Row-wise _scaled_mm takes a bias only with a half-precision output.
        fused_bias = self.bias is not None and self.out_dtype in (torch.bfloat16, torch.float16)
        out = torch._scaled_mm(
            rows,
            self.weight_fp8.t(),
            scale_a=scale,
            scale_b=self.weight_scale,
            bias=self.bias if fused_bias else None,
            out_dtype=self.out_dtype,
            use_fast_accum=True,
        )
        if self.bias is not None and not fused_bias:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        """Shown by ``print(model)``: the shape and the number format."""
        gelu = ", tanh GELU on the input" if self.input_gelu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3 row-wise{gelu}"


def to_fp8_linears(blocks: nn.Module, out_dtype: torch.dtype | None = None, row_kernel: bool = False) -> int:
    """Replace every `nn.Linear` inside ``blocks`` (in place) by an `Fp8Linear`; returns how many.

    Layers whose shape `torch._scaled_mm` cannot take (a dimension not divisible by 16) stay.
    With ``row_kernel`` (see `Fp8Linear`) an FFN's ``[Linear, GELU(tanh), Linear]`` also hands its
    GELU to the second layer's input quantisation (the GELU becomes an identity), so the hidden
    activation goes from the first product to FP8 without a bf16 round trip.
    """
    converted = 0
    for parent in list(blocks.modules()):
        for name, child in list(parent.named_children()):
            aligned = (
                isinstance(child, nn.Linear)
                and child.in_features % FP8_ALIGNMENT == 0
                and child.out_features % FP8_ALIGNMENT == 0
            )
            if aligned:
                setattr(parent, name, Fp8Linear(child, out_dtype, row_kernel))
                converted += 1
    if row_kernel:
        for module in blocks.modules():
            folds = (
                isinstance(module, nn.Sequential)
                and len(module) == 3
                and isinstance(module[1], nn.GELU)
                and module[1].approximate == "tanh"
                and isinstance(module[2], Fp8Linear)
            )
            if folds:
                module[1] = nn.Identity()
                module[2].input_gelu = True
    return converted
