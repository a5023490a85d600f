"""`MujocoWorld`: the in-process ground-truth World over procedural MuJoCo scenes.

One MuJoCo model per episode holds every agent's camera (and, in `tabletop`, each
agent's two hands). Cameras are world-fixed MJCF cameras that the engine moves through
`model.cam_pos / cam_quat`; navigation uses the shared semantics of `bridge.actions`, with
an engine-side sphere collision check, and hand actions the shared kinematics of
`bridge.hands`. Frames come from one offscreen render pass per agent (RGB + planar
depth). Same seed, same MJCF, same physics, same frames, bit for bit.

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
from bridge.engines.mujoco_render import OffscreenRenderer
from bridge.engines.scenes import SCENE_FAMILIES, SceneSpec, build_scene
from bridge.engines.scenes.hand_mjcf import hand_names, max_flexions
from bridge.hands import (
    HAND_ACTION_DIM,
    LEFT,
    RIGHT,
    HandLimits,
    apply_hand_action,
    default_wrist_poses_cam,
)
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
        collider_poses = self._choose_starts(start_poses)
        for i, pose in enumerate(collider_poses):
            self._set_camera(i, pose)
        if spec.has_hands:
            self._reset_hands(collider_poses)
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
                self._apply_hands(i, action.hand_vector)
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
        """(2, 4, 4) actual wrist poses (left, right) in the world frame, from the simulation."""
        self._require_reset()
        index = self._agent_index(agent_id, "agent_id")
        return np.stack([self._body_pose(self._wrist_body[index][s]) for s in (LEFT, RIGHT)])

    def grips(self, agent_id: str) -> F64:
        """(2,) current grip targets (left, right)."""
        self._require_reset()
        return self._grips[self._agent_index(agent_id, "agent_id")].copy()

    # ------------------------------------------------------------------ internals
    def _load(self, spec: SceneSpec) -> None:
        self._slot.close()  # the renderer is bound to the old model
        self._spec = spec
        self._model = mujoco.MjModel.from_xml_string(spec.xml)
        self._data = mujoco.MjData(self._model)
        self._cam_ids = [self._id(mujoco.mjtObj.mjOBJ_CAMERA, a) for a in self._agent_ids]
        hand_bodies: set[int] = set()
        self._mocap, self._wrist_body, self._sites, self._actuators = [], [], [], []
        self._grips = np.zeros((len(self._agent_ids), 2))
        if spec.has_hands:
            for agent in self._agent_ids:
                names = [hand_names(agent, s) for s in (LEFT, RIGHT)]
                self._wrist_body.append([self._id(mujoco.mjtObj.mjOBJ_BODY, n["wrist"]) for n in names])
                mocap_bodies = [self._id(mujoco.mjtObj.mjOBJ_BODY, n["mocap"]) for n in names]
                self._mocap.append([int(self._model.body_mocapid[b]) for b in mocap_bodies])
                self._sites.append(
                    [[self._id(mujoco.mjtObj.mjOBJ_SITE, s) for s in n["sites"]] for n in names]
                )
                self._actuators.append(
                    [[self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in n["actuators"]] for n in names]
                )
                for n in names:
                    prefix = n["body_prefix"]
                    hand_bodies.update(
                        b for b in range(self._model.nbody) if self._model.body(b).name.startswith(prefix)
                    )
        self._collider = SphereCollider(self._model, exclude_bodies=hand_bodies)
        mujoco.mj_forward(self._model, self._data)

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(self._model, kind, name)
        if index < 0:
            raise RuntimeError(f"scene is missing {kind.name} {name!r}")
        return int(index)

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
        """Places each agent's hands at the default wrist poses relative to its camera."""
        defaults = default_wrist_poses_cam()
        for i, cam in enumerate(camera_poses):
            for side in (LEFT, RIGHT):
                wrist = cam @ defaults[side]
                self._write_mocap(i, side, wrist)
                joint = self._model.body_jntadr[self._wrist_body[i][side]]
                adr = self._model.jnt_qposadr[joint]
                self._data.qpos[adr : adr + 3] = wrist[:3, 3]
                self._data.qpos[adr + 3 : adr + 7] = matrix_to_quat(wrist[:3, :3])
            self._grips[i] = 0.0
            self._write_grip_ctrl(i)

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

    def _apply_hands(self, index: int, vector: F64) -> None:
        camera = self._pose(index)
        for side in (LEFT, RIGHT):
            part = vector[side * HAND_ACTION_DIM : (side + 1) * HAND_ACTION_DIM]
            mocap = self._mocap[index][side]
            current = se3(_quat_matrix(self._data.mocap_quat[mocap]), self._data.mocap_pos[mocap])
            wrist, grip = apply_hand_action(
                current, self._grips[index][side], part, self._hand_limits, camera
            )
            self._write_mocap(index, side, wrist)
            self._grips[index][side] = grip
        self._write_grip_ctrl(index)

    def _write_mocap(self, index: int, side: int, pose: F64) -> None:
        mocap = self._mocap[index][side]
        self._data.mocap_pos[mocap] = pose[:3, 3]
        self._data.mocap_quat[mocap] = matrix_to_quat(pose[:3, :3])

    def _write_grip_ctrl(self, index: int) -> None:
        for side in (LEFT, RIGHT):
            self._data.ctrl[self._actuators[index][side]] = self._grips[index][side] * max_flexions(side)

    def _set_camera(self, index: int, pose_cv: F64) -> None:
        cam = self._cam_ids[index]
        self._model.cam_pos[cam] = pose_cv[:3, 3]
        self._model.cam_quat[cam] = matrix_to_quat(pose_cv[:3, :3] @ _CV_TO_MJ)

    def _pose(self, index: int) -> F64:
        """The camera-to-world OpenCV pose MuJoCo renders from (data.cam_x*)."""
        cam = self._cam_ids[index]
        R = self._data.cam_xmat[cam].reshape(3, 3) @ _CV_TO_MJ
        return se3(R, self._data.cam_xpos[cam])

    def _body_pose(self, body: int) -> F64:
        return se3(self._data.xmat[body].reshape(3, 3), self._data.xpos[body])

    def _observe(self, index: int, collided: bool) -> Observation:
        if self._slot.renderer is None:
            self._slot.renderer = OffscreenRenderer(self._model, self._height, self._width)
        rgb, depth = self._slot.renderer.render(self._data, self._cam_ids[index])
        pose = self._pose(index)
        keypoints = None
        if self._spec.has_hands:
            world_to_cam = se3_inverse(pose)
            points = np.stack([self._data.site_xpos[self._sites[index][s]] for s in (LEFT, RIGHT)])
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


def _quat_matrix(q: ArrayLike) -> F64:
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, np.asarray(q, dtype=np.float64))
    return R.reshape(3, 3)


def _check_family(family: Any, field: str) -> None:
    if family not in SCENE_FAMILIES:
        raise InvalidArgumentError(f"{field} must be one of {SCENE_FAMILIES}, got {family!r}")


__all__ = ["MujocoWorld"]
