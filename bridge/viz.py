"""Turning observations into pictures people look at: depth colouring, panels, videos."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Depth is shown on a log scale between these distances: indoor scenes span ~0.3–20 m.
DEPTH_VIS_NEAR_M = 0.3
DEPTH_VIS_FAR_M = 20.0
# A perceptually ordered ramp (dark blue → teal → yellow), sampled at 5 stops.
_RAMP = np.array(
    [[48, 18, 59], [40, 110, 190], [30, 170, 140], [170, 210, 60], [250, 240, 100]], dtype=np.float64
)
_SKY_COLOUR = np.array([0, 0, 0], dtype=np.uint8)


def colorize_depth(
    depth: NDArray[np.float32], near: float = DEPTH_VIS_NEAR_M, far: float = DEPTH_VIS_FAR_M
) -> NDArray[np.uint8]:
    """(H, W) metres → (H, W, 3) uint8; near is bright, +inf (no hit) is black.

    A fixed [near, far] range (not per-frame normalisation) keeps colours stable in videos.
    """
    d = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(d)
    clipped = np.clip(np.where(finite, d, far), near, far)
    t = 1.0 - np.log(clipped / near) / np.log(far / near)
    pos = t * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    rgb = (_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).round().astype(np.uint8)
    rgb[~finite] = _SKY_COLOUR
    return rgb


def side_by_side(panels: Iterable[NDArray[np.uint8]], gap: int = 2) -> NDArray[np.uint8]:
    """Concatenates equally tall RGB panels left to right with a white gap."""
    panels = list(panels)
    h = panels[0].shape[0]
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    out: list[NDArray[np.uint8]] = []
    for i, p in enumerate(panels):
        if i:
            out.append(spacer)
        out.append(p)
    return np.concatenate(out, axis=1)


def upscale(image: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """Nearest-neighbour upscaling so 64x64 frames are visible in a video player."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def write_video(path: str | Path, frames: list[NDArray[np.uint8]], fps: int = 10) -> Path:
    """Writes an MP4 (H.264 via imageio-ffmpeg), or an animated GIF for a .gif path.

    Without imageio-ffmpeg (minimal GPU images) an MP4 request writes a GIF next to it
    instead of failing late inside another imageio plugin; the returned path says which.
    """
    import imageio.v2 as imageio

    path = Path(path)
    if path.suffix.lower() != ".gif" and not _has_ffmpeg():
        log.warning("imageio-ffmpeg is not installed: writing %s as a GIF", path.name)
        path = path.with_suffix(".gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    even = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]  # yuv420 needs even sizes
    if path.suffix.lower() == ".gif":
        imageio.mimsave(path, even, duration=1.0 / fps, loop=0)
    else:
        imageio.mimsave(path, even, fps=fps, macro_block_size=1)
    return path


def _has_ffmpeg() -> bool:
    """Whether imageio can encode MP4 here (imageio-ffmpeg and its bundled binary)."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return False
    return True
