"""3D rotary position embedding with explicit integer positions.

Each token has a position (t, h, w). As in Wan2.1, the head dimension is split into rotation
pairs: ``c = head_dim // 2`` pairs, of which ``c - 2·(c // 3)`` rotate with time and ``c // 3``
each with height and width. Pairs are interleaved, (x[2i], x[2i+1]), the layout Wan2.1's
``view_as_complex`` uses, so pretrained Wan weights see the same rotations.

Positions are passed in explicitly instead of being derived from a sequence length. The
ST-cache gives every slot a FIXED time position (InSpatio-World §3.2.1, position-index fixing),
so a 10,000-step rollout only ever uses positions below the number of cache slots and never
extrapolates. Rotations are computed with real cos/sin (no complex dtype) so they run under
``torch.compile`` and CUDA graphs.
"""

from __future__ import annotations

import torch

# Spatial positions never exceed the token grid, time positions never exceed the cache slots;
# positions are stored as int64 and turned into angles in float64 for accuracy.
_ANGLE_DTYPE = torch.float64


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Rotation pairs given to (time, height, width) for a head of ``head_dim`` channels."""
    c = head_dim // 2
    return c - 2 * (c // 3), c // 3, c // 3


def rope_inverse_frequencies(
    head_dim: int, theta: float, device: torch.device | None = None
) -> list[torch.Tensor]:
    """Per-axis inverse frequencies ``θ^(-2i/d_axis)``, one vector per axis (t, h, w)."""
    out = []
    for pairs in rope_split(head_dim):
        axis_dim = 2 * pairs
        exponent = torch.arange(0, axis_dim, 2, dtype=_ANGLE_DTYPE, device=device) / axis_dim
        out.append(1.0 / theta**exponent)
    return out


def grid_positions(time: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Positions (len(time)·height·width, 3) of frame-major token grids.

    Args:
        time: (F,) integer time position of each frame.
        height: token rows per frame.
        width: token columns per frame.

    Returns:
        int64 (F·h·w, 3) positions in the (frame, row, column) order of a flattened Conv3d output.
    """
    f = time.shape[0]
    dev = time.device
    t = time.to(torch.int64).view(f, 1, 1).expand(f, height, width)
    h = torch.arange(height, device=dev).view(1, height, 1).expand(f, height, width)
    w = torch.arange(width, device=dev).view(1, 1, width).expand(f, height, width)
    return torch.stack([t, h, w], dim=-1).reshape(-1, 3)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation tables for ``positions``.

    Args:
        positions: (L, 3) integer (t, h, w) positions.
        head_dim: per-head width.
        theta: RoPE base.
        dtype: dtype of the returned tables.

    Returns:
        cos, sin of shape (L, head_dim // 2) — one angle per rotation pair.
    """
    inv = rope_inverse_frequencies(head_dim, theta, positions.device)
    pos = positions.to(_ANGLE_DTYPE)
    angles = torch.cat([pos[:, axis : axis + 1] * inv[axis] for axis in range(3)], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of ``x`` (B, L, heads, head_dim) by tables (L, head_dim // 2)."""
    pairs = x.unflatten(-1, (-1, 2))
    x_even, x_odd = pairs[..., 0], pairs[..., 1]
    c = cos[:, None, :].to(x.dtype)
    s = sin[:, None, :].to(x.dtype)
    rotated = torch.stack([x_even * c - x_odd * s, x_even * s + x_odd * c], dim=-1)
    return rotated.flatten(-2)
