"""`MujocoWorld`: the in-process ground-truth World over procedural MuJoCo scenes.

One MuJoCo model per episode holds every agent's camera (and, in `tabletop`, each
agent's two hands). Cameras are world-fixed MJCF cameras that the engine moves through
`model.cam_pos / cam_quat`; navigation uses the shared semantics of `bridge.actions`, with
an engine-side sphere collision check, and hand actions the shared kinematics of
`bridge.hands`. Frames come from one offscreen render pass per agent (RGB + planar
depth). Same seed, same MJCF, same physics, same frames, bit for bit.

Hands live in the world, not on the head: a hand action is interpreted in the agent's
current camera frame (so +x moves a hand image-right), but a navigation step moves only
the camera. Agents have no visible body, so they never see or block each other.

Axis conversion happens only here: MuJoCo cameras look along their -z with +y up, the
OpenCV camera looks along +z with +y down, so R_mujoco = R_opencv @ diag(1, -1, -1).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import mujoco
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bridge.actions import NavLimits, action_to_nav, integrate_nav
from bridge.conventions import intrinsics_from_fov, matrix_to_quat, se3, se3_inverse
from bridge.engines.collision import SphereCollider
from bridge.engines.mujoco_hands import HandRig
from bridge.engines.mujoco_render import OffscreenRenderer
from bridge.engines.scenes import SCENE_FAMILIES, SceneSpec, build_scene
from bridge.hands import HandLimits, default_wrist_poses_cam
from bridge.types import (
    CAPABILITY_COLLISION,
    CAPABILITY_DEPTH,
    CAPABILITY_HANDS,
    CAPABILITY_NAV_CONTINUOUS,
    CAPABILITY_NAV_KEYS,
    CAPABILITY_RGB,
    CAPABILITY_SET_POSE,
    Action,
    FailedPreconditionError,
    InvalidArgumentError,
    Observation,
    WorldInfo,
    validate_pose,
)

F64 = NDArray[np.float64]
# OpenCV camera axes -> MuJoCo camera axes (flip y and z).
_CV_TO_MJ = np.diag([1.0, -1.0, -1.0])
WORLD_NAME = "mujoco"
DEFAULT_NAV_LIMITS = NavLimits()
DEFAULT_HAND_LIMITS = HandLimits()
# Draws of 63-bit scene seeds from the episode generator when reset() gets no seed.
_SEED_BOUND = 2**63 - 1


class _RendererSlot:
    """Holds the (lazily created) renderer so a finalizer can free it without the world."""

    def __init__(self) -> None:
        self.renderer: OffscreenRenderer | None = None

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


class MujocoWorld:
    """Ground-truth World over procedural MuJoCo scenes (families `rooms`, `tabletop`).

    Args:
        scene: default scene family; `reset(options={"scene": ...})` switches it.
        height: image rows.
        width: image columns.
        num_agents: cameras in the one shared world (agent_0 ... agent_{N-1}).
        seed: seeds the episode generator used when `reset` gets no seed.
        fov_deg: vertical field of view (MuJoCo's fovy); K = intrinsics_from_fov(...).
        nav_limits: per-step scale of navigation actions.
        hand_limits: per-step scale of hand actions.
        dt: simulated seconds per step (sim_time = frame_id * dt).
    """

    def __init__(
        self,
        scene: str = "rooms",
        height: int = 64,
        width: int = 64,
        num_agents: int = 1,
        seed: int | None = None,
        fov_deg: float = 70.0,
        nav_limits: NavLimits = DEFAULT_NAV_LIMITS,
        hand_limits: HandLimits = DEFAULT_HAND_LIMITS,
        dt: float = 0.1,
    ) -> None:
        _check_family(scene, "scene")
        for name, value in (("height", height), ("width", width), ("num_agents", num_agents)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 < fov_deg < 180.0:
            raise InvalidArgumentError(f"fov_deg must be in (0, 180), got {fov_deg}")
        if not dt > 0.0:
            raise InvalidArgumentError(f"dt must be positive, got {dt}")
        self._family = scene
        self._height, self._width = int(height), int(width)
        self._agent_ids = tuple(f"agent_{i}" for i in range(int(num_agents)))
        self._fov_deg = float(fov_deg)
        self._K = intrinsics_from_fov(self._width, self._height, self._fov_deg, axis="vertical")
        self._nav_limits, self._hand_limits, self._dt = nav_limits, hand_limits, float(dt)
        self._episode_rng = np.random.default_rng(seed)
        self._slot = _RendererSlot()
        self._finalizer = weakref.finalize(self, self._slot.close)
        self._spec: SceneSpec | None = None
        self._model: mujoco.MjModel | None = None
        self._data: mujoco.MjData | None = None
        self._frame_id = 0

    # ------------------------------------------------------------------ World protocol
    def handshake(self) -> WorldInfo:
        """Name, capabilities, agents and resolution; valid before reset."""
        capabilities = (
            CAPABILITY_RGB,
            CAPABILITY_DEPTH,
            CAPABILITY_NAV_KEYS,
            CAPABILITY_NAV_CONTINUOUS,
            CAPABILITY_SET_POSE,
            CAPABILITY_COLLISION,
        ) + ((CAPABILITY_HANDS,) if self._family == "tabletop" else ())
        return WorldInfo(
            name=WORLD_NAME,
            capabilities=capabilities,
            agent_ids=self._agent_ids,
            height=self._height,
            width=self._width,
            extra={
                "scene": self._family,
                "fov_deg": self._fov_deg,
                "dt": self._dt,
                "families": SCENE_FAMILIES,
            },
        )

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> dict[str, Observation]:
        """Builds a new procedural scene and returns every agent's first frame.

        Args:
            seed: scene seed; the same seed gives the same scene and bit-identical frames.
                None draws one from the constructor's generator.
            options: {"scene": "rooms" | "tabletop"} switches the family (and stays
                switched); {"start_poses": {agent_id: 4x4 pose} or [pose, ...]} overrides
                start cameras (camera-to-world, OpenCV).
        """
        options = dict(options or {})
        unknown = set(options) - {"scene", "start_poses"}
        if unknown:
            raise InvalidArgumentError(f"options has unknown keys {sorted(unknown)}")
        if "scene" in options:
            _check_family(options["scene"], "options['scene']")
        start_poses = self._parse_start_poses(options.get("start_poses"))
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
            raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}")
        self._family = options.get("scene", self._family)
        scene_seed = int(seed) if seed is not None else int(self._episode_rng.integers(_SEED_BOUND))
        rng = np.random.default_rng(scene_seed)
        spec = build_scene(
            self._family, rng, len(self._agent_ids), self._fov_deg, (self._width, self._height)
        )
        self._load(spec)
        start_cameras = self._choose_starts(start_poses)
        for i, pose in enumerate(start_cameras):
            self._set_camera(i, pose)
        if spec.has_hands:
            self._reset_hands(start_cameras)
        self._settle()
        self._frame_id = 0
        return {agent: self._observe(i, collided=False) for i, agent in enumerate(self._agent_ids)}

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """Applies one action per agent (missing agents: noop), advances dt, renders all."""
        self._require_reset()
        chosen = self._validate_actions(actions)
        collided = [False] * len(self._agent_ids)
        for i, action in enumerate(chosen):
            if action.kind == "hand":
                self._hands[i].act(self._data, action.hand_vector, self._pose(i), self._hand_limits)
            else:
                collided[i] = self._navigate(i, action)
        self._advance(self._dt)
        self._frame_id += 1
        return {agent: self._observe(i, collided[i]) for i, agent in enumerate(self._agent_ids)}

    def set_pose(self, agent_id: str, pose: ArrayLike) -> Observation:
        """Teleports one camera (no collision check, no time passes) and renders it."""
        self._require_reset()
        index = self._agent_index(agent_id, "agent_id")
        self._set_camera(index, validate_pose(pose, "pose"))
        self._refresh_kinematics()
        return self._observe(index, collided=False)

    def close(self) -> None:
        """Frees the renderer; idempotent. The world may be reset again afterwards."""
        self._slot.close()

    # ------------------------------------------------------------------ introspection
    @property
    def model(self) -> mujoco.MjModel:
        """The current episode's compiled model (read it; do not edit it)."""
        self._require_reset()
        return self._model

    @property
    def data(self) -> mujoco.MjData:
        """The current episode's simulation state (read it; do not edit it)."""
        self._require_reset()
        return self._data

    @property
    def scene_spec(self) -> SceneSpec:
        """The generated scene (MJCF text, metadata) of the current episode."""
        self._require_reset()
        return self._spec

    @property
    def K(self) -> F64:
        """The intrinsics every agent renders with."""
        return self._K.copy()

    def camera_pose(self, agent_id: str) -> F64:
        """Current camera-to-world OpenCV pose of an agent."""
        self._require_reset()
        return self._pose(self._agent_index(agent_id, "agent_id"))

    def wrist_poses(self, agent_id: str) -> F64:
        """(2, 4, 4) simulated wrist poses (left, right) in the world frame (tabletop only)."""
        return self._hands_of(agent_id).wrist_poses(self._data)

    def grips(self, agent_id: str) -> F64:
        """(2,) current grip targets (left, right) (tabletop only)."""
        return self._hands_of(agent_id).grips.copy()

    # ------------------------------------------------------------------ internals
    def _load(self, spec: SceneSpec) -> None:
        self._spec = spec
        self._model = mujoco.MjModel.from_xml_string(spec.xml)
        self._data = mujoco.MjData(self._model)
        self._cam_ids = []
        for agent in self._agent_ids:
            cam = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, agent)
            if cam < 0:
                raise RuntimeError(f"scene {spec.family!r} has no camera {agent!r}")
            self._cam_ids.append(int(cam))
        self._hands = [HandRig(self._model, a) for a in self._agent_ids] if spec.has_hands else []
        hand_bodies = set().union(*(rig.bodies for rig in self._hands))
        self._collider = SphereCollider(self._model, exclude_bodies=hand_bodies)
        mujoco.mj_forward(self._model, self._data)

    def _hands_of(self, agent_id: str) -> HandRig:
        self._require_reset()
        index = self._agent_index(agent_id, "agent_id")
        if not self._hands:
            raise FailedPreconditionError(f"scene {self._family!r} has no hands")
        return self._hands[index]

    def _parse_start_poses(self, value: Any) -> dict[int, F64]:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return {
                self._agent_index(k, "options['start_poses']"): validate_pose(v, f"start_poses[{k!r}]")
                for k, v in value.items()
            }
        if isinstance(value, Sequence) or isinstance(value, np.ndarray):
            if len(value) > len(self._agent_ids):
                raise InvalidArgumentError(
                    f"options['start_poses'] has {len(value)} poses for {len(self._agent_ids)} agents"
                )
            return {i: validate_pose(v, f"start_poses[{i}]") for i, v in enumerate(value)}
        raise InvalidArgumentError("options['start_poses'] must map agent ids to 4x4 poses or list them")

    def _choose_starts(self, overrides: dict[int, F64]) -> list[F64]:
        """Agent i takes its override or the i-th candidate clear of every solid geom."""
        radius = self._spec.agent_radius
        free = [
            p for p in self._spec.start_candidates if self._collider.distance(self._data, p[:3, 3]) > radius
        ]
        if len(free) < len(self._agent_ids):
            free += list(self._spec.start_candidates)  # degenerate layouts: accept what there is
        return [overrides.get(i, free[i % len(free)]) for i in range(len(self._agent_ids))]

    def _reset_hands(self, camera_poses: list[F64]) -> None:
        """Places each agent's hands at the default wrist poses relative to its camera, open."""
        defaults = default_wrist_poses_cam()
        for rig, camera in zip(self._hands, camera_poses, strict=True):
            rig.place(self._data, camera @ defaults)

    def _settle(self) -> None:
        if self._spec.dynamic and self._spec.settle_time > 0.0:
            self._advance(self._spec.settle_time)
        else:
            self._refresh_kinematics()

    def _advance(self, seconds: float) -> None:
        if self._spec.dynamic:
            for _ in range(max(1, round(seconds / self._model.opt.timestep))):
                mujoco.mj_step(self._model, self._data)
        self._refresh_kinematics()

    def _refresh_kinematics(self) -> None:
        """Body, site and camera poses for the current state (mj_step leaves them one step stale)."""
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_camlight(self._model, self._data)

    def _validate_actions(self, actions: Mapping[str, Action]) -> list[Action]:
        if not isinstance(actions, Mapping):
            raise InvalidArgumentError(f"actions must map agent ids to Actions, got {type(actions).__name__}")
        chosen = [Action.noop()] * len(self._agent_ids)
        for agent, action in actions.items():
            index = self._agent_index(agent, "actions")
            if not isinstance(action, Action):
                raise InvalidArgumentError(
                    f"actions[{agent!r}] must be an Action, got {type(action).__name__}"
                )
            kind = action.kind  # raises InvalidArgumentError when it sets zero or several kinds
            if kind == "hand" and not self._spec.has_hands:
                raise InvalidArgumentError(
                    f"actions[{agent!r}].hand_vector: scene {self._family!r} has no hands; "
                    "use key or nav actions"
                )
            chosen[index] = action
        return chosen

    def _agent_index(self, agent_id: Any, field: str) -> int:
        if agent_id not in self._agent_ids:
            raise InvalidArgumentError(
                f"{field}: unknown agent id {agent_id!r}; agents are {list(self._agent_ids)}"
            )
        return self._agent_ids.index(agent_id)

    def _navigate(self, index: int, action: Action) -> bool:
        """Moves one camera; returns True when the translation was blocked (rotation still applies)."""
        pose = self._pose(index)
        target = integrate_nav(pose, action_to_nav(action), self._nav_limits)
        blocked = not self._collider.sweep_is_free(
            self._data, pose[:3, 3], target[:3, 3], self._spec.agent_radius
        )
        if blocked:
            target = se3(target[:3, :3], pose[:3, 3])
        self._set_camera(index, target)
        return blocked

    def _set_camera(self, index: int, pose_cv: F64) -> None:
        cam = self._cam_ids[index]
        self._model.cam_pos[cam] = pose_cv[:3, 3]
        self._model.cam_quat[cam] = matrix_to_quat(pose_cv[:3, :3] @ _CV_TO_MJ)

    def _pose(self, index: int) -> F64:
        """The camera-to-world OpenCV pose MuJoCo renders from (data.cam_x*)."""
        cam = self._cam_ids[index]
        R = self._data.cam_xmat[cam].reshape(3, 3) @ _CV_TO_MJ
        return se3(R, self._data.cam_xpos[cam])

    def _observe(self, index: int, collided: bool) -> Observation:
        if self._slot.renderer is None:
            self._slot.renderer = OffscreenRenderer(self._height, self._width)
        rgb, depth = self._slot.renderer.render(self._model, self._data, self._cam_ids[index])
        pose = self._pose(index)
        keypoints = None
        if self._hands:
            world_to_cam = se3_inverse(pose)
            points = self._hands[index].keypoints_world(self._data)
            keypoints = (points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]).astype(np.float32)
        return Observation(
            rgb=rgb,
            depth=depth,
            pose=pose,
            K=self._K.copy(),
            frame_id=self._frame_id,
            sim_time=self._frame_id * self._dt,
            hand_keypoints=keypoints,
            collided=bool(collided),
        )

    def _require_reset(self) -> None:
        if self._model is None:
            raise FailedPreconditionError("call reset() before using the world")


def _check_family(family: Any, field: str) -> None:
    if family not in SCENE_FAMILIES:
        raise InvalidArgumentError(f"{field} must be one of {SCENE_FAMILIES}, got {family!r}")


__all__ = ["MujocoWorld"]
