"""Turns a world spec string (`mujoco`, `grpc://HOST:PORT`) into a live World."""

from __future__ import annotations

from typing import Any

from bridge.types import World

GRPC_SCHEME = "grpc://"


def make_world(spec: str, **engine_kwargs: Any) -> World:
    """Builds the World a CLI flag or env kwarg names.

    Args:
        spec: `mujoco` for the in-process engine, or `grpc://HOST:PORT` for any remote
            World (the MuJoCo server, the C++ core, Unreal, a generative server).
        **engine_kwargs: forwarded to `MujocoWorld` (scene, height, width, num_agents ...);
            ignored for remote worlds, whose server fixes them.
    """
    if spec == "mujoco":
        from bridge.engines.mujoco_world import MujocoWorld

        return MujocoWorld(**engine_kwargs)
    if spec.startswith(GRPC_SCHEME):
        from bridge.client import WorldClient

        return WorldClient(spec[len(GRPC_SCHEME) :])
    raise ValueError(f"unknown world {spec!r}: expected 'mujoco' or 'grpc://HOST:PORT'")
