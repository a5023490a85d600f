"""The kinematic hand model and hand-action integration (bridge/hands.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.conventions import axis_angle_to_matrix, is_rigid, rot_x, rot_z, se3, se3_inverse
from bridge.hands import (
    FINGERS,
    HAND_BONES,
    LEFT,
    RIGHT,
    HandLimits,
    apply_hand_action,
    default_wrist_poses_cam,
    finger_frames,
    hand_keypoints,
    hands_keypoints,
    keypoints_in_hand_frame,
    split_hand_action,
)
from bridge.types import InvalidArgumentError

grips = st.floats(0.0, 1.0)
unit = st.floats(-1.0, 1.0)


def _bone_lengths(points: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(points[c] - points[p]) for p, c in HAND_BONES])


def test_shapes_and_mano_order():
    points = keypoints_in_hand_frame(0.0, RIGHT)
    assert points.shape == (21, 3)
    np.testing.assert_array_equal(points[0], 0.0)  # wrist at the hand-frame origin
    assert len(HAND_BONES) == 20
    # Every finger chain starts at the wrist and runs through 4 consecutive keypoints.
    assert [c for p, c in HAND_BONES if p == 0] == [1, 5, 9, 13, 17]
    # Open hand: fingertips are the most distal keypoints of their fingers, middle is longest.
    tips = points[[4, 8, 12, 16, 20]]
    assert np.argmax(tips[:, 0]) == 2


@settings(max_examples=30, deadline=None)
@given(grip=grips, side=st.sampled_from([LEFT, RIGHT]))
def test_bone_lengths_do_not_depend_on_grip(grip, side):
    expected = np.concatenate([[np.linalg.norm(f.base), *f.bone_lengths] for f in finger_frames(side)])
    np.testing.assert_allclose(_bone_lengths(keypoints_in_hand_frame(grip, side)), expected, atol=1e-12)


def test_flexion_is_grip_times_max():
    for grip in (0.0, 0.4, 1.0):
        points = keypoints_in_hand_frame(grip, RIGHT)
        for f, finger in enumerate(finger_frames(RIGHT)):
            chain = points[1 + 4 * f : 5 + 4 * f]
            bones = np.diff(chain, axis=0)
            total = 0.0
            for j, bone in enumerate(bones):
                total += grip * finger.max_flexion[j]
                along = np.dot(bone, finger.direction) / finger.bone_lengths[j]
                towards = np.dot(bone, finger.bend) / finger.bone_lengths[j]
                assert math.isclose(along, math.cos(total), abs_tol=1e-9)  # angles may exceed 180°
                assert math.isclose(towards, math.sin(total), abs_tol=1e-9)


def test_fingers_curl_to_the_palm_side():
    open_hand, fist = keypoints_in_hand_frame(0.0, RIGHT), keypoints_in_hand_frame(1.0, RIGHT)
    for tip in (8, 12, 16, 20):
        assert abs(open_hand[tip, 2]) < 1e-12  # straight fingers lie in the palm plane
        assert fist[tip, 2] > 0.01  # +z is palmar
        assert np.linalg.norm(fist[tip]) < np.linalg.norm(open_hand[tip]) - 0.05


def test_left_is_the_mirror_of_right_and_thumbs_are_radial():
    for grip in (0.0, 0.7):
        right, left = keypoints_in_hand_frame(grip, RIGHT), keypoints_in_hand_frame(grip, LEFT)
        np.testing.assert_allclose(left, right * [1.0, -1.0, 1.0], atol=1e-12)
    assert keypoints_in_hand_frame(0.0, RIGHT)[4, 1] < 0.0  # right thumb on -y
    assert keypoints_in_hand_frame(0.0, LEFT)[4, 1] > 0.0


def test_hand_size_is_adult():
    wrist_to_middle_tip = np.linalg.norm(keypoints_in_hand_frame(0.0, RIGHT)[12])
    assert 0.16 < wrist_to_middle_tip < 0.21
    assert len(FINGERS) == 5


@settings(max_examples=20, deadline=None)
@given(grip=grips, rotvec=st.tuples(unit, unit, unit), t=st.tuples(unit, unit, unit))
def test_keypoints_follow_the_wrist_pose(grip, rotvec, t):
    pose = se3(axis_angle_to_matrix(np.asarray(rotvec) * 2.0), t)
    local = keypoints_in_hand_frame(grip, LEFT)
    np.testing.assert_allclose(
        hand_keypoints(pose, grip, LEFT), local @ pose[:3, :3].T + pose[:3, 3], atol=1e-12
    )


def test_hands_keypoints_matches_observation_contract():
    out = hands_keypoints(default_wrist_poses_cam(), [0.2, 0.9])
    assert out.shape == (2, 21, 3) and out.dtype == np.float32
    np.testing.assert_allclose(
        out[RIGHT], hand_keypoints(default_wrist_poses_cam()[RIGHT], 0.9, RIGHT), atol=1e-6
    )


def test_default_wrists_are_in_view_with_palms_down():
    poses = default_wrist_poses_cam()
    assert all(is_rigid(p) for p in poses)
    left, right = poses[LEFT], poses[RIGHT]
    assert left[0, 3] < 0.0 < right[0, 3]  # left hand on the image's left
    assert left[2, 3] > 0.2 and right[2, 3] > 0.2  # in front of the camera
    for pose in poses:
        assert pose[1, 2] > 0.5  # palm normal (+z hand) points image-down
        assert pose[2, 0] > 0.5  # fingers point away from the camera
    # The right thumb points towards the image centre, i.e. to the left (-x camera).
    thumb = hand_keypoints(right, 0.0, RIGHT)[4] - right[:3, 3]
    assert thumb[0] < 0.0


def test_apply_hand_action_in_camera_frame():
    limits = HandLimits(max_translation=0.05, max_rotation=math.radians(20.0))
    wrist = default_wrist_poses_cam()[RIGHT]
    new, grip = apply_hand_action(wrist, 0.0, [1.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.8], limits)
    np.testing.assert_allclose(new[:3, 3] - wrist[:3, 3], [0.05, -0.025, 0.0], atol=1e-12)
    np.testing.assert_allclose(new[:3, :3], wrist[:3, :3], atol=1e-12)
    assert grip == pytest.approx(0.8)
    # Rotation about the camera's optical axis, applied about the wrist (it stays put).
    new, _ = apply_hand_action(wrist, 0.8, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.8], limits)
    np.testing.assert_allclose(new[:3, 3], wrist[:3, 3], atol=1e-12)
    np.testing.assert_allclose(new[:3, :3], rot_z(math.radians(20.0)) @ wrist[:3, :3], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    action=st.tuples(unit, unit, unit, unit, unit, unit, grips),
    yaw=st.floats(-3.0, 3.0),
    pitch=st.floats(-1.2, 1.2),
)
def test_world_frame_integration_equals_camera_frame(action, yaw, pitch):
    camera = se3(rot_z(yaw) @ rot_x(pitch), [0.3, -1.0, 1.4])
    wrist_cam = default_wrist_poses_cam()[LEFT]
    new_cam, grip_cam = apply_hand_action(wrist_cam, 0.0, action)
    new_world, grip_world = apply_hand_action(camera @ wrist_cam, 0.0, action, camera_pose=camera)
    np.testing.assert_allclose(se3_inverse(camera) @ new_world, new_cam, atol=1e-9)
    assert grip_cam == grip_world == pytest.approx(np.clip(action[6], 0.0, 1.0))
    assert is_rigid(new_world)


def test_split_and_bad_input():
    left, right = split_hand_action(np.arange(14) / 14.0)
    np.testing.assert_array_equal(left, np.arange(7) / 14.0)
    np.testing.assert_array_equal(right, np.arange(7, 14) / 14.0)
    with pytest.raises(InvalidArgumentError, match="hand_vector"):
        split_hand_action(np.zeros(13))
    with pytest.raises(InvalidArgumentError, match="hand action"):
        apply_hand_action(np.eye(4), 0.0, [0.0] * 6)
    with pytest.raises(InvalidArgumentError, match="hand action"):
        apply_hand_action(np.eye(4), 0.0, [np.nan] + [0.0] * 6)
    with pytest.raises(InvalidArgumentError, match="side"):
        finger_frames(2)
