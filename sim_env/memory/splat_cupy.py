"""Fused CuPy splatting kernels: project + z-test in one kernel, resolve + gather in another.

The torch splat (`splat.splat_torch`) launches ~40 small kernels and materialises several
(B, N) temporaries; here one thread per point projects it and does `atomicMin` on the
packed (float32 depth bits << 32 | point index) key of its pixel, and one thread per
pixel decodes the winner and gathers its colour and depth. The arithmetic uses explicit
round-to-nearest intrinsics (no fused multiply-add) in the same order as
`splat.project_points`, so the result matches the torch path bit for bit on float32.

GPU only: cupy lives in the `gpu` extra and this module is imported lazily by `splat`.
Kernels launch on torch's current stream (capturable in a CUDA graph) and read and write
torch-allocated memory, so nothing is copied or synchronised.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from bridge.reprojection import MIN_PROJECTION_DEPTH
from sim_env.memory.splat import EMPTY_KEY

THREADS_PER_BLOCK = 256

_SOURCE = r"""
// ((r0 * x + r1 * y) + r2 * z) + t, each op rounded like torch's separate kernels.
__device__ __forceinline__ float affine_row(const float* r, float t, float x, float y, float z) {
  return __fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(r[0], x), __fmul_rn(r[1], y)), __fmul_rn(r[2], z)), t);
}

extern "C" __global__ void project_ztest(
    const float* __restrict__ xyz,        // (B, N, 3)
    const unsigned char* __restrict__ valid,  // (B, N)
    const float* __restrict__ rt,         // (B, 12): world->camera R row-major | t
    const float* __restrict__ intr,       // (B, 4): fx fy cx cy
    unsigned long long* __restrict__ zbuf,    // (B, H*W)
    const long long B, const long long N, const int H, const int W, const float min_depth) {
  long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (gid >= B * N) return;
  long long b = gid / N;
  long long i = gid - b * N;
  if (!valid[gid]) return;
  const float x = xyz[gid * 3 + 0], y = xyz[gid * 3 + 1], z = xyz[gid * 3 + 2];
  const float* m = rt + b * 12;
  const float xc = affine_row(m + 0, m[9], x, y, z);
  const float yc = affine_row(m + 3, m[10], x, y, z);
  const float zc = affine_row(m + 6, m[11], x, y, z);
  if (!(zc > min_depth) || isinf(zc)) return;  // also drops NaN
  const float* k = intr + b * 4;
  float u = rintf(__fadd_rn(__fdiv_rn(__fmul_rn(k[0], xc), zc), k[2]));
  float v = rintf(__fadd_rn(__fdiv_rn(__fmul_rn(k[1], yc), zc), k[3]));
  if (!(u >= 0.0f && u < (float)W && v >= 0.0f && v < (float)H)) return;
  long long pixel = (long long)v * W + (long long)u;
  unsigned long long key = ((unsigned long long)__float_as_uint(zc) << 32) | (unsigned long long)i;
  atomicMin(zbuf + b * (long long)H * W + pixel, key);
}

extern "C" __global__ void resolve_gather(
    const unsigned long long* __restrict__ zbuf,  // (B, H*W)
    const float* __restrict__ rgb_in,     // (B, N, C)
    float* __restrict__ rgb_out,          // (B, H*W, C)
    float* __restrict__ depth_out,        // (B, H*W)
    unsigned char* __restrict__ mask_out, // (B, H*W)
    const long long B, const long long N, const long long P, const int C,
    const unsigned long long empty) {
  long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (gid >= B * P) return;
  long long b = gid / P;
  unsigned long long key = zbuf[gid];
  bool hit = key != empty;
  long long idx = (long long)(key & 0xFFFFFFFFull);
  for (int c = 0; c < C; ++c) rgb_out[gid * C + c] = hit ? rgb_in[(b * N + idx) * C + c] : 0.0f;
  depth_out[gid] = hit ? __uint_as_float((unsigned int)(key >> 32)) : __int_as_float(0x7f800000);
  mask_out[gid] = hit ? 1 : 0;
}
"""


@functools.cache
def _kernels() -> tuple[Any, Any]:
    import cupy

    module = cupy.RawModule(code=_SOURCE)
    return module.get_function("project_ztest"), module.get_function("resolve_gather")


def _cupy_stream(cupy: Any, stream: torch.cuda.Stream, device_index: int) -> Any:
    """Torch's stream as a cupy stream (the newer protocol-based API when both sides have it)."""
    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None and hasattr(stream, "__cuda_stream__"):
        return from_external(stream)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device_index)


def _blocks(n: int) -> tuple[int]:
    return ((n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)


def splat_cupy(
    points_xyz: torch.Tensor,
    points_rgb: torch.Tensor,
    valid: torch.Tensor,
    K: torch.Tensor,
    pose_c2w: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as `splat.splat` for CUDA float32 points; colours come back as float32.

    Colours are gathered as float32 (the memory stores float32 colours); other dtypes are
    converted on the way in and back on the way out.
    """
    import cupy
    import numpy as np

    from sim_env.memory.splat import world_to_camera

    if not points_xyz.is_cuda:
        raise ValueError("splat_cupy needs CUDA tensors")
    B, N = valid.shape
    C = points_rgb.shape[-1]
    P = height * width
    device = points_xyz.device
    xyz = points_xyz.float().contiguous()
    rgb_in = points_rgb.float().contiguous()
    valid_u8 = valid.to(torch.uint8).contiguous()
    R, t = world_to_camera(pose_c2w.float())
    rt = torch.cat([R.reshape(B, 9), t], dim=1).contiguous()
    Kf = K.float()
    intr = torch.stack([Kf[:, 0, 0], Kf[:, 1, 1], Kf[:, 0, 2], Kf[:, 1, 2]], dim=1).contiguous()
    zbuf = torch.full((B, P), EMPTY_KEY, device=device, dtype=torch.int64)
    rgb_out = torch.empty((B, P, C), device=device, dtype=torch.float32)
    depth_out = torch.empty((B, P), device=device, dtype=torch.float32)
    mask_out = torch.empty((B, P), device=device, dtype=torch.uint8)

    project_ztest, resolve_gather = _kernels()
    with _cupy_stream(cupy, torch.cuda.current_stream(device), device.index or 0):
        if B * N > 0:
            project_ztest(
                _blocks(B * N), (THREADS_PER_BLOCK,),
                (xyz.data_ptr(), valid_u8.data_ptr(), rt.data_ptr(), intr.data_ptr(), zbuf.data_ptr(),
                 np.int64(B), np.int64(N), np.int32(height), np.int32(width),
                 np.float32(MIN_PROJECTION_DEPTH)),
            )  # fmt: skip
        resolve_gather(
            _blocks(B * P), (THREADS_PER_BLOCK,),
            (zbuf.data_ptr(), rgb_in.data_ptr(), rgb_out.data_ptr(), depth_out.data_ptr(),
             mask_out.data_ptr(), np.int64(B), np.int64(N), np.int64(P), np.int32(C),
             np.uint64(EMPTY_KEY)),
        )  # fmt: skip
    rgb = rgb_out.reshape(B, height, width, C)
    if points_rgb.dtype != torch.float32:
        rgb = rgb.to(points_rgb.dtype)
    return rgb, depth_out.reshape(B, height, width), mask_out.reshape(B, height, width).bool()
