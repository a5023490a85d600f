"""reference_pin_mask: every reference pixel is pinned except around the visible hands."""

from __future__ import annotations

import math

import torch

from bridge.conventions import intrinsics_from_fov
from sim_env.memory.reference_pin import HAND_MARGIN_FRACTION, reference_fits, reference_pin_mask

H, W = 48, 64
K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0)).expand(3, 3, 3)


def _hand(u: float, v: float, z: float, spread_px: float) -> torch.Tensor:
    """21 keypoints spread over ±spread_px around pixel (u, v) at depth z (camera frame)."""
    fx, cx, cy = float(K[0, 0, 0]), float(K[0, 0, 2]), float(K[0, 1, 2])
    offsets = torch.linspace(-spread_px, spread_px, 21)
    x = (u + offsets - cx) * z / fx
    y = (v + offsets - cy) * z / fx
    return torch.stack([x, y, torch.full((21,), z)], dim=-1)


def test_no_hands_pins_everything():
    assert reference_pin_mask(None, K, H, W).all()
    nan = torch.full((3, 2, 21, 3), float("nan"))
    assert reference_pin_mask(nan, K, H, W).all()


def test_hand_boxes_are_excluded_with_margin():
    hands = torch.full((3, 2, 21, 3), float("nan"))
    hands[1, 0] = _hand(20.0, 30.0, 0.5, 4.0)  # stream 1: one hand around (20, 30)
    hands[2, 1] = _hand(50.0, 10.0, 0.4, 2.0)  # stream 2: the other hand
    hands[2, 0] = _hand(10.0, 10.0, -0.3, 2.0)  # behind the camera: ignored
    pin = reference_pin_mask(hands, K, H, W)
    assert pin[0].all()
    margin = HAND_MARGIN_FRACTION * min(H, W)
    # Stream 1: the box spans u, v in [16, 24] / [26, 34] plus the margin, and nothing else.
    rows, cols = torch.nonzero(~pin[1], as_tuple=True)
    assert rows.min() == math.floor(26 - margin) and rows.max() == math.ceil(34 + margin) - 1
    assert cols.min() == math.floor(16 - margin) and cols.max() == math.ceil(24 + margin) - 1
    assert pin[2, 10, 10] and not pin[2, 10, 50]


def test_reference_fits_in_half_the_memory() -> None:
    assert reference_fits(64 * 64, 16384)  # tiny64: pinned
    assert reference_fits(8192, 16384)
    assert not reference_fits(8193, 16384)
    assert not reference_fits(832 * 480, 16384)  # wan2.1-1.3b's frames would fill the memory
