"""Forward splatting with a z-buffer, covisibility and photometric error (bridge/reprojection.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.conventions import intrinsics_from_fov, look_at, project, rot_y, se3, transform_points
from bridge.reprojection import covisible_mask, photometric_error, warp_to_view

H, W = 24, 32


def _textured(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_identity_warp_reproduces_the_frame():
    K = intrinsics_from_fov(W, H, 60.0)
    pose = look_at([0.0, 0.0, 1.0], [1.0, 0.2, 0.8])
    rgb = _textured()
    depth = np.random.default_rng(1).uniform(1.0, 5.0, (H, W)).astype(np.float32)
    depth[3, 4] = np.inf  # sky: nothing to splat
    warped, warped_depth, valid = warp_to_view(rgb, depth, K, pose, K, pose, H, W)
    assert warped.dtype == np.uint8 and warped_depth.dtype == np.float32 and valid.dtype == bool
    expected_valid = np.isfinite(depth)
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_array_equal(warped[valid], rgb[valid])
    np.testing.assert_allclose(warped_depth[valid], depth[valid], rtol=1e-6)
    assert np.isinf(warped_depth[3, 4]) and not valid[3, 4]
    assert np.all(warped[~valid] == 0)


def test_fronto_parallel_plane_shifts_by_disparity():
    """A camera moved sideways sees a plane at depth Z shifted by f * t / Z pixels."""
    K = np.array([[10.0, 0.0, 15.5], [0.0, 10.0, 11.5], [0.0, 0.0, 1.0]])
    depth = np.full((H, W), 2.0, dtype=np.float32)
    rgb = _textured()
    src = np.eye(4)
    dst = se3(np.eye(3), [0.4, 0.0, 0.0])  # 0.4 m right: content moves 10 * 0.4 / 2 = 2 px left
    warped, warped_depth, valid = warp_to_view(rgb, depth, K, src, K, dst, H, W)
    np.testing.assert_array_equal(warped[:, : W - 2], rgb[:, 2:])
    assert not valid[:, W - 2 :].any()  # disocclusion at the border: holes, not garbage
    assert np.all(np.isinf(warped_depth[:, W - 2 :]))


@pytest.mark.parametrize(
    ("near_u", "far_u", "shift", "landing"),
    [(15, 10, 1.0, 5), (1, 6, -1.0, 11)],  # near pixel after / before the far one in memory
)
def test_z_buffer_keeps_the_nearest_surface(near_u, far_u, shift, landing):
    """Two source pixels landing on one destination pixel: the nearer one wins.

    With f = 10 and a sideways move t, a pixel at depth z lands at u - f t / z.
    """
    K = np.array([[10.0, 0.0, 9.5], [0.0, 10.0, 0.0], [0.0, 0.0, 1.0]])
    rgb = np.zeros((1, 20, 3), np.uint8)
    depth = np.full((1, 20), np.inf, np.float32)
    rgb[0, near_u], depth[0, near_u] = (255, 0, 0), 1.0
    rgb[0, far_u], depth[0, far_u] = (0, 255, 0), 2.0
    dst = se3(np.eye(3), [shift, 0.0, 0.0])
    warped, warped_depth, valid = warp_to_view(rgb, depth, K, np.eye(4), K, dst, 1, 20)
    assert valid.sum() == 1 and valid[0, landing]
    assert warped_depth[0, landing] == pytest.approx(1.0)
    assert tuple(warped[0, landing]) == (255, 0, 0)


def test_points_behind_the_destination_are_dropped():
    K = intrinsics_from_fov(W, H, 60.0)
    depth = np.full((H, W), 1.0, np.float32)  # a plane 1 m in front of the source camera
    beyond = se3(rot_y(math.pi), [0.0, 0.0, 3.0])  # beyond the plane, looking back: sees it
    between = se3(rot_y(math.pi), [0.0, 0.0, 0.5])  # between source and plane, looking back
    _, _, valid_beyond = warp_to_view(_textured(), depth, K, np.eye(4), K, beyond, H, W)
    _, _, valid_between = warp_to_view(_textured(), depth, K, np.eye(4), K, between, H, W)
    assert valid_beyond.any()
    assert not valid_between.any()  # the plane is behind that camera


@settings(max_examples=25, deadline=None)
@given(tx=st.floats(-0.3, 0.3), ty=st.floats(-0.3, 0.3), tz=st.floats(-0.3, 0.3), yaw=st.floats(-0.2, 0.2))
def test_warped_pixels_are_reprojections_of_the_source_points(tx, ty, tz, yaw):
    K = intrinsics_from_fov(W, H, 70.0)
    src = look_at([0.0, 0.0, 1.5], [3.0, 0.0, 1.5])
    dst = src @ se3(rot_y(yaw), [tx, ty, tz])
    depth = np.random.default_rng(2).uniform(2.0, 4.0, (H, W)).astype(np.float32)
    _, warped_depth, valid = warp_to_view(_textured(), depth, K, src, K, dst, H, W)
    # Every landed depth is the planar depth of some source point in the destination camera.
    v, u = np.mgrid[0:H, 0:W].astype(float)
    points_src = np.stack([(u - K[0, 2]) / K[0, 0] * depth, (v - K[1, 2]) / K[1, 1] * depth, depth], -1)
    points_dst = transform_points(np.linalg.inv(dst) @ src, points_src.reshape(-1, 3))
    uv, z = project(K, points_dst)
    landed = np.rint(uv).astype(int)
    inside = (landed[:, 0] >= 0) & (landed[:, 0] < W) & (landed[:, 1] >= 0) & (landed[:, 1] < H) & (z > 0)
    assert valid.sum() <= inside.sum()
    nearest = np.full((H, W), np.inf)
    np.minimum.at(nearest, (landed[inside, 1], landed[inside, 0]), z[inside])
    np.testing.assert_allclose(warped_depth[valid], nearest[valid], rtol=1e-6)
    np.testing.assert_array_equal(valid, np.isfinite(nearest))


def test_covisible_mask_rejects_occlusion_and_sky():
    warped_depth = np.array([[1.0, 2.0, 3.0, np.inf, 2.0]], np.float32)
    valid = np.array([[True, True, True, False, True]])
    dst_depth = np.array([[1.02, 1.0, 3.5, 2.0, np.inf]], np.float32)
    mask = covisible_mask(warped_depth, valid, dst_depth, rel_tol=0.05)
    # same surface | occluded in dst | hidden-from-src surface | hole | sky in dst
    np.testing.assert_array_equal(mask, [[True, False, False, False, False]])


def test_photometric_error_units_and_empty_mask():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 10, np.uint8)
    b[0, 0] = 255
    assert photometric_error(a, b, np.array([[False, True], [True, True]])) == pytest.approx(10.0)
    assert photometric_error(a, b, np.ones((2, 2), bool)) == pytest.approx((255 + 30) / 4)
    assert math.isnan(photometric_error(a, b, np.zeros((2, 2), bool)))
