"""Conventions: property tests (hypothesis) and the shared Python/C++ test vectors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bridge import conventions as cv

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "conventions_vectors.json").read_text())
ATOL = VECTORS["atol"]

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
quats = arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 1e-3)
vec3 = arrays(np.float64, 3, elements=finite)
angles = st.floats(-179.0, 179.0)


@given(quats)
def test_quaternion_matrix_round_trip(q):
    R = cv.quat_to_matrix(q)
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-9)
    assert math.isclose(np.linalg.det(R), 1.0, abs_tol=1e-9)
    back, expected = cv.matrix_to_quat(R), cv.normalize_quat(q)
    assert np.allclose(back, expected, atol=1e-7) or np.allclose(back, -expected, atol=1e-7)


@given(quats, quats)
def test_quaternion_product_composes_rotations(a, b):
    lhs = cv.quat_to_matrix(cv.quat_multiply(a, b))
    assert np.allclose(lhs, cv.quat_to_matrix(a) @ cv.quat_to_matrix(b), atol=1e-9)


@given(arrays(np.float64, 3, elements=st.floats(-3.0, 3.0)))
def test_axis_angle_round_trip(rotvec):
    R = cv.axis_angle_to_matrix(rotvec)
    back = cv.axis_angle_to_matrix(cv.matrix_to_axis_angle(R))
    assert np.allclose(R, back, atol=1e-8)


@given(quats, vec3, arrays(np.float64, (5, 3), elements=finite))
def test_se3_inverse_undoes_transform(q, t, points):
    T = cv.se3(cv.quat_to_matrix(q), t)
    assert np.allclose(cv.se3_inverse(T) @ T, np.eye(4), atol=1e-9)
    back = cv.transform_points(cv.se3_inverse(T), cv.transform_points(T, points))
    assert np.allclose(back, points, atol=1e-7)
    assert cv.is_rigid(T)


@given(
    st.integers(2, 2000),
    st.integers(2, 2000),
    st.floats(10.0, 150.0),
    st.sampled_from(["vertical", "horizontal"]),
)
def test_fov_round_trip_and_principal_point(w, h, fov, axis):
    K = cv.intrinsics_from_fov(w, h, fov, axis)
    assert math.isclose(cv.fov_from_intrinsics(K, w, h, axis), fov, rel_tol=1e-9)
    assert K[0, 2] == (w - 1) / 2 and K[1, 2] == (h - 1) / 2


@given(arrays(np.float64, (4, 4), elements=st.floats(0.1, 50.0)), st.floats(20.0, 120.0))
@settings(max_examples=50)
def test_unproject_then_project_returns_pixel_grid(depth, fov):
    K = cv.intrinsics_from_fov(4, 4, fov)
    pix, z = cv.project(K, cv.unproject_depth(K, depth))
    v, u = np.mgrid[0:4, 0:4]
    assert np.allclose(pix[..., 0], u) and np.allclose(pix[..., 1], v) and np.allclose(z, depth)


@given(vec3, st.floats(-89.0, 89.0), angles, angles)
def test_unreal_camera_round_trip(loc, pitch, yaw, roll):
    T = cv.ue_camera_to_pose(loc, (pitch, yaw, roll))
    assert cv.is_rigid(T, atol=1e-9)
    loc2, rot2 = cv.pose_to_ue_camera(T)
    assert np.allclose(loc2, loc, atol=1e-6)
    assert np.allclose(cv.ue_camera_to_pose(loc2, rot2), T, atol=1e-9)


@given(st.floats(-89.0, 89.0), angles, angles)
def test_unreal_forward_maps_to_optical_axis(pitch, yaw, roll):
    R_ue = cv.ue_rotator_to_matrix(pitch, yaw, roll)
    forward_world = np.diag([1.0, -1.0, 1.0]) @ R_ue[:, 0]
    assert np.allclose(cv.ue_camera_to_pose([0, 0, 0], (pitch, yaw, roll))[:3, 2], forward_world)


def test_look_at_points_optical_axis_at_target():
    T = cv.look_at([1.0, 2.0, 1.5], [4.0, 6.0, 1.5])
    assert np.allclose(T[:3, 2], [0.6, 0.8, 0.0])
    assert T[2, 1] < 0  # image down points to world down when level
    assert cv.is_rigid(T)


def test_normalize_rejects_zero_quaternion():
    with pytest.raises(ValueError, match="quaternion"):
        cv.normalize_quat([0, 0, 0, 0])


def _close(a, b):
    return np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=ATOL)


@pytest.mark.parametrize("case", VECTORS["quat_to_matrix"])
def test_vector_quat_to_matrix(case):
    assert _close(cv.quat_to_matrix(case["q"]), case["R"])


@pytest.mark.parametrize("case", VECTORS["matrix_to_quat"])
def test_vector_matrix_to_quat(case):
    assert _close(cv.matrix_to_quat(case["R"]), case["q"])


@pytest.mark.parametrize("case", VECTORS["axis_angle_to_matrix"])
def test_vector_axis_angle(case):
    assert _close(cv.axis_angle_to_matrix(case["rotvec"]), case["R"])


@pytest.mark.parametrize("case", VECTORS["se3_inverse"])
def test_vector_se3_inverse(case):
    assert _close(cv.se3_inverse(case["T"]), case["T_inv"])


@pytest.mark.parametrize("case", VECTORS["intrinsics_from_fov"])
def test_vector_intrinsics(case):
    K = cv.intrinsics_from_fov(case["width"], case["height"], case["fov_deg"], case["axis"])
    assert _close(K, case["K"])


@pytest.mark.parametrize("case", VECTORS["project"])
def test_vector_project(case):
    pix, depth = cv.project(case["K"], case["point_cam"])
    assert _close(pix, case["pixel"]) and _close(depth, case["depth"])


@pytest.mark.parametrize("case", VECTORS["ue_location_to_world"])
def test_vector_ue_location(case):
    assert _close(cv.ue_location_to_world(case["location_cm"]), case["position_m"])
    assert _close(cv.world_to_ue_location(case["position_m"]), case["location_cm"])


@pytest.mark.parametrize("case", VECTORS["ue_camera_to_pose"])
def test_vector_ue_camera(case):
    assert _close(cv.ue_camera_to_pose(case["location_cm"], case["rotator_deg"]), case["pose"])


def test_vectors_cover_every_function_with_analytic_cases():
    analytic = {
        k
        for k, cases in VECTORS.items()
        if isinstance(cases, list) and any(c["source"] == "analytic" for c in cases)
    }
    assert {
        "quat_to_matrix",
        "intrinsics_from_fov",
        "project",
        "ue_camera_to_pose",
        "ue_location_to_world",
    } <= analytic


@given(quats, vec3)
def test_float_pose_path_matches_ndarray_functions(q, t):
    """The wire's plain-float pose conversions agree with the ndarray ones and the matrix path."""
    T = cv.se3(cv.quat_to_matrix(q), t)
    t_floats, q_floats = cv.pose_to_quat_floats(T)
    t_array, q_array = cv.pose_to_quat(T)
    assert np.allclose(t_floats, t_array, atol=0) and np.allclose(q_floats, q_array, atol=0)
    assert np.allclose(q_floats, cv.matrix_to_quat(T[:3, :3]), atol=0)
    back = cv.pose_from_quat_floats(t_floats, q_floats)
    assert np.allclose(back, cv.pose_from_quat(t_array, q_array), atol=0)
    assert np.allclose(back, T, atol=1e-9)
