"""Batched frame sources behind the envs: N streams = B worlds × A agents, as tensors.

Two backends give the envs one shape of data, whatever produces the frames:

- `GenerativeBackend`: the world model (`sim_env.runtime.GenerativeRuntime`), one batched
  forward per step, everything on the device. Reference frames come from a MuJoCo scene per
  world, rendered on the host at reset only.
- `HostWorldBackend`: B host `World`s (in-process MuJoCo or any `grpc://` World), stepped one
  by one; frames are stacked into tensors on the env's device.

Both return `Frames` (live tensors, clone to keep) and, at reset, the `SceneFacts` the tasks
need (where goals can be, where objects are), read from the scene that the frames show.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from bridge.types import HAND_KEYPOINTS, NUM_HANDS, Action, Observation, World
from sim_env.reference_scan import render_scan, views_per_position
from sim_env.reference_sweep import ReferenceViews
from sim_env.stream_noise import STREAM_SEED_STRIDE

log = logging.getLogger(__name__)

Frames = dict[str, torch.Tensor]
"""rgb uint8 (N, H, W, 3), depth float32 (N, H, W) (+inf = no hit), pose float64 (N, 4, 4),
K float64 (N, 3, 3), collided bool (N,), hand_keypoints float32 (N, 2, 21, 3) camera frame."""

OBJECT_BODY_PREFIX = "object"  # free bodies of the tabletop scene a hand can reach for


@dataclass(frozen=True)
class SceneFacts:
    """Exact geometry of one world's episode, read at reset from the scene generator.

    Attributes:
        goal_candidates: (M, 3) free camera positions (the scene's start candidates); empty when
            the world cannot tell (remote worlds).
        objects: (O, 3) centres of the movable objects at reset (tabletop), else empty.
    """

    goal_candidates: np.ndarray
    objects: np.ndarray

    @staticmethod
    def unknown() -> SceneFacts:
        """Facts of a world whose scene we cannot inspect."""
        return SceneFacts(np.zeros((0, 3)), np.zeros((0, 3)))


def mujoco_facts(world: World) -> SceneFacts:
    """Facts of a `MujocoWorld` right after its reset (anything else: unknown)."""
    from bridge.engines.mujoco_world import MujocoWorld

    if not isinstance(world, MujocoWorld):
        return SceneFacts.unknown()
    spec, model, data = world.scene_spec, world.model, world.data
    candidates = np.array([p[:3, 3] for p in spec.start_candidates], dtype=np.float64).reshape(-1, 3)
    objects = [
        data.xpos[b].copy()
        for b in range(model.nbody)
        if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or "").startswith(OBJECT_BODY_PREFIX)
    ]
    return SceneFacts(candidates, np.array(objects, dtype=np.float64).reshape(-1, 3))


def stack_observations(obs: Sequence[Observation], device: torch.device) -> Frames:
    """Stacks host Observations into a `Frames` dict on ``device``."""
    keypoints = np.stack(
        [
            o.hand_keypoints
            if o.hand_keypoints is not None
            else np.zeros((NUM_HANDS, HAND_KEYPOINTS, 3), np.float32)
            for o in obs
        ]
    )
    arrays = {
        "rgb": np.stack([o.rgb for o in obs]),
        "depth": np.stack([o.depth for o in obs]).astype(np.float32),
        "pose": np.stack([o.pose for o in obs]),
        "K": np.stack([o.K for o in obs]),
        "collided": np.array([o.collided for o in obs], dtype=bool),
        "hand_keypoints": keypoints.astype(np.float32),
    }
    return {k: torch.as_tensor(v).to(device) for k, v in arrays.items()}


class HostWorldBackend:
    """B host Worlds with A agents each; agent a of world b is stream ``b·A + a``.

    Args:
        worlds: the B worlds (built by `sim_env.envs.world_factory`).
        device: where the returned tensors live.
    """

    def __init__(self, worlds: Sequence[World], device: torch.device) -> None:
        self.worlds = list(worlds)
        self.device = device
        self.agent_ids = [tuple(w.handshake().agent_ids) for w in self.worlds]
        self.agents_per_world = len(self.agent_ids[0])
        if any(len(ids) != self.agents_per_world for ids in self.agent_ids):
            raise ValueError("every world of a backend must have the same number of agents")
        self.num_worlds = len(self.worlds)
        self._latest: list[Observation] = []

    def reset(self, seeds: Sequence[int], world_mask: np.ndarray) -> tuple[Frames, list[SceneFacts | None]]:
        """Resets the worlds in ``world_mask`` with their seeds; facts are None for the others."""
        facts: list[SceneFacts | None] = [None] * self.num_worlds
        latest = list(self._latest) or [None] * (self.num_worlds * self.agents_per_world)
        for b, world in enumerate(self.worlds):
            if not world_mask[b]:
                continue
            obs = world.reset(seed=int(seeds[b]))
            for a, agent in enumerate(self.agent_ids[b]):
                latest[b * self.agents_per_world + a] = obs[agent]
            facts[b] = mujoco_facts(world)
        self._latest = latest
        return stack_observations(latest, self.device), facts

    def step(self, nav: torch.Tensor, hand: torch.Tensor | None) -> Frames:
        """One step of every world; ``nav`` (N, 6) and ``hand`` (N, 14) or None (then nav applies)."""
        nav_np = nav.detach().cpu().numpy().astype(np.float64)
        hand_np = None if hand is None else hand.detach().cpu().numpy().astype(np.float64)
        latest: list[Observation] = []
        for b, world in enumerate(self.worlds):
            actions = {}
            for a, agent in enumerate(self.agent_ids[b]):
                i = b * self.agents_per_world + a
                actions[agent] = (
                    Action.from_hand(hand_np[i])
                    if hand_np is not None
                    else Action.from_nav(np.clip(nav_np[i], -1, 1))
                )
            obs = world.step(actions)
            latest.extend(obs[agent] for agent in self.agent_ids[b])
        self._latest = latest
        return stack_observations(latest, self.device)

    def close(self) -> None:
        """Closes every world."""
        for world in self.worlds:
            world.close()


class GenerativeBackend:
    """The world model over B worlds × A agents, with MuJoCo reference frames per world.

    Args:
        runtime: a `GenerativeRuntime` built for B worlds and A agents per world.
        scene: MuJoCo family of the reference scenes.
        reference_positions: the runtime's ``reference_views`` are a sweep at this many positions
            (`sim_env.reference_scan`).
    """

    def __init__(self, runtime, scene: str, reference_positions: int = 1) -> None:
        self.views_per_position = views_per_position(runtime.reference_views, reference_positions)
        self.runtime = runtime
        self.scene = scene
        self.reference_positions = int(reference_positions)
        self.device = runtime.device
        self.num_worlds, self.agents_per_world = runtime.num_worlds, runtime.agents_per_world
        n, h, w = runtime.num_streams, runtime.height, runtime.width
        # Reference buffers keep full (N, ...) shapes; reset_batch reads only the masked rows.
        self._ref_rgb = torch.zeros(n, h, w, 3, dtype=torch.uint8)
        self._ref_depth = torch.full((n, h, w), float("inf"))
        self._ref_K = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
        self._ref_pose = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
        self._ref_hands = torch.full((n, NUM_HANDS, HAND_KEYPOINTS, 3), float("nan"))
        self._seeds = [0] * n
        self._sweep: list[list[Observation]] = [[] for _ in range(n)]  # each stream's last sweep
        self._engine = None

    def reset(self, seeds: Sequence[int], world_mask: np.ndarray) -> tuple[Frames, list[SceneFacts | None]]:
        """Renders references for the masked worlds and resets only their streams."""
        from bridge.engines.mujoco_world import MujocoWorld

        rt, a = self.runtime, self.agents_per_world
        if self._engine is None:
            self._engine = MujocoWorld(
                self.scene,
                rt.config.image_height,
                rt.config.image_width,
                num_agents=a,
                fov_deg=rt.fov_deg,
                nav_limits=rt.nav_limits,
            )
        facts: list[SceneFacts | None] = [None] * self.num_worlds
        for b in np.flatnonzero(world_mask):
            frames = self._engine.reset(seed=int(seeds[b]))
            facts[b] = mujoco_facts(self._engine)
            for k in range(a):
                i, obs = b * a + k, frames[f"agent_{k}"]
                per_position, spots = self.views_per_position, self.reference_positions
                views = render_scan(self._engine, f"agent_{k}", obs, per_position, spots)
                self._sweep[i] = views
                self._ref_rgb[i] = torch.from_numpy(obs.rgb)
                self._ref_depth[i] = torch.from_numpy(obs.depth)
                self._ref_K[i] = torch.from_numpy(obs.K)
                self._ref_pose[i] = torch.from_numpy(obs.pose)
                if obs.hand_keypoints is not None:
                    self._ref_hands[i] = torch.from_numpy(obs.hand_keypoints)
                else:
                    self._ref_hands[i] = float("nan")
                self._seeds[i] = int(seeds[b]) * STREAM_SEED_STRIDE + k
        mask = torch.as_tensor(np.asarray(world_mask, dtype=bool), device=self.device)
        dev = self.device
        # Streams outside the mask keep their last sweep: reset_batch reads only the masked rows.
        sweep = ReferenceViews.from_observations(self._sweep) if rt.reference_views > 1 else None
        out = rt.reset_batch(
            self._ref_rgb.to(dev),
            self._ref_depth.to(dev),
            self._ref_K.to(dev),
            self._ref_pose.to(dev),
            stream_seeds=self._seeds,
            world_mask=mask,
            reference_hands=self._ref_hands.to(dev),
            sweep=sweep,
        )
        return self._frames(out), facts

    def step(self, nav: torch.Tensor, hand: torch.Tensor | None) -> Frames:
        """One batched model forward for every stream (no host synchronisation)."""
        out = self.runtime.step_batch(nav, hand)
        return self._frames(out)

    def _frames(self, out: dict[str, torch.Tensor]) -> Frames:
        rt = self.runtime
        keypoints = rt.hands.keypoints(rt.wrist, rt.grip).float()
        return {**{k: out[k] for k in ("rgb", "depth", "pose", "K", "collided")}, "hand_keypoints": keypoints}

    def close(self) -> None:
        """Frees the reference renderer."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
