"""One-pass row-wise FP8 quantisation on CUDA (a Triton kernel), for `Fp8Linear`'s activations.

Compiled blocks fuse `sim_env.model.fp8.quantize_rows` into the kernel that makes its input, but
Inductor builds that as a looped reduction: it reads (and recomputes) each row twice, once for the
row's maximum and once to scale and cast. On the Wan blocks' 8,960-wide FFN hidden rows that took
about as long as the FP8 product it feeds. This kernel holds a whole row in registers: one read
of the bf16 row, one write of the e4m3 row and its scale. It can also apply the FFN's tanh GELU
on the way in (``gelu=True``), so the hidden activation is never written in bf16 at all.

It is a ``torch.library`` custom op, so ``torch.compile`` and CUDA graphs call it as one opaque
kernel. Without Triton (the CPU wheels) `triton_available` is False and `Fp8Linear` uses the
PyTorch reference.
"""

from __future__ import annotations

import importlib.util

import torch

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8_DTYPE).max  # 448
# Smallest row amplitude a scale is computed from: an all-zero row quantises to zeros, not NaN.
AMAX_FLOOR = 1e-12
# Rows wider than this would not fit one program's registers (the Wan FFN hidden is 8,960).
MAX_ROW = 16384
WIDE_ROW = 4096  # from here a row gets 16 warps instead of 4
# sqrt(2 / pi) and the cubic coefficient of the tanh GELU (as torch.nn.GELU(approximate="tanh")).
GELU_SQRT_2_OVER_PI = 0.7978845608028654
GELU_CUBIC = 0.044715


def triton_available() -> bool:
    """True where the Triton kernel can run (Triton importable and CUDA present)."""
    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The FFN's activation, the reference for the kernel's ``gelu=True``."""
    return torch.nn.functional.gelu(x, approximate="tanh")


if triton_available():
    import triton
    import triton.language as tl

    # Triton kernels read module globals only as constexpr.
    _FP8_MAX = tl.constexpr(FP8_MAX)
    _AMAX_FLOOR = tl.constexpr(AMAX_FLOOR)
    _SQRT_2_OVER_PI = tl.constexpr(GELU_SQRT_2_OVER_PI)
    _CUBIC = tl.constexpr(GELU_CUBIC)

    @triton.jit
    def _quantize_rows_kernel(
        x_ptr, out_ptr, scale_ptr, n_cols, x_row_stride, GELU: tl.constexpr, BLOCK: tl.constexpr
    ):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK)
        inside = cols < n_cols
        x = tl.load(x_ptr + row * x_row_stride + cols, mask=inside, other=0.0).to(tl.float32)
        if GELU:  # 0.5·x·(1 + tanh(u)) = x·sigmoid(2u)
            u = _SQRT_2_OVER_PI * (x + _CUBIC * x * x * x)
            x = x * tl.sigmoid(2.0 * u)
        amax = tl.maximum(tl.max(tl.abs(x), axis=0), _AMAX_FLOOR)
        scale = amax / _FP8_MAX
        q = tl.minimum(tl.maximum(x / scale, -_FP8_MAX), _FP8_MAX)
        tl.store(out_ptr + row * n_cols + cols, q.to(tl.float8e4nv), mask=inside)
        tl.store(scale_ptr + row, scale)

    @torch.library.custom_op("genworld::fp8_quantize_rows", mutates_args=())
    def _quantize_rows_op(x: torch.Tensor, gelu: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        m, k = x.shape
        rows = torch.empty((m, k), device=x.device, dtype=FP8_DTYPE)
        scale = torch.empty((m, 1), device=x.device, dtype=torch.float32)
        if m:
            _quantize_rows_kernel[(m,)](
                x,
                rows,
                scale,
                k,
                x.stride(0),
                GELU=gelu,
                BLOCK=triton.next_power_of_2(k),
                num_warps=16 if k >= WIDE_ROW else 4,
            )
        return rows, scale

    @_quantize_rows_op.register_fake
    def _(x: torch.Tensor, gelu: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return x.new_empty(x.shape, dtype=FP8_DTYPE), x.new_empty((x.shape[0], 1), dtype=torch.float32)


def quantize_rows_fast(x: torch.Tensor, gelu: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(e4m3 rows, float32 scales (M, 1)) of ``gelu_tanh(x)`` or ``x`` (M, K), K ≤ `MAX_ROW`, in one pass.

    Needs `triton_available` and a CUDA tensor; same contract as `sim_env.model.fp8.quantize_rows`.
    """
    if x.dim() != 2 or x.shape[1] > MAX_ROW:
        raise ValueError(f"quantize_rows_fast takes (M, K ≤ {MAX_ROW}) rows, got {tuple(x.shape)}")
    return torch.ops.genworld.fp8_quantize_rows(x, gelu)
