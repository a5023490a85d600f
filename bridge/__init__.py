"""GenWorld bridge: the World protocol, conventions, gRPC transport, engines and datasets.

`bridge` never imports `sim_env`; shared primitives (poses, cameras, actions, hands,
observations) live here because the wire protocol defines them.
"""

from bridge.types import (
    PROTOCOL_VERSION,
    Action,
    ConnectionLostError,
    FailedPreconditionError,
    InvalidArgumentError,
    Observation,
    ResourceExhaustedError,
    SessionLostError,
    UnauthenticatedError,
    VersionMismatchError,
    World,
    WorldError,
    WorldInfo,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Action",
    "ConnectionLostError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "Observation",
    "ResourceExhaustedError",
    "SessionLostError",
    "UnauthenticatedError",
    "VersionMismatchError",
    "World",
    "WorldClient",
    "WorldError",
    "WorldInfo",
    "serve",
]


def __getattr__(name: str):  # lazy: importing bridge must not pull grpc for dataset users
    if name == "WorldClient":
        from bridge.client import WorldClient

        return WorldClient
    if name == "serve":
        from bridge.server import serve

        return serve
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")
