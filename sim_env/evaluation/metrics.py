"""Image, depth and consistency metrics of generated frames against ground truth.

All functions take numpy arrays of single frames or frame lists, so they work on whatever a
`bridge.World` returns. Colours are uint8 RGB (0..255); depths are planar metres (+inf = no hit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

PIXEL_MAX = 255.0
# SSIM (Wang et al. 2004): Gaussian window; 7 px instead of 11 suits 64×64 frames.
SSIM_WINDOW = 7
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# PSNR of identical images is infinite; report this cap so that means stay finite.
PSNR_CAP_DB = 100.0
# Memory Symmetry constants (WorldScape appendix A.1.1).
SYMMETRY_K1, SYMMETRY_K2, SYMMETRY_OFFSET, SYMMETRY_ALPHA = 1e-4, 1.1, 1000.0, 0.1
# Depth AbsRel counts only ground-truth pixels inside the model's depth range.
ABSREL_MIN_M, ABSREL_MAX_M = 0.05, 100.0


def _float(image: NDArray) -> NDArray[np.float64]:
    return np.asarray(image, dtype=np.float64)


def _check_same_shape(a: NDArray, b: NDArray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {a.shape} vs {b.shape}")


def mse(pred: NDArray, target: NDArray, mask: NDArray[np.bool_] | None = None) -> float:
    """Mean squared error on the 0..255 scale (over ``mask`` (H, W) pixels when given)."""
    _check_same_shape(np.asarray(pred), np.asarray(target), "mse")
    err = (_float(pred) - _float(target)) ** 2
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return float("nan")
        err = err[mask]
    return float(err.mean())


def psnr(pred: NDArray, target: NDArray, mask: NDArray[np.bool_] | None = None) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images, capped at ``PSNR_CAP_DB``."""
    error = mse(pred, target, mask)
    if math.isnan(error):
        return error
    if error <= PIXEL_MAX**2 * 10 ** (-PSNR_CAP_DB / 10):
        return PSNR_CAP_DB
    return float(10.0 * math.log10(PIXEL_MAX**2 / error))


def _gaussian_kernel(size: int, sigma: float) -> NDArray[np.float64]:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: NDArray[np.float64], kernel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Separable 'valid' convolution over the first two axes."""
    k = len(kernel)
    rows = sum(kernel[i] * image[i : image.shape[0] - k + 1 + i] for i in range(k))
    return sum(kernel[i] * rows[:, i : rows.shape[1] - k + 1 + i] for i in range(k))


def ssim(pred: NDArray, target: NDArray) -> float:
    """Mean structural similarity of two (H, W) or (H, W, C) 8-bit images (channels averaged).

    Gaussian 7×7 window (σ = 1.5) over valid positions, constants of Wang et al. 2004.
    """
    a, b = _float(pred), _float(target)
    _check_same_shape(a, b, "ssim")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"ssim: images must be at least {SSIM_WINDOW} px on each side, got {a.shape[:2]}")
    kernel = _gaussian_kernel(SSIM_WINDOW, SSIM_SIGMA)
    c1, c2 = (SSIM_K1 * PIXEL_MAX) ** 2, (SSIM_K2 * PIXEL_MAX) ** 2
    mu_a, mu_b = _filter_valid(a, kernel), _filter_valid(b, kernel)
    var_a = _filter_valid(a * a, kernel) - mu_a**2
    var_b = _filter_valid(b * b, kernel) - mu_b**2
    cov = _filter_valid(a * b, kernel) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def depth_absrel(pred: NDArray, target: NDArray) -> float:
    """Mean |d − d*| / d* over ground-truth pixels with a finite depth inside the model's range.

    Predicted depths are clamped to that range (the model cannot represent anything else).
    """
    p, t = _float(pred), _float(target)
    _check_same_shape(p, t, "depth_absrel")
    valid = np.isfinite(t) & (t >= ABSREL_MIN_M) & (t <= ABSREL_MAX_M)
    if not valid.any():
        return float("nan")
    p = np.clip(np.nan_to_num(p[valid], nan=ABSREL_MAX_M, posinf=ABSREL_MAX_M), ABSREL_MIN_M, ABSREL_MAX_M)
    return float(np.mean(np.abs(p - t[valid]) / t[valid]))


def memory_symmetry(frames: Sequence[NDArray]) -> float:
    """WorldScape's Memory Symmetry (appendix A.1.1) of a video along a mirrored trajectory.

    Pairs (F_i, F_{n−1−i}), i < m = ⌊n/2⌋, each scored s_i = exp(−k1·max(MSE_i − a, 0)^k2) with MSE
    on the 0..255 scale, k1 = 1e-4, k2 = 1.1, a = 1000, then averaged with weights
    exp(α·|i − (n−1)/2|), α = 0.1, which emphasise the first–last pair.
    """
    n = len(frames)
    if n < 2:
        raise ValueError(f"memory_symmetry needs at least 2 frames, got {n}")
    m = n // 2
    scores, weights = [], []
    for i in range(m):
        error = mse(frames[i], frames[n - 1 - i])
        scores.append(math.exp(-SYMMETRY_K1 * max(error - SYMMETRY_OFFSET, 0.0) ** SYMMETRY_K2))
        weights.append(math.exp(SYMMETRY_ALPHA * abs(i - (n - 1) / 2)))
    return float(np.dot(scores, weights) / np.sum(weights))


def collision_agreement(predicted: Sequence[bool], engine: Sequence[bool]) -> float:
    """Fraction of steps where the world's collision flag equals the engine's."""
    if len(predicted) != len(engine):
        raise ValueError(f"collision_agreement: {len(predicted)} vs {len(engine)} flags")
    if not predicted:
        return float("nan")
    return float(np.mean(np.asarray(predicted, dtype=bool) == np.asarray(engine, dtype=bool)))


def dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Binary dilation of an (H, W) mask by a (2r+1)² square (for hand-region masks)."""
    out = np.asarray(mask, dtype=bool).copy()
    padded = np.pad(out, radius)
    h, w = out.shape
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out
