"""`EnvConfig`: every keyword argument of the GenWorld envs, validated in one place.

The single env, the vector env and the PettingZoo env all take the same keywords, so they
are parsed once here and a bad value fails with an error naming the keyword.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bridge.types import InvalidArgumentError
from sim_env.reference_sweep import FULL_SWEEP_VIEWS

ACTION_KINDS = ("keys", "nav", "hand")
TASKS = ("pointgoal", "explore", "reach")
SCENES = ("rooms", "tabletop")
GRPC_SCHEME = "grpc://"
# Depth beyond this (and +inf, "no hit") is reported as this many metres: SB3 and most policies
# reject non-finite observations.
DEFAULT_DEPTH_FAR_M = 20.0
DEFAULT_MAX_EPISODE_STEPS = 500


@dataclass(frozen=True)
class EnvConfig:
    """What an env is built from (see docs/envs.md for the meaning of every field).

    Attributes:
        action_kind: "keys" (Discrete(9)), "nav" (Box(6)) or "hand" (Box(14)).
        task: "pointgoal", "explore" or "reach".
        world: "generative", "mujoco" or "grpc://HOST:PORT".
        checkpoint: "default" (the shipped tiny64 weights, random weights until they ship), a path,
            or None for random weights.
        device: torch device of the generative runtime and of the vector env's tensors.
        resolution: (height, width) of the frames; the generative world fixes it (64, 64 for tiny64).
        max_episode_steps: truncation horizon inside the env (None: none; `gymnasium.make` adds
            its own TimeLimit for the single env).
        shadow: None, "mujoco" or "grpc://HOST:PORT": ground truth stepped in lockstep.
        scene: MuJoCo scene family of the episode (and of the generative world's reference).
        denoising_steps: flow-matching steps per generated frame.
        reference_views: views of the generative world's reference at reset: the start frame and
            a sweep of the rest of the turn around it (`sim_env.reference_sweep`); 1 = the start
            frame only.
        reference_positions: the sweep of ``reference_views`` is rendered from this many
            positions: the start, then those `sim_env.reference_scan` chooses from what the views
            so far show; 1 = the start only. Opt-in: 4 spots with ``footprint_occlusion`` raise
            PSNR@32 by 2.2 dB on the GPU validation seeds, but cost 0.9 dB of loop closure on the
            CPU ones (docs/model.md); `genworld demo` runs them.
        footprint_occlusion: the generative world's memory voxels hide what lies behind their
            projected squares (`sim_env.memory.footprint_occlusion`); opt-in, see docs/model.md.
        sample_footprints: with ``footprint_occlusion``, a reference voxel hides what lies behind
            the pixels between its view's samples too (`sim_env.memory.sample_spacing`); opt-in.
        depth_far: observation depth is clipped to [0, depth_far] metres (+inf → depth_far).
        success_radius: metres; point-goal success when the goal is this close (horizontally).
        goal_distance: (min, max) metres between start and goal at reset.
        progress_scale: reward per metre of progress towards the goal / target.
        collision_penalty: subtracted when a move was blocked.
        success_bonus: added on the step that reaches the goal / target.
        explore_voxel: voxel edge (metres) of the exploration coverage grid.
        explore_reward: reward per newly observed voxel.
        explore_max_depth: only surfaces closer than this count as observed.
        reach_radius: metres between a palm and the target that count as reached.
        render_mode: None, "rgb_array" or "human".
    """

    action_kind: str = "keys"
    task: str = "pointgoal"
    world: str = "generative"
    checkpoint: str | None = "default"
    device: str = "cpu"
    resolution: tuple[int, int] = (64, 64)
    max_episode_steps: int | None = DEFAULT_MAX_EPISODE_STEPS
    shadow: str | None = None
    scene: str = "rooms"
    denoising_steps: int = 4
    reference_views: int = FULL_SWEEP_VIEWS
    reference_positions: int = 1
    footprint_occlusion: bool = False
    sample_footprints: bool = False
    depth_far: float = DEFAULT_DEPTH_FAR_M
    success_radius: float = 0.5
    goal_distance: tuple[float, float] = (1.0, 5.0)
    progress_scale: float = 1.0
    collision_penalty: float = 0.05
    success_bonus: float = 5.0
    explore_voxel: float = 0.25
    explore_reward: float = 0.01
    explore_max_depth: float = 5.0
    reach_radius: float = 0.06
    render_mode: str | None = None

    def __post_init__(self) -> None:
        _one_of("action_kind", self.action_kind, ACTION_KINDS)
        _one_of("task", self.task, TASKS)
        _one_of("scene", self.scene, SCENES)
        _one_of("render_mode", self.render_mode, (None, "rgb_array", "human"))
        if not _is_world_spec(self.world, allow_generative=True):
            raise InvalidArgumentError(
                f"world must be 'generative', 'mujoco' or 'grpc://HOST:PORT', got {self.world!r}"
            )
        if self.shadow is not None and not _is_world_spec(self.shadow, allow_generative=False):
            raise InvalidArgumentError(
                f"shadow must be None, 'mujoco' or 'grpc://HOST:PORT', got {self.shadow!r}"
            )
        res = tuple(self.resolution)
        if len(res) != 2 or any(isinstance(v, bool) or int(v) != v or v < 8 for v in res):
            raise InvalidArgumentError(
                f"resolution must be (height, width) ints >= 8, got {self.resolution!r}"
            )
        object.__setattr__(self, "resolution", (int(res[0]), int(res[1])))
        if self.max_episode_steps is not None and (
            int(self.max_episode_steps) != self.max_episode_steps or self.max_episode_steps < 1
        ):
            raise InvalidArgumentError(
                f"max_episode_steps must be a positive int or None, got {self.max_episode_steps!r}"
            )
        if int(self.denoising_steps) != self.denoising_steps or self.denoising_steps < 1:
            raise InvalidArgumentError(
                f"denoising_steps must be a positive int, got {self.denoising_steps!r}"
            )
        for name in ("footprint_occlusion", "sample_footprints"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("reference_views", "reference_positions"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        lo, hi = self.goal_distance
        if not 0.0 <= lo <= hi:
            raise InvalidArgumentError(
                f"goal_distance must be (min, max) with 0 <= min <= max, got {self.goal_distance!r}"
            )
        for name in ("depth_far", "success_radius", "explore_voxel", "explore_max_depth", "reach_radius"):
            if not getattr(self, name) > 0.0:
                raise InvalidArgumentError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.task == "reach" and self.action_kind != "hand":
            raise InvalidArgumentError("task 'reach' needs action_kind 'hand' (GenWorld/Manipulate-v0)")
        if self.action_kind == "hand" and self.scene != "tabletop":
            raise InvalidArgumentError("hand actions need scene 'tabletop'")

    @property
    def is_generative(self) -> bool:
        """True when frames come from the world model."""
        return self.world == "generative"

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvConfig:
        """Builds a config from env keyword arguments, rejecting unknown ones by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidArgumentError(f"unknown env keyword(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {allowed}, got {value!r}")


def _is_world_spec(spec: Any, allow_generative: bool) -> bool:
    if not isinstance(spec, str):
        return False
    if spec == "mujoco" or (allow_generative and spec == "generative"):
        return True
    return spec.startswith(GRPC_SCHEME) and ":" in spec[len(GRPC_SCHEME) :]
