"""The demo's scripted agent (the demo itself runs end to end in tests/test_cli_end_to_end.py)."""

from __future__ import annotations

import numpy as np

from sim_env.demo import (
    DETOUR_STEPS,
    KEY_FORWARD,
    KEY_YAW_LEFT,
    KEY_YAW_RIGHT,
    UNBLOCK_TURN_STEPS,
    GoalNavigator,
)

AHEAD = {"goal": np.array([3.0, 0.0, 3.0])}  # forward, right, distance
RIGHT = {"goal": np.array([0.0, 3.0, 3.0])}


def test_faces_the_goal_then_walks() -> None:
    agent = GoalNavigator(np.random.default_rng(0))
    assert agent.act(RIGHT, collided=False) == KEY_YAW_RIGHT
    assert agent.act(AHEAD, collided=False) == KEY_FORWARD


def test_a_blocked_move_turns_away_then_walks_a_detour_before_facing_the_goal_again() -> None:
    agent = GoalNavigator(np.random.default_rng(0))
    keys = [agent.act(AHEAD, collided=True)]
    keys += [agent.act(RIGHT, collided=False) for _ in range(UNBLOCK_TURN_STEPS + DETOUR_STEPS)]
    turns = keys[: UNBLOCK_TURN_STEPS - 1]
    assert len(set(turns)) == 1 and turns[0] in (KEY_YAW_LEFT, KEY_YAW_RIGHT)
    assert (
        keys[UNBLOCK_TURN_STEPS - 1 : UNBLOCK_TURN_STEPS + DETOUR_STEPS - 1] == [KEY_FORWARD] * DETOUR_STEPS
    )
    assert keys[-1] == KEY_YAW_RIGHT  # the detour is over: back to the goal


def test_blocked_again_during_the_detour_turns_again() -> None:
    agent = GoalNavigator(np.random.default_rng(1))
    agent.act(AHEAD, collided=True)
    for _ in range(UNBLOCK_TURN_STEPS):
        agent.act(AHEAD, collided=False)
    assert agent.act(AHEAD, collided=True) in (KEY_YAW_LEFT, KEY_YAW_RIGHT)
    assert agent.detour == 0


def test_the_demo_passes_the_scan_and_occlusion_to_the_env(monkeypatch) -> None:
    import argparse

    import sim_env.demo as demo

    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda **kwargs: seen.update(kwargs))
    parser = argparse.ArgumentParser()
    demo.add_demo_arguments(parser)
    demo.run_demo_from_args(parser.parse_args([]))
    assert seen["reference_positions"] == 4 and seen["footprint_occlusion"] is True  # the demo's scan
    demo.run_demo_from_args(parser.parse_args(["--reference-positions", "1", "--no-footprint-occlusion"]))
    assert seen["reference_positions"] == 1 and seen["footprint_occlusion"] is False  # the envs' defaults
    assert seen["sample_footprints"] is demo.DEMO_SAMPLE_FOOTPRINTS
    demo.run_demo_from_args(parser.parse_args(["--sample-footprints"]))
    assert seen["sample_footprints"] is True
    demo.run_demo_from_args(parser.parse_args(["--no-sample-footprints"]))
    assert seen["sample_footprints"] is False
