"""Scripted, seeded policies that drive a World while recording trajectories.

Recorded data is only as useful as the motion in it: `random` covers the action space,
`spiral` gives smooth long arcs, `loop` goes out and comes back the same way (so loop-closure
evaluation has a known answer: the last pose of a cycle equals the first up to collisions)
and `keys` exercises every key (or every hand axis) in a fixed order, which is what tests
and visual debugging want.

Every policy is deterministic given the `numpy.random.Generator` passed to `make_policy`:
each agent gets its own child generator, drawn in `agent_ids` order, so the recorder's
"episode i uses seed S + i" rule reproduces the same actions in any worker process.

Navigation scenes (`rooms`) get discrete keys (0 noop, 1 W, 2 A, 3 S, 4 D, 5 Q, 6 E, 7 R,
8 F); the `tabletop` scene gets hand actions (`Action.from_hand`, two hands x (wrist dpos 3,
drot 3 in [-1, 1] in the camera frame, grip in [0, 1])).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from bridge.actions import NavLimits, pitch_of
from bridge.types import HAND_DIM, NUM_HANDS, Action, Observation

POLICY_NAMES = ("random", "spiral", "loop", "keys")
HAND_SCENES = ("tabletop",)

KEY_NOOP, KEY_W, KEY_A, KEY_S, KEY_D, KEY_Q, KEY_E, KEY_R, KEY_F = range(9)
_TRANSLATION_KEYS = (KEY_W, KEY_A, KEY_S, KEY_D)

# Per-hand layout of the 14-vector: wrist translation, wrist rotation, grip target.
HAND_STRIDE = HAND_DIM // NUM_HANDS
_DPOS = slice(0, 3)
_DROT = slice(3, 6)
_GRIP = 6
GRIP_OPEN, GRIP_CLOSED = 0.0, 1.0

# Camera-frame axes (OpenCV: x right, y down, z forward) used by the hand scripts.
_X, _Y, _Z = np.eye(3)

# --- random (navigation): keys held for a while, like a person exploring.
# Forward dominates so episodes actually travel; pitch keys are rare because pitch drifts.
RANDOM_KEY_WEIGHTS = np.array([0.04, 0.40, 0.08, 0.06, 0.08, 0.15, 0.15, 0.02, 0.02])
RANDOM_MEAN_HOLD_STEPS = 5.0
RANDOM_MAX_HOLD_STEPS = 20
# After bumping into something, turn away for this many steps instead of pushing the wall.
RANDOM_COLLISION_TURN_STEPS = 6
# Beyond this pitch the random walk steers back towards the horizon (floor/ceiling frames
# carry little information).
RANDOM_PITCH_SOFT_LIMIT = math.radians(30.0)

# --- spiral (navigation): forward with a yaw rate that grows, i.e. an inward spiral.
# Keys are exclusive per step, so the turn rate is the fraction of steps spent turning.
SPIRAL_START_TURN_FRACTION = 0.05
SPIRAL_END_TURN_FRACTION = 0.5
SPIRAL_RAMP_STEPS = 300

# --- loop (navigation): W x N, turn 180 deg, W x N, turn 180 deg -> back at the start.
LOOP_OUT_STEPS = 20

# --- keys (navigation): every key held a few steps, ordered so each move is undone next.
KEYS_ORDER = (KEY_NOOP, KEY_W, KEY_S, KEY_A, KEY_D, KEY_Q, KEY_E, KEY_R, KEY_F)
KEYS_HOLD_STEPS = 3

# --- hands: smooth random wrist motion (an Ornstein-Uhlenbeck velocity with a spring that
# pulls the integrated wrist offset back, so hands wander but stay in view).
HAND_RANDOM_VELOCITY_DECAY = 0.85
HAND_RANDOM_POS_SIGMA = 0.6
HAND_RANDOM_ROT_SIGMA = 0.25
HAND_RANDOM_SPRING = 0.05
HAND_RANDOM_MEAN_GRIP_STEPS = 15.0
HAND_SPIRAL_PERIOD_STEPS = 40
HAND_SPIRAL_MIN_SPEED = 0.2
HAND_SPIRAL_MAX_SPEED = 0.8
HAND_SPIRAL_RAMP_STEPS = 200
HAND_LOOP_REACH_STEPS = 12
HAND_LOOP_HOLD_STEPS = 4
HAND_LOOP_SPEED = 0.5
HAND_KEYS_HOLD_STEPS = 4
HAND_KEYS_SPEED = 0.5


class Policy(Protocol):
    """Maps the current observations of all agents to their next actions."""

    def act(self, observations: Mapping[str, Observation]) -> dict[str, Action]:
        """The action each agent takes next; called once per World step."""
        ...


class _AgentController(Protocol):
    def act(self, obs: Observation) -> Action: ...


class MultiAgentPolicy:
    """One independent controller per agent; the shape every scripted policy takes.

    Attributes:
        name: the policy name given to `make_policy`.
        agent_ids: agents this policy emits actions for, in order.
    """

    def __init__(self, name: str, controllers: Mapping[str, _AgentController]) -> None:
        self.name = name
        self._controllers = dict(controllers)
        self.agent_ids = tuple(self._controllers)

    def act(self, observations: Mapping[str, Observation]) -> dict[str, Action]:
        """Actions for every agent; an agent missing from `observations` is an error."""
        missing = [a for a in self.agent_ids if a not in observations]
        if missing:
            raise KeyError(f"policy {self.name!r} got no observation for agents {missing}")
        return {a: c.act(observations[a]) for a, c in self._controllers.items()}


# --------------------------------------------------------------------------- navigation
class _RandomKeys:
    """Random keys held for geometric durations; turns away after collisions."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._key = KEY_NOOP
        self._left = 0

    def act(self, obs: Observation) -> Action:
        if obs.collided and self._key in _TRANSLATION_KEYS:
            self._key = int(self._rng.choice([KEY_Q, KEY_E]))
            self._left = RANDOM_COLLISION_TURN_STEPS
        elif self._left <= 0:
            self._key = int(self._rng.choice(len(RANDOM_KEY_WEIGHTS), p=RANDOM_KEY_WEIGHTS))
            hold = self._rng.geometric(1.0 / RANDOM_MEAN_HOLD_STEPS)
            self._left = int(min(hold, RANDOM_MAX_HOLD_STEPS))
        pitch = pitch_of(obs.pose)
        if pitch > RANDOM_PITCH_SOFT_LIMIT and self._key == KEY_R:
            self._key = KEY_F
        elif pitch < -RANDOM_PITCH_SOFT_LIMIT and self._key == KEY_F:
            self._key = KEY_R
        self._left -= 1
        return Action.from_key(self._key)


class _SpiralKeys:
    """Forward, interleaved with turns whose share of steps ramps up (an inward spiral).

    An accumulator spreads the turns evenly, so the path is smooth rather than bursty.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._turn_key = int(rng.choice([KEY_Q, KEY_E]))
        self._t = 0
        self._acc = 0.0

    def act(self, obs: Observation) -> Action:
        ramp = min(1.0, self._t / SPIRAL_RAMP_STEPS)
        span = SPIRAL_END_TURN_FRACTION - SPIRAL_START_TURN_FRACTION
        self._acc += SPIRAL_START_TURN_FRACTION + ramp * span
        self._t += 1
        if self._acc >= 1.0:
            self._acc -= 1.0
            return Action.from_key(self._turn_key)
        return Action.from_key(KEY_W)


class _ScriptedKeys:
    """Replays a fixed (key, repeat) script forever."""

    def __init__(self, script: Sequence[tuple[int, int]]) -> None:
        self._keys = [key for key, repeat in script for _ in range(repeat)]
        self._t = 0

    def act(self, obs: Observation) -> Action:
        key = self._keys[self._t % len(self._keys)]
        self._t += 1
        return Action.from_key(key)


def loop_turn_steps(limits: NavLimits | None = None) -> int:
    """Yaw-key presses that turn the camera by 180 degrees under `limits`."""
    limits = limits or NavLimits()
    return round(math.pi / limits.max_rotation)


def loop_script(out_steps: int = LOOP_OUT_STEPS, limits: NavLimits | None = None) -> list[tuple[int, int]]:
    """(key, repeat) phases of one out-and-back cycle; it ends at the pose it started from."""
    turn = loop_turn_steps(limits)
    return [(KEY_W, out_steps), (KEY_Q, turn), (KEY_W, out_steps), (KEY_Q, turn)]


# --------------------------------------------------------------------------- hands
def _hand_action(dpos: NDArray[np.float64], drot: NDArray[np.float64], grip: NDArray[np.float64]) -> Action:
    """Builds the 14-vector from per-hand (2, 3) dpos/drot and (2,) grip arrays."""
    v = np.zeros(HAND_DIM)
    for h in range(NUM_HANDS):
        base = h * HAND_STRIDE
        v[base + _DPOS.start : base + _DPOS.stop] = np.clip(dpos[h], -1.0, 1.0)
        v[base + _DROT.start : base + _DROT.stop] = np.clip(drot[h], -1.0, 1.0)
        v[base + _GRIP] = np.clip(grip[h], 0.0, 1.0)
    return Action.from_hand(v)


class _RandomHands:
    """Smooth random wrist motion and random grip open/close per hand."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._vel = np.zeros((NUM_HANDS, 6))
        self._offset = np.zeros((NUM_HANDS, 6))  # integrated action, a proxy for wrist offset
        self._grip = np.full(NUM_HANDS, GRIP_OPEN)
        self._grip_left = rng.geometric(1.0 / HAND_RANDOM_MEAN_GRIP_STEPS, size=NUM_HANDS)

    def act(self, obs: Observation) -> Action:
        rho = HAND_RANDOM_VELOCITY_DECAY
        sigma = np.array([HAND_RANDOM_POS_SIGMA] * 3 + [HAND_RANDOM_ROT_SIGMA] * 3)
        noise = self._rng.standard_normal((NUM_HANDS, 6)) * sigma * math.sqrt(1.0 - rho * rho)
        self._vel = np.clip(rho * self._vel + noise - HAND_RANDOM_SPRING * self._offset, -1.0, 1.0)
        self._offset += self._vel
        self._grip_left -= 1
        flip = self._grip_left <= 0
        self._grip[flip] = GRIP_CLOSED + GRIP_OPEN - self._grip[flip]
        self._grip_left[flip] = self._rng.geometric(1.0 / HAND_RANDOM_MEAN_GRIP_STEPS, size=int(flip.sum()))
        return _hand_action(self._vel[:, :3], self._vel[:, 3:], self._grip)


class _SpiralHands:
    """Wrists circle in the image plane, in opposite phase, with a slowly growing radius."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._direction = float(rng.choice([-1.0, 1.0]))
        self._t = 0

    def act(self, obs: Observation) -> Action:
        ramp = min(1.0, self._t / HAND_SPIRAL_RAMP_STEPS)
        speed = HAND_SPIRAL_MIN_SPEED + ramp * (HAND_SPIRAL_MAX_SPEED - HAND_SPIRAL_MIN_SPEED)
        phase = self._direction * 2.0 * math.pi * self._t / HAND_SPIRAL_PERIOD_STEPS
        self._t += 1
        dpos = np.zeros((NUM_HANDS, 3))
        for h in range(NUM_HANDS):
            p = phase + math.pi * h
            # The velocity of a circle: integrating it moves the wrist around a circle.
            dpos[h] = speed * (-math.sin(p) * _X + math.cos(p) * _Y)
        return _hand_action(dpos, np.zeros((NUM_HANDS, 3)), np.full(NUM_HANDS, GRIP_OPEN))


# (steps, wrist dpos direction (3,), wrist drot direction (3,), grip target)
_Segment = tuple[int, NDArray[np.float64], NDArray[np.float64], float]


class _ScriptedHands:
    """Replays a fixed list of (steps, dpos direction, drot direction, grip) segments forever.

    Directions apply to both hands; each segment is paired with its inverse in the
    scripts below, so the wrists return to where the cycle started (up to collisions).
    """

    def __init__(self, segments: Sequence[_Segment]) -> None:
        self._frames = [(dpos, drot, grip) for steps, dpos, drot, grip in segments for _ in range(steps)]
        self._t = 0

    def act(self, obs: Observation) -> Action:
        dpos, drot, grip = self._frames[self._t % len(self._frames)]
        self._t += 1
        both = np.ones((NUM_HANDS, 1))
        return _hand_action(both * dpos, both * drot, np.full(NUM_HANDS, grip))


def _hand_loop_segments() -> list[_Segment]:
    """Reach forward, close the grip at the far point, come back, open again."""
    zero = np.zeros(3)
    s = HAND_LOOP_SPEED
    return [
        (HAND_LOOP_REACH_STEPS, s * _Z, zero, GRIP_OPEN),
        (HAND_LOOP_HOLD_STEPS, zero, zero, GRIP_CLOSED),
        (HAND_LOOP_REACH_STEPS, -s * _Z, zero, GRIP_CLOSED),
        (HAND_LOOP_HOLD_STEPS, zero, zero, GRIP_OPEN),
    ]


def _hand_keys_segments() -> list[_Segment]:
    """A pick-like script (reach, grip, lift, lower, release, retract), then every wrist axis."""
    zero = np.zeros(3)
    n, s = HAND_KEYS_HOLD_STEPS, HAND_KEYS_SPEED
    segments = [
        (n, zero, zero, GRIP_OPEN),
        (n, s * _Z, zero, GRIP_OPEN),  # reach
        (n, zero, zero, GRIP_CLOSED),  # grip
        (n, -s * _Y, zero, GRIP_CLOSED),  # lift (camera y points down)
        (n, s * _Y, zero, GRIP_CLOSED),  # lower
        (n, zero, zero, GRIP_OPEN),  # release
        (n, -s * _Z, zero, GRIP_OPEN),  # retract
    ]
    for axis in (_X, _Y, _Z):
        segments += [(n, s * axis, zero, GRIP_OPEN), (n, -s * axis, zero, GRIP_OPEN)]
    for axis in (_X, _Y, _Z):
        segments += [(n, zero, s * axis, GRIP_OPEN), (n, zero, -s * axis, GRIP_OPEN)]
    return segments


# --------------------------------------------------------------------------- factory
def _controller_factory(name: str, scene: str) -> Callable[[np.random.Generator], _AgentController]:
    hands = scene in HAND_SCENES
    if name == "random":
        return _RandomHands if hands else _RandomKeys
    if name == "spiral":
        return _SpiralHands if hands else _SpiralKeys
    if name == "loop":
        if hands:
            return lambda rng: _ScriptedHands(_hand_loop_segments())
        return lambda rng: _ScriptedKeys(loop_script())
    if name == "keys":
        if hands:
            return lambda rng: _ScriptedHands(_hand_keys_segments())
        return lambda rng: _ScriptedKeys([(key, KEYS_HOLD_STEPS) for key in KEYS_ORDER])
    raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


def make_policy(
    name: str, scene: str, agent_ids: Sequence[str], rng: np.random.Generator
) -> MultiAgentPolicy:
    """Builds a scripted policy for every agent of a scene.

    Args:
        name: `random`, `spiral`, `loop` or `keys`.
        scene: the scene being recorded; `tabletop` gets hand actions, others get keys.
        agent_ids: the World's agents (from its handshake), in order.
        rng: source of all randomness; the same generator state gives the same actions.

    Returns:
        A policy whose `act(observations)` returns one `Action` per agent.
    """
    factory = _controller_factory(name, scene)
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=len(agent_ids))
    controllers = {a: factory(np.random.default_rng(int(s))) for a, s in zip(agent_ids, seeds, strict=True)}
    return MultiAgentPolicy(name, controllers)
