"""Evaluation trajectories: random walk, spiral, out-and-back loop (rooms) and hand motion (tabletop).

Each is an action source for one agent, a function of its seed, so every variant of an
evaluation run (model, baselines) starts from the same reference frame with the same actions.
The loop alone also reads the poses it reaches: its way back undoes the moves actually made, so
a world whose collision rule stopped it on the way out still returns to its start (the
closed-loop protocol compares the start frame with the frame back at the start pose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bridge.actions import FORWARD, RIGHT, YAW, NavLimits, heading_frame
from bridge.policies import make_policy
from bridge.types import NAV_DIM, Action, Observation

NAV_SCENE, HAND_SCENE = "rooms", "tabletop"
TRAJECTORY_NAMES = ("random_walk", "spiral", "loop", "hand_motion")
# Random walk: AR(1) yaw and strafe, forward speed drawn per segment.
WALK_YAW_DECAY, WALK_YAW_SIGMA = 0.9, 0.35
WALK_STRAFE_SIGMA = 0.2
# Spiral: steady forward motion with a turn rate decaying from 1 to this, so the circle widens.
SPIRAL_FORWARD, SPIRAL_FINAL_YAW = 0.6, 0.2
# Loop: the fraction of the horizon spent turning away and back (each).
LOOP_TURN_FRACTION = 0.125


@dataclass
class Trajectory:
    """Actions of one evaluation episode.

    Attributes:
        name: one of `TRAJECTORY_NAMES`.
        scene: the MuJoCo scene family it runs in.
        act: next action given the latest ground-truth observation.
        return_step: for loops, the step whose pose equals the start pose (else None).
    """

    name: str
    scene: str
    act: Callable[[Observation], Action]
    return_step: int | None = None


def _scripted(navs: np.ndarray) -> Callable[[Observation], Action]:
    """Replay (T, 6) nav vectors; noop once exhausted."""
    state = {"t": 0}

    def act(obs: Observation) -> Action:
        t = state["t"]
        state["t"] += 1
        return Action.from_nav(navs[t]) if t < len(navs) else Action.noop()

    return act


def random_walk_navs(horizon: int, rng: np.random.Generator) -> np.ndarray:
    """(horizon, 6) smooth random navigation: forward with AR(1) yaw and strafe."""
    navs = np.zeros((horizon, NAV_DIM))
    yaw = 0.0
    for t in range(horizon):
        yaw = WALK_YAW_DECAY * yaw + rng.normal(0.0, WALK_YAW_SIGMA)
        navs[t, FORWARD] = rng.uniform(0.2, 1.0)
        navs[t, RIGHT] = rng.normal(0.0, WALK_STRAFE_SIGMA)
        navs[t, YAW] = yaw
    return np.clip(navs, -1.0, 1.0)


def spiral_navs(horizon: int, rng: np.random.Generator) -> np.ndarray:
    """(horizon, 6) widening spiral, turning left or right at random."""
    navs = np.zeros((horizon, NAV_DIM))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    navs[:, FORWARD] = SPIRAL_FORWARD
    navs[:, YAW] = direction * np.linspace(1.0, SPIRAL_FINAL_YAW, horizon)
    return navs


def loop_phases(horizon: int) -> tuple[int, int]:
    """(n, m): steps forward (and back) and steps of yaw each way of the loop of ``horizon`` steps."""
    m = max(int(horizon * LOOP_TURN_FRACTION), 1)
    n = max((horizon - 2 * m) // 2, 1)
    return n, m


def loop_navs(horizon: int) -> tuple[np.ndarray, int]:
    """Mirrored out-and-back path: forward n, yaw left m, yaw right m, backward n.

    The pose at step i equals the pose at step 2(n + m) − i, so the video is symmetric (Memory
    Symmetry) and step 2(n + m) is back at the start (loop closure); later steps are noops.
    """
    n, m = loop_phases(horizon)
    navs = np.zeros((horizon, NAV_DIM))
    phases = [(FORWARD, 1.0, n), (YAW, 1.0, m), (YAW, -1.0, m), (FORWARD, -1.0, n)]
    t = 0
    for axis, value, count in phases:
        navs[t : t + count, axis] = value
        t += count
    return navs[:horizon], min(2 * (n + m), horizon)


def closed_loop(horizon: int, limits: NavLimits = NavLimits()) -> Callable[[Observation], Action]:  # noqa: B008
    """`loop_navs`, with each backward step sized to undo its mirrored forward step as reached.

    A forward step the world blocked (or shortened) moved the camera less than the script
    asked; replaying the full backward step would overshoot the start, and the return frame
    would be compared with the reference from somewhere else. The progress of each forward
    step along the heading is read from the next observation's pose, and its mirror moves back
    exactly that far, so the pose at step i still equals the pose at 2(n + m) − i.

    Args:
        horizon: steps of the episode.
        limits: the world's navigation scale (metres per step at full forward).
    """
    navs, _ = loop_navs(horizon)
    n, m = loop_phases(horizon)
    progress = np.zeros(n)
    state: dict = {"t": 0, "pose": None}

    def act(obs: Observation) -> Action:
        t = state["t"]
        state["t"] += 1
        if 1 <= t <= n:  # obs is where forward step t − 1 led
            forward, _ = heading_frame(state["pose"])
            progress[t - 1] = float(forward @ (obs.pose[:3, 3] - state["pose"][:3, 3]))
        state["pose"] = np.array(obs.pose, dtype=np.float64)
        if t >= len(navs):
            return Action.noop()
        nav = navs[t].copy()
        back = t - (n + 2 * m)
        if 0 <= back < n:
            nav[FORWARD] = -float(np.clip(progress[n - 1 - back] / limits.max_translation, 0.0, 1.0))
        return Action.from_nav(nav)

    return act


def make_trajectory(name: str, horizon: int, seed: int) -> Trajectory:
    """The named trajectory of ``horizon`` steps for an episode seeded ``seed``."""
    rng = np.random.default_rng(seed)
    if name == "random_walk":
        return Trajectory(name, NAV_SCENE, _scripted(random_walk_navs(horizon, rng)))
    if name == "spiral":
        return Trajectory(name, NAV_SCENE, _scripted(spiral_navs(horizon, rng)))
    if name == "loop":
        _, back = loop_navs(horizon)
        return Trajectory(name, NAV_SCENE, closed_loop(horizon), return_step=back)
    if name == "hand_motion":
        policy = make_policy("random", HAND_SCENE, ["agent_0"], rng)
        return Trajectory(name, HAND_SCENE, lambda obs: policy.act({"agent_0": obs})["agent_0"])
    raise ValueError(f"unknown trajectory {name!r}; expected one of {', '.join(TRAJECTORY_NAMES)}")
