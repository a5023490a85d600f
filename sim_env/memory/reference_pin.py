"""Which pixels of a reference frame the point-cloud memory pins.

A reference frame comes from the engine, so its RGB-D is ground truth, while everything the
model generates afterwards is an estimate. Unpinned, the reference's voxels are soon averaged
with generated colours and, once the bounded cloud is full, evicted as least recently seen —
so by the time an agent comes back to where it started, the memory holds only its own
drifted guesses. Pinned voxels (`PointCloudMemory.insert(pin_mask=...)`) are never evicted
and never recoloured by generated points: a loop closes onto what the engine showed.

The hands are the exception: they move, so a pinned hand would be reprojected as a ghost
wherever it was at reset. Pixels inside each visible hand's projected bounding box (plus a
margin for the palm and fingers around the keypoints) are inserted unpinned.
"""

from __future__ import annotations

import math

import torch

# Pinned reference pixels may fill at most this share of the memory, so generated content
# always keeps room (tiny64: 4,096 pixels of 16,384 voxels; 832×480 references are not pinned).
MAX_PINNED_SHARE = 0.5
# Margin around a hand's projected keypoints, as a fraction of the image's shorter side.
HAND_MARGIN_FRACTION = 0.06
MIN_HAND_DEPTH_M = 1e-3
DEFAULT_MEMORY_CAPACITY = 16384  # voxels per world (4 full 64×64 frames)


def reference_pin_mask(
    hand_keypoints: torch.Tensor | None, K: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """(N, height, width) bool: True where a reference pixel may be pinned (away from the hands).

    Args:
        hand_keypoints: (N, hands, 21, 3) camera-frame keypoints (OpenCV), NaN (or None for
            every stream) where a stream's reference shows no hands.
        K: (N, 3, 3) intrinsics of the height × width reference image.
        height: image rows.
        width: image columns.
    """
    n = K.shape[0]
    pin = torch.ones(n, height, width, dtype=torch.bool, device=K.device)
    if hand_keypoints is None:
        return pin
    kp, K = hand_keypoints.to(K.device, torch.float32), K.to(torch.float32)
    z = kp[..., 2]
    visible = (torch.isfinite(kp).all(-1) & (z > MIN_HAND_DEPTH_M)).all(-1)  # (N, hands)
    zs = torch.where(torch.isfinite(z), z, 1.0).clamp_min(MIN_HAND_DEPTH_M)
    x, y = torch.nan_to_num(kp[..., 0]), torch.nan_to_num(kp[..., 1])
    u = K[:, None, None, 0, 0] * x / zs + K[:, None, None, 0, 2]  # (N, hands, 21)
    v = K[:, None, None, 1, 1] * y / zs + K[:, None, None, 1, 2]
    margin = HAND_MARGIN_FRACTION * min(height, width)
    u0, u1 = u.amin(-1) - margin, u.amax(-1) + margin  # (N, hands)
    v0, v1 = v.amin(-1) - margin, v.amax(-1) + margin
    cols = torch.arange(width, device=K.device, dtype=torch.float32) + 0.5
    rows = torch.arange(height, device=K.device, dtype=torch.float32) + 0.5
    in_u = (cols >= u0[..., None]) & (cols <= u1[..., None])  # (N, hands, W)
    in_v = (rows >= v0[..., None]) & (rows <= v1[..., None])  # (N, hands, H)
    hand = (in_v[..., :, None] & in_u[..., None, :] & visible[..., None, None]).any(1)
    return pin & ~hand


def hand_free_mask(
    hand_keypoints: torch.Tensor,
    hands_present: torch.Tensor | None,
    K: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """(N, height, width) bool: False inside the boxes of the hands each stream has now.

    The rule of `reference_pin_mask` applied to the current frame: space carving and the
    reference passthrough leave these pixels alone, since a hand may now cover what the
    reference showed there.

    Args:
        hand_keypoints: (N, hands, 21, 3) camera-frame keypoints of the hands now.
        hands_present: (N,) bool, the streams whose hands count (None: all).
        K: (N, 3, 3) intrinsics.
        height: image rows.
        width: image columns.
    """
    if hands_present is not None:
        present = hands_present.to(K.device)[:, None, None, None]
        hand_keypoints = torch.where(present, hand_keypoints.to(K.device), float("nan"))
    return reference_pin_mask(hand_keypoints, K, height, width)


def reference_fits(reference_pixels: int, capacity: int) -> bool:
    """Whether references of ``reference_pixels`` pixels per world may be pinned in ``capacity`` voxels."""
    return reference_pixels <= MAX_PINNED_SHARE * capacity


def memory_capacity_for(reference_pixels: int) -> int:
    """Voxels per world that hold references of ``reference_pixels`` pinned, the memory at most half full.

    Never below `DEFAULT_MEMORY_CAPACITY`: one 64×64 reference keeps the memory it always had.
    """
    return max(DEFAULT_MEMORY_CAPACITY, math.ceil(reference_pixels / MAX_PINNED_SHARE))
