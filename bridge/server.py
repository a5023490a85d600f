"""Serving a World over gRPC: `serve()` for code, `run_server()` for `genworld serve`.

The server binds 127.0.0.1 unless told otherwise (ARCHITECTURE.md §5); remote serving
takes an explicit host and should add a token and TLS. Message sizes are capped on the
gRPC layer itself, so an oversize request is refused before it is even parsed.
"""

from __future__ import annotations

import hmac
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from functools import partial
from pathlib import Path
from types import FrameType, TracebackType

import grpc

from bridge.grpc_status import AUTH_METADATA_KEY, BEARER_PREFIX, SERVICE_NAME
from bridge.server_service import ServiceLimits, WorldService
from bridge.server_sessions import SessionRegistry, WorldSource
from bridge.types import World
from bridge.wire import Codec

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_MAX_REQUEST_BYTES = 4 * MIB
DEFAULT_MAX_RESPONSE_BYTES = 64 * MIB
# gRPC's default receive limit, which clients we do not control (C++, Unreal) keep.
GRPC_DEFAULT_MAX_MESSAGE_BYTES = 4 * MIB
# Room above max_chunk_bytes for a chunk's metadata (pose, K, headers) on the wire.
CHUNK_METADATA_ALLOWANCE = 64 * 1024
# The largest chunk whose message still fits gRPC's default limit. A 640x480 RGB-D frame
# (0.9 + 1.2 MB) then travels as one chunk that the client reads in place, like a unary
# FrameSet; with 1 MiB chunks its depth plane was split, and joined again (a second copy,
# ~55 us per step, and one more message hand-off through gRPC's threads).
DEFAULT_MAX_CHUNK_BYTES = GRPC_DEFAULT_MAX_MESSAGE_BYTES - CHUNK_METADATA_ALLOWANCE
DEFAULT_SESSION_IDLE_TIMEOUT_S = 600.0
DEFAULT_MAX_SESSIONS = 16
# Each StepStream holds a worker thread for its lifetime; leave room for unary calls.
WORKERS_PER_SESSION = 2
SPARE_WORKERS = 4
SHUTDOWN_GRACE_S = 5.0
# The main thread wakes this often while waiting for a signal.
SIGNAL_POLL_S = 1.0


class _TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls whose `authorization` metadata is not `Bearer <token>`.

    The comparison is constant-time (hmac.compare_digest) so response timing does not leak
    how much of a guessed token was right.
    """

    def __init__(self, token: str) -> None:
        self._expected = f"{BEARER_PREFIX}{token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        presented = b""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == AUTH_METADATA_KEY:
                presented = value.encode() if isinstance(value, str) else value
        handler = continuation(handler_call_details)
        if handler is None or hmac.compare_digest(presented, self._expected):
            return handler
        reason = "missing" if not presented else "wrong"
        detail = f"{reason} token: send metadata '{AUTH_METADATA_KEY}: {BEARER_PREFIX}<token>'"

        def deny(request: object, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, detail)

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


class WorldServer:
    """A running WorldService; stop it with `stop()` or by leaving the `with` block.

    Attributes:
        port: the bound port (useful with port=0).
        address: "host:port" to give to WorldClient.
    """

    def __init__(self, server: grpc.Server, registry: SessionRegistry, host: str, port: int) -> None:
        self._server = server
        self._registry = registry
        self.port = port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._stopped = threading.Event()

    @property
    def session_count(self) -> int:
        """Sessions alive now."""
        return len(self._registry)

    def stop(self, grace: float | None = SHUTDOWN_GRACE_S) -> None:
        """Stops accepting calls, lets in-flight ones finish for `grace` s, closes every session.

        Idempotent.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.stop(grace).wait()
        self._registry.close_all()
        log.info("server on %s stopped", self.address)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or `timeout`); True when it stopped."""
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> WorldServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _world_source(world: World | Callable[[], World]) -> WorldSource:
    # A class is callable *and* has the World methods as attributes: treat it as a factory.
    if isinstance(world, World) and not isinstance(world, type):
        return WorldSource(shared=world)
    if callable(world):
        return WorldSource(factory=world)
    raise TypeError(f"serve() needs a World or a zero-argument factory of Worlds, got {type(world).__name__}")


def serve(
    world: World | Callable[[], World],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    tls: tuple[bytes, bytes] | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    session_idle_timeout_s: float = DEFAULT_SESSION_IDLE_TIMEOUT_S,
    codec: Codec = Codec.RAW,
    max_workers: int | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> WorldServer:
    """Starts serving `world` and returns at once.

    Args:
        world: a World shared by every session (calls serialised by a lock), or a
            zero-argument factory called once per session, so each client gets its own.
        host: bind address; the default keeps the server on this machine.
        port: 0 picks a free port (see `WorldServer.port`).
        token: when set, every call must carry `authorization: Bearer <token>`.
        tls: (certificate chain PEM, private key PEM) to serve TLS instead of plaintext.
        max_sessions: sessions alive at once; more handshakes get RESOURCE_EXHAUSTED.
        max_request_bytes: largest request accepted (gRPC receive limit).
        max_response_bytes: largest unary response (gRPC send limit); StepStream chunks.
        max_chunk_bytes: largest StepStream chunk; clients may ask for smaller ones.
        session_idle_timeout_s: sessions unused this long are closed.
        codec: default frame codec; clients may ask for another in the handshake.
        max_workers: gRPC worker threads; defaults to enough for one stream per session.
        interceptors: extra server interceptors (logging, metrics, fault injection in
            tests); they run after the token check.

    Returns:
        The running server.
    """
    source = _world_source(world)
    registry = SessionRegistry(source, max_sessions, session_idle_timeout_s)
    limits = ServiceLimits(max_request_bytes, max_response_bytes, max_chunk_bytes, Codec(codec))
    service = WorldService(registry, limits)
    options = [
        ("grpc.max_receive_message_length", max_request_bytes),
        ("grpc.max_send_message_length", max(max_response_bytes, max_chunk_bytes + CHUNK_METADATA_ALLOWANCE)),
        ("grpc.so_reuseport", 0),  # a second server must not silently share our port
    ]
    workers = max_workers or WORKERS_PER_SESSION * max_sessions + SPARE_WORKERS
    chain = [*([_TokenAuthInterceptor(token)] if token else []), *interceptors]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genworld-grpc"),
        interceptors=chain,
        options=options,
    )
    handlers = service.handlers()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is not None:
            cert_pem, key_pem = tls
            bound = server.add_secure_port(target, grpc.ssl_server_credentials([(key_pem, cert_pem)]))
        else:
            bound = server.add_insecure_port(target)
    except RuntimeError as exc:
        registry.close_all()
        raise OSError(f"cannot bind {target}: {exc}") from exc
    if bound == 0:
        registry.close_all()
        raise OSError(f"cannot bind {target} (port in use?)")
    server.start()
    return WorldServer(server, registry, host, bound)


def run_server(
    world: str,
    scene: str,
    resolution: tuple[int, int],
    num_agents: int,
    host: str,
    port: int,
    token: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_sessions: int,
) -> int:
    """`genworld serve`: one world per client session until SIGTERM/SIGINT.

    Returns:
        The process exit code.
    """
    from bridge.worlds import make_world

    if (tls_cert is None) != (tls_key is None):
        log.error("TLS needs both --tls-cert and --tls-key")
        return 2
    tls = (Path(tls_cert).read_bytes(), Path(tls_key).read_bytes()) if tls_cert and tls_key else None
    height, width = resolution
    factory = partial(make_world, world, scene=scene, height=height, width=width, num_agents=num_agents)
    try:  # fail now, with a readable error, rather than at the first client's handshake
        factory().close()
    except Exception as exc:
        log.error("cannot create world %r: %s", world, exc)
        return 1
    try:
        server = serve(factory, host, port, token=token, tls=tls, max_sessions=max_sessions)
    except OSError as exc:
        log.error("%s", exc)
        return 1
    log.info(
        "serving %s (scene %s, %dx%d, %d agent(s)) on %s://%s — TLS %s, token %s, up to %d sessions",
        world,
        scene,
        height,
        width,
        num_agents,
        "grpcs" if tls else "grpc",
        server.address,
        "on" if tls else "off",
        "required" if token else "not required",
        max_sessions,
    )
    return serve_until_signal(server)


def serve_until_signal(server: WorldServer, grace: float = SHUTDOWN_GRACE_S) -> int:
    """Blocks until SIGTERM or SIGINT, then stops `server` gracefully.

    Returns:
        0, the exit code of a clean shutdown.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(timeout=SIGNAL_POLL_S):  # a timed wait keeps signal handling prompt
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    server.stop(grace)
    return 0
