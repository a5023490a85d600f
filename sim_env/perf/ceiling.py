"""The device's bf16 matrix-product ceiling, measured in the same run as a benchmark.

Achieved DiT TFLOP/s only mean something next to what this GPU reaches on a large square
bf16 GEMM right now (clocks, power caps and neighbours vary between machines and runs).
"""

from __future__ import annotations

import statistics

import torch

CEILING_SIZE = 8192  # large enough to saturate an H100/H200 tensor cores
CEILING_WARMUP = 3
CEILING_REPEATS = 20


def matmul_ceiling_tflops(
    device: str | torch.device = "cuda",
    size: int = CEILING_SIZE,
    dtype: torch.dtype = torch.bfloat16,
    repeats: int = CEILING_REPEATS,
) -> float:
    """Median TFLOP/s of ``size``³ matrix products in ``dtype``, timed with CUDA events.

    On the CPU (no events) it times with the wall clock, for tests; the figure is then only
    indicative.
    """
    device = torch.device(device)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    for _ in range(CEILING_WARMUP):
        torch.matmul(a, b, out=out)
    flops = 2.0 * size**3
    seconds = [_time_once(a, b, out) for _ in range(repeats)]
    return flops / statistics.median(seconds) / 1e12


def _time_once(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> float:
    if a.device.type == "cuda":
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.matmul(a, b, out=out)
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / 1e3
    import time

    t0 = time.perf_counter()
    torch.matmul(a, b, out=out)
    return time.perf_counter() - t0
