"""Navigation semantics shared by every World."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bridge import conventions as cv
from bridge.actions import NavLimits, action_to_nav, heading_frame, integrate_nav, key_to_nav, pitch_of
from bridge.types import Action, InvalidArgumentError

LIMITS = NavLimits()
START = cv.look_at([0.0, 0.0, 1.5], [1.0, 0.0, 1.5])  # facing +X, level


@pytest.mark.parametrize(
    ("key", "delta"),
    [(1, [0.15, 0, 0]), (3, [-0.15, 0, 0]), (2, [0, 0.15, 0]), (4, [0, -0.15, 0]), (0, [0, 0, 0])],
)
def test_translation_keys_move_in_heading_frame(key, delta):
    T = integrate_nav(START, key_to_nav(key), LIMITS)
    assert np.allclose(T[:3, 3] - START[:3, 3], delta, atol=1e-12)
    assert np.allclose(T[:3, :3], START[:3, :3])


def test_yaw_left_turns_counter_clockwise_seen_from_above():
    T = integrate_nav(START, key_to_nav(5), LIMITS)
    assert T[1, 2] > 0  # optical axis swings from +X towards +Y
    assert np.isclose(np.arctan2(T[1, 2], T[0, 2]), LIMITS.max_rotation)


def test_pitch_up_looks_up_and_is_clamped():
    T = START
    for _ in range(30):
        T = integrate_nav(T, key_to_nav(7), LIMITS)
    assert np.isclose(pitch_of(T), LIMITS.max_pitch)
    forward, _ = heading_frame(T)
    assert np.allclose(forward, [1.0, 0.0, 0.0], atol=1e-9)  # walking stays horizontal


@given(arrays(np.float64, 6, elements=st.floats(-1.0, 1.0)))
def test_integration_keeps_pose_rigid(nav):
    T = START
    for _ in range(5):
        T = integrate_nav(T, nav, LIMITS)
    assert cv.is_rigid(T, atol=1e-9)
    assert abs(pitch_of(T)) <= LIMITS.max_pitch + 1e-9


def test_action_constructors_validate_and_name_the_field():
    assert np.allclose(action_to_nav(Action.from_key(1)), key_to_nav(1))
    with pytest.raises(InvalidArgumentError, match="key"):
        Action.from_key(9)
    with pytest.raises(InvalidArgumentError, match="nav_vector"):
        Action.from_nav([0.0] * 5)
    with pytest.raises(InvalidArgumentError, match="nav_vector"):
        Action.from_nav([np.nan] * 6)
    with pytest.raises(InvalidArgumentError, match="hand_vector"):
        Action.from_hand([0.0] * 14 + [1.0])
    with pytest.raises(InvalidArgumentError, match="grip"):
        Action.from_hand([0.0] * 6 + [-0.5] + [0.0] * 7)
    assert Action.from_hand([0.0] * 14).kind == "hand"
