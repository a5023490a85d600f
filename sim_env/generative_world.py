"""The generative world behind the `bridge.World` protocol (numpy Observations, agent ids).

The tensor API and the step itself live in `sim_env.runtime.GenerativeRuntime`; this layer
names the streams, converts actions and observations, and renders reference frames from
MuJoCo when the caller gives none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from bridge.actions import action_to_nav
from bridge.types import (
    CAPABILITY_COLLISION,
    CAPABILITY_DEPTH,
    CAPABILITY_HANDS,
    CAPABILITY_NAV_CONTINUOUS,
    CAPABILITY_NAV_KEYS,
    CAPABILITY_RGB,
    CAPABILITY_SET_POSE,
    HAND_DIM,
    NAV_DIM,
    Action,
    InvalidArgumentError,
    Observation,
    WorldInfo,
    validate_pose,
)
from sim_env.reference_scan import render_scan, views_per_position
from sim_env.reference_sweep import ReferenceViews, as_views
from sim_env.runtime import WORLD_NAME, GenerativeRuntime


class GenerativeWorld(GenerativeRuntime):
    """`GenerativeRuntime` as a `bridge.World`: same constructor arguments, see there.

    For chunked latent configs (``wan2.1-1.3b``: 12 video frames per step) each agent's
    Observation is the LAST video frame of the chunk (rgb, depth, pose); ``frame_id`` counts
    video frames, so ``sim_time = frame_id · dt`` advances 12·dt per step. The whole chunk stays
    readable in ``frames_rgb`` / ``frames_depth`` / ``frames_pose`` (N, F, ...) until the next step.

    ``reference_positions`` (keyword only, default 1): when the world renders its own references
    (reset without ``options["reference"]``), its ``reference_views`` are a sweep at this many
    positions (`sim_env.reference_scan`), ``reference_views / reference_positions`` views each.
    """

    def __init__(self, *args: Any, reference_positions: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.views_per_position = views_per_position(self.reference_views, reference_positions)
        self.reference_positions = int(reference_positions)

    @property
    def agent_ids(self) -> tuple[str, ...]:
        """``agent_{a}`` for one world, ``world_{b}/agent_{a}`` otherwise; stream order."""
        if self.num_worlds == 1:
            return tuple(f"agent_{a}" for a in range(self.agents_per_world))
        return tuple(
            f"world_{b}/agent_{a}" for b in range(self.num_worlds) for a in range(self.agents_per_world)
        )

    def handshake(self) -> WorldInfo:
        """Name, capabilities, agents and resolution; valid before reset."""
        caps = (CAPABILITY_RGB, CAPABILITY_DEPTH, CAPABILITY_NAV_KEYS, CAPABILITY_NAV_CONTINUOUS)
        caps += (CAPABILITY_SET_POSE, CAPABILITY_COLLISION, CAPABILITY_HANDS)
        extra = {"config": self.config.name, "num_worlds": self.num_worlds, "fov_deg": self.fov_deg}
        extra |= {"agents_per_world": self.agents_per_world, "checkpoint": self.checkpoint, "dt": self.dt}
        return WorldInfo(
            WORLD_NAME,
            capabilities=caps,
            agent_ids=self.agent_ids,
            height=self.height,
            width=self.width,
            extra=extra,
        )

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> dict[str, Observation]:
        """Start an episode from reference frames.

        Args:
            seed: episode seed (noise streams; and the MuJoCo scenes when rendered). None: ``seed``.
            options: ``{"reference": {agent_id: Observation}}`` gives every agent's reference
                RGB-D + pose, or ``{agent_id: [reference, *sweep]}`` with up to
                ``reference_views`` − 1 sweep views (`sim_env.reference_sweep`); without it world
                b's agents are rendered by a ``bridge.engines.MujocoWorld(scene=options.get("scene",
                "rooms"))`` reset with seed ``seed + b`` (so world 0 matches a MujocoWorld reset at
                the same seed), each with the full sweep of ``reference_views`` views (at
                ``reference_positions`` positions).
        """
        options = dict(options or {})
        unknown = set(options) - {"reference", "scene"}
        if unknown:
            raise InvalidArgumentError(f"options has unknown keys {sorted(unknown)}")
        seed = self.seed if seed is None else int(seed)
        reference = options.get("reference") or self._render_reference(seed, options.get("scene", "rooms"))
        missing = set(self.agent_ids) - set(reference)
        if missing:
            raise InvalidArgumentError(f"options['reference'] lacks agents {sorted(missing)}")
        views = ReferenceViews.from_observations(
            [as_views(reference[agent], f"options['reference'][{agent!r}]") for agent in self.agent_ids]
        )
        rgb, depth, K, pose, hands = views.view(0)
        self.reset_batch(rgb, depth, K, pose, seed=seed, reference_hands=hands, sweep=views.after_first())
        return self._observations()

    def _render_reference(self, seed: int, scene: str) -> dict[str, list[Observation]]:
        from bridge.engines.mujoco_world import MujocoWorld  # MuJoCo only when asked for

        out: dict[str, list[Observation]] = {}
        ids = self.agent_ids
        for b in range(self.num_worlds):
            engine = MujocoWorld(
                scene,
                self.config.image_height,
                self.config.image_width,
                num_agents=self.agents_per_world,
                fov_deg=self.fov_deg,
                nav_limits=self.nav_limits,
            )
            try:
                frames = engine.reset(seed=seed + b)
                for a in range(self.agents_per_world):
                    start = frames[f"agent_{a}"]
                    per_position, spots = self.views_per_position, self.reference_positions
                    sweep = render_scan(engine, f"agent_{a}", start, per_position, spots)
                    out[ids[b * self.agents_per_world + a]] = [start, *sweep]
            finally:
                engine.close()
        return out

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """One step (one frame, or one chunk returned as its last frame); missing agents take the noop."""
        self._require_reset()
        ids = self.agent_ids
        unknown = set(actions) - set(ids)
        if unknown:
            raise InvalidArgumentError(f"unknown agent ids {sorted(unknown)}")
        nav = np.zeros((self.num_streams, NAV_DIM))
        hand = np.zeros((self.num_streams, HAND_DIM))
        hand_mask = np.zeros(self.num_streams, dtype=bool)
        for i, agent in enumerate(ids):
            action = actions.get(agent, Action.noop())
            if action.kind == "hand":
                hand[i], hand_mask[i] = action.hand_vector, True
            else:
                nav[i] = action_to_nav(action)
        self.step_batch(torch.as_tensor(nav), torch.as_tensor(hand), torch.as_tensor(hand_mask))
        return self._observations()

    def set_pose(self, agent_id: str, pose: ArrayLike) -> Observation:
        """Teleport one agent (no collision check, no time passes) and generate its frame there."""
        self._require_reset()
        if agent_id not in self.agent_ids:
            raise InvalidArgumentError(f"unknown agent id {agent_id!r}")
        index = self.agent_ids.index(agent_id)
        target = self.pose.clone()
        target[index] = torch.as_tensor(validate_pose(pose, "pose"), device=self.device)
        mask = torch.zeros(self.num_streams, dtype=torch.bool, device=self.device)
        mask[index] = True
        self.teleport_batch(target, mask)
        return self._observations()[agent_id]

    def close(self) -> None:
        """Marks the world closed (step/set_pose then fail); idempotent. Memory goes with the object."""
        self._closed = True

    def _observations(self) -> dict[str, Observation]:
        """The live buffers as numpy Observations (the one host sync of the World wrapper).

        Copies: on the CPU ``Tensor.numpy()`` would alias the buffers that the
        next step overwrites in place.
        """
        rgb, depth, pose, K = (t.cpu().numpy().copy() for t in (self.rgb, self.depth, self.pose, self.K))
        collided, frame_id = self.collided.cpu().numpy().copy(), self.frame_id.cpu().numpy().copy()
        active = self.hands_active.cpu().numpy().copy()
        keypoints = self.hands.keypoints(self.wrist, self.grip).float().cpu().numpy().copy()
        return {
            agent: Observation(
                rgb=rgb[i],
                depth=depth[i],
                pose=pose[i],
                K=K[i],
                frame_id=int(frame_id[i]),
                sim_time=float(frame_id[i]) * self.dt,
                hand_keypoints=keypoints[i] if active[i] else None,
                collided=bool(collided[i]),
            )
            for i, agent in enumerate(self.agent_ids)
        }
