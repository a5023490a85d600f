"""The one mapping between World errors and gRPC status codes, used by both ends.

Keeping both directions in one table means a server-side InvalidArgumentError comes out
of the client as an InvalidArgumentError with the server's message, whatever the RPC.
"""

from __future__ import annotations

import grpc

from bridge.types import (
    ConnectionLostError,
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
    SessionLostError,
    UnauthenticatedError,
    VersionMismatchError,
    WorldError,
)

SERVICE_NAME = "genworld.v1.WorldService"
SESSION_METADATA_KEY = "genworld-session"
AUTH_METADATA_KEY = "authorization"
BEARER_PREFIX = "Bearer "

# Most specific first: the first matching class decides the status.
_ERROR_TO_STATUS: tuple[tuple[type[WorldError], grpc.StatusCode], ...] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (VersionMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (SessionLostError, grpc.StatusCode.NOT_FOUND),
    (ConnectionLostError, grpc.StatusCode.UNAVAILABLE),
)

_STATUS_TO_ERROR: dict[grpc.StatusCode, type[WorldError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.NOT_FOUND: SessionLostError,
    grpc.StatusCode.UNAVAILABLE: ConnectionLostError,
    grpc.StatusCode.DEADLINE_EXCEEDED: ConnectionLostError,
}


def status_for_error(exc: BaseException) -> grpc.StatusCode:
    """The status a server reports for `exc`.

    A bare WorldError (an engine saying "I cannot") and any other exception are INTERNAL:
    the request was fine, the world was not.
    """
    for cls, code in _ERROR_TO_STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_for_status(code: grpc.StatusCode, details: str) -> WorldError:
    """The WorldError a client raises for a failed call, carrying the server's message."""
    cls = _STATUS_TO_ERROR.get(code, WorldError)
    return cls(f"{details} [{code.name}]" if details else code.name)


def error_for_rpc(error: grpc.RpcError, what: str) -> WorldError:
    """WorldError of a failed call, prefixed with what the client was doing."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return error_for_status(code, f"{what}: {details}")
