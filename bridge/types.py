"""The World interface (ARCHITECTURE.md §2) and the values that cross it.

Every steppable thing — MuJoCo, Unreal over gRPC, the generative model — implements
`World`, so envs, recorders and evaluators are written once against this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bridge.conventions import is_rigid

PROTOCOL_VERSION = "1.0.0"

NUM_NAV_KEYS = 9
NAV_DIM = 6
HAND_DIM = 14
NUM_HANDS = 2
HAND_KEYPOINTS = 21


class WorldError(RuntimeError):
    """Base of every error a World raises; carries the (server's) message."""


class InvalidArgumentError(WorldError, ValueError):
    """The input was malformed (NaN pose, wrong action shape, unknown agent ...)."""


class FailedPreconditionError(WorldError):
    """The call is valid but not now (step before reset, stale step_id ...)."""


class UnauthenticatedError(WorldError):
    """The server wants a token and did not get the right one."""


class VersionMismatchError(WorldError):
    """Client and server speak incompatible protocol major versions."""


class ConnectionLostError(WorldError):
    """The server could not be reached within the retry budget."""


class SessionLostError(WorldError):
    """The server restarted or expired the session; world state is gone, reset again."""


class ResourceExhaustedError(WorldError):
    """A message exceeded a size limit or the server is out of sessions."""


@dataclass(frozen=True)
class Observation:
    """What one agent sees at one capture.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 planar metres, +inf where nothing was hit.
        pose: (4, 4) float64 camera-to-world, OpenCV camera axes.
        K: (3, 3) float64 intrinsics in pixels.
        frame_id: counts captures since reset (0 at reset).
        sim_time: seconds of simulated time since reset.
        hand_keypoints: (2, 21, 3) float32 in the camera frame (MANO order), or None.
        collided: the motion that led here was blocked by geometry.
    """

    rgb: NDArray[np.uint8]
    depth: NDArray[np.float32]
    pose: NDArray[np.float64]
    K: NDArray[np.float64]
    frame_id: int
    sim_time: float
    hand_keypoints: NDArray[np.float32] | None = None
    collided: bool = False

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.rgb.shape[1])

    def validate(self) -> None:
        """Raises InvalidArgumentError naming the first field that breaks the contract."""
        h, w = self.rgb.shape[:2]
        checks = [
            ("rgb", self.rgb.dtype == np.uint8 and self.rgb.shape == (h, w, 3)),
            ("depth", self.depth.dtype == np.float32 and self.depth.shape == (h, w)),
            ("pose", is_rigid(self.pose)),
            ("K", self.K.shape == (3, 3) and bool(np.all(np.isfinite(self.K)))),
            (
                "hand_keypoints",
                self.hand_keypoints is None or self.hand_keypoints.shape == (NUM_HANDS, HAND_KEYPOINTS, 3),
            ),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidArgumentError(f"Observation.{name} violates the World contract")


@dataclass(frozen=True)
class Action:
    """One agent's action: exactly one of a discrete key, continuous nav or hands.

    Use the constructors `Action.key`, `Action.nav` and `Action.hand`; they validate.
    """

    key: int | None = None
    nav_vector: NDArray[np.float64] | None = None
    hand_vector: NDArray[np.float64] | None = None

    @staticmethod
    def noop() -> Action:
        """The do-nothing action (key 0)."""
        return Action(key=0)

    @staticmethod
    def from_key(key: int) -> Action:
        """Discrete navigation key 0..8 (noop, W, A, S, D, Q, E, R, F)."""
        if isinstance(key, bool) or int(key) != key or not 0 <= int(key) < NUM_NAV_KEYS:
            raise InvalidArgumentError(f"Action.key must be an int in [0, {NUM_NAV_KEYS}), got {key!r}")
        return Action(key=int(key))

    @staticmethod
    def from_nav(values: ArrayLike) -> Action:
        """Continuous navigation: forward, right, up, yaw, pitch, roll, each in [-1, 1]."""
        return Action(nav_vector=_checked_vector("nav_vector", values, NAV_DIM, -1.0, 1.0))

    @staticmethod
    def from_hand(values: ArrayLike) -> Action:
        """Two hands x (dpos 3, drot 3 in [-1, 1], grip in [0, 1])."""
        v = _checked_vector("hand_vector", values, HAND_DIM, -1.0, 1.0)
        grips = v[[6, 13]]
        if np.any(grips < 0.0):
            raise InvalidArgumentError("Action.hand_vector grip targets (indices 6, 13) must be in [0, 1]")
        return Action(hand_vector=v)

    @property
    def kind(self) -> str:
        """'key', 'nav' or 'hand'."""
        set_fields = [
            name
            for name, value in (("key", self.key), ("nav", self.nav_vector), ("hand", self.hand_vector))
            if value is not None
        ]
        if len(set_fields) != 1:
            raise InvalidArgumentError(f"an Action sets exactly one kind, got {set_fields or 'none'}")
        return set_fields[0]


def _checked_vector(name: str, values: ArrayLike, dim: int, lo: float, hi: float) -> NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (dim,):
        raise InvalidArgumentError(f"Action.{name} must have shape ({dim},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InvalidArgumentError(f"Action.{name} must be finite, got {v.tolist()}")
    if np.any(v < lo - 1e-9) or np.any(v > hi + 1e-9):
        raise InvalidArgumentError(f"Action.{name} must lie in [{lo}, {hi}], got {v.tolist()}")
    return np.clip(v, lo, hi)


@dataclass(frozen=True)
class WorldInfo:
    """What a World says about itself in the handshake."""

    name: str
    protocol_version: str = PROTOCOL_VERSION
    capabilities: tuple[str, ...] = ()
    agent_ids: tuple[str, ...] = ("agent_0",)
    height: int = 64
    width: int = 64
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class World(Protocol):
    """Anything that can be stepped in lockstep (ARCHITECTURE.md §2)."""

    def handshake(self) -> WorldInfo:
        """Describes the world; cheap, callable any time."""
        ...

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> dict[str, Observation]:
        """Starts a new episode; the same seed gives the same scene and frames."""
        ...

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """Advances one step; agents missing from `actions` take the noop."""
        ...

    def set_pose(self, agent_id: str, pose: ArrayLike) -> Observation:
        """Teleports an agent (trajectory replay, shadow sync) and renders it there."""
        ...

    def close(self) -> None:
        """Releases renderers and connections; idempotent."""
        ...


def validate_pose(pose: ArrayLike, field_name: str = "pose") -> NDArray[np.float64]:
    """The pose as float64 (4, 4), or InvalidArgumentError naming the field."""
    T = np.asarray(pose, dtype=np.float64)
    if T.shape != (4, 4):
        raise InvalidArgumentError(f"{field_name} must be a 4x4 matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise InvalidArgumentError(f"{field_name} contains NaN or inf")
    if not is_rigid(T, atol=1e-4):
        raise InvalidArgumentError(f"{field_name} is not a rigid transform (orthonormal R, det +1)")
    return T


CAPABILITY_RGB = "rgb"
CAPABILITY_DEPTH = "depth"
CAPABILITY_HANDS = "hands"
CAPABILITY_NAV_KEYS = "nav_keys"
CAPABILITY_NAV_CONTINUOUS = "nav_continuous"
CAPABILITY_SET_POSE = "set_pose"
CAPABILITY_STEP_STREAM = "step_stream"
CAPABILITY_COLLISION = "collision"
