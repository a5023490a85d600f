"""Shared pieces of the gRPC tests: a real deterministic World and raw-channel helpers.

GradientWorld's frames are gradients that depend on the camera pose, so a wrong pose, a
replayed step or a mixed-up session shows up as different pixels.
"""

from collections.abc import Mapping

import grpc
import numpy as np
import pytest

from bridge.actions import NavLimits, action_to_nav, integrate_nav
from bridge.conventions import intrinsics_from_fov, look_at
from bridge.grpc_status import SERVICE_NAME
from bridge.types import (
    CAPABILITY_DEPTH,
    CAPABILITY_RGB,
    CAPABILITY_SET_POSE,
    Action,
    InvalidArgumentError,
    Observation,
    WorldInfo,
)

SMALL = (24, 32)
FORWARD = Action.from_key(1)


class GradientWorld:
    """A deterministic World whose frames are gradients shifted by the camera pose."""

    def __init__(self, height: int = SMALL[0], width: int = SMALL[1], agents=("agent_0", "agent_1")):
        self.height, self.width, self.agents = height, width, tuple(agents)
        self.K = intrinsics_from_fov(width, height, 60.0)
        self.steps = 0  # engine steps actually taken: idempotent retries must not add any
        self.closed = False
        self.fail_next_step = False
        self.poses: dict[str, np.ndarray] = {}
        self.t = 0

    def handshake(self) -> WorldInfo:
        return WorldInfo(
            name="gradient",
            capabilities=(CAPABILITY_RGB, CAPABILITY_DEPTH, CAPABILITY_SET_POSE),
            agent_ids=self.agents,
            height=self.height,
            width=self.width,
        )

    def reset(self, seed=None, options: Mapping | None = None) -> dict[str, Observation]:
        self.t = 0
        offset = float(seed or 0) + float((options or {}).get("offset", 0.0))
        self.poses = {
            a: look_at([i + offset, 0.0, 1.0], [i + offset, 5.0, 1.0]) for i, a in enumerate(self.agents)
        }
        return {a: self._observe(a) for a in self.agents}

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("engine exploded")
        self.steps += 1
        self.t += 1
        for agent in self.agents:
            nav = action_to_nav(actions.get(agent, Action.noop()))
            self.poses[agent] = integrate_nav(self.poses[agent], nav, NavLimits())
        return {a: self._observe(a) for a in self.agents}

    def set_pose(self, agent_id: str, pose) -> Observation:
        if agent_id not in self.agents:
            raise InvalidArgumentError(f"unknown agent {agent_id!r}")
        self.poses[agent_id] = np.asarray(pose, dtype=np.float64)
        return self._observe(agent_id)

    def close(self) -> None:
        self.closed = True

    def _observe(self, agent: str) -> Observation:
        x, y, z = self.poses[agent][:3, 3]
        v, u = np.mgrid[0 : self.height, 0 : self.width]
        rgb = np.stack([(u + 10 * x) % 256, (v + 10 * y) % 256, np.full_like(u, self.t % 256)], axis=-1)
        return Observation(
            rgb=rgb.astype(np.uint8),
            depth=(1.0 + u / self.width + z).astype(np.float32),
            pose=self.poses[agent].copy(),
            K=self.K,
            frame_id=self.t,
            sim_time=0.1 * self.t,
        )


class Factory:
    """World factory that remembers what it made."""

    def __init__(self, height: int = SMALL[0], width: int = SMALL[1]):
        self.size = (height, width)
        self.made: list[GradientWorld] = []

    def __call__(self) -> GradientWorld:
        self.made.append(GradientWorld(*self.size))
        return self.made[-1]


def assert_same(a: Observation, b: Observation) -> None:
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_allclose(a.pose, b.pose, atol=1e-9)
    np.testing.assert_allclose(a.K, b.K)
    assert (a.frame_id, a.sim_time, a.collided) == (b.frame_id, b.sim_time, b.collided)


def raw_channel(server, **options):
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return grpc.insecure_channel(server.address, options=opts + list(options.items()))


def raw_unary(channel, method: str):
    """A method called with raw bytes in and out (no protobuf in the way)."""
    return channel.unary_unary(f"/{SERVICE_NAME}/{method}")


def rpc_code(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()
