"""WorldClient: any World served over gRPC, used as if it were local.

The client hides transport trouble that can be hidden safely and reports the rest:
- UNAVAILABLE / DEADLINE_EXCEEDED → retried with exponential backoff; a Step retry
  reuses its step_id, so the server answers from its cache instead of stepping twice.
- NOT_FOUND (the server restarted or expired the session) → the client opens a new
  session at once. reset() then simply works; step() and set_pose() raise
  SessionLostError, because the world state they would continue from is gone.
- Everything else → the WorldError subclass of the status, with the server's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc
from numpy.typing import ArrayLike

from bridge import wire
from bridge.client_stream import StepStreamCall, StreamInterruptedError, Watchdog
from bridge.frame_meta import FlatFrameSet, read_frameset_layout
from bridge.grpc_status import (
    AUTH_METADATA_KEY,
    BEARER_PREFIX,
    SERVICE_NAME,
    SESSION_METADATA_KEY,
    error_for_rpc,
)
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.reassembly import AssembledFrameSet, read_frameset
from bridge.types import (
    CAPABILITY_DEPTH,
    CAPABILITY_RGB,
    CAPABILITY_STEP_STREAM,
    PROTOCOL_VERSION,
    Action,
    ConnectionLostError,
    FailedPreconditionError,
    InvalidArgumentError,
    Observation,
    SessionLostError,
    VersionMismatchError,
    WorldError,
    WorldInfo,
    validate_pose,
)
from bridge.wire_native import DecodedFrameSet, announce_codec, decode_single_frame

log = logging.getLogger(__name__)

MIB = 1 << 20
# Explicit message limits: requests are small (the server's default accepts 4 MiB);
# responses up to the server's default unary limit plus room for metadata.
MAX_SEND_BYTES = 4 * MIB
MAX_RECEIVE_BYTES = 64 * MIB + MIB
# A reassembled streamed frame may be larger than any single message.
MAX_STREAM_FRAME_BYTES = 1 << 30
MAX_BACKOFF_S = 5.0
CLOSE_TIMEOUT_S = 2.0
# gRPC's own reconnection backoff (defaults start at 1 s and grow to 120 s), shortened so
# that a restarted server is found within our retry budget.
RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 2000
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

T = TypeVar("T")


class WorldClient:
    """A remote World behind `genworld serve` (or any WorldService: Unreal, C++ core ...).

    Args:
        address: "host:port".
        timeout_s: deadline of every call (and of every streamed step).
        token: sent as `authorization: Bearer <token>` when the server requires one.
        root_certificates: PEM roots; when given the channel uses TLS.
        stream: step over one long-lived StepStream call instead of unary Step calls.
        max_retries: retries of a call that failed with UNAVAILABLE / DEADLINE_EXCEEDED.
        backoff_s: first retry delay; doubles per retry (capped at MAX_BACKOFF_S).
        client_name: how the server's logs name this client.
        max_chunk_bytes: StepStream chunk size to ask for (0 = the server's default).
        codec: frame codec to ask for (None = the server's default).

    Raises:
        VersionMismatchError: the server speaks another protocol major version.
        UnauthenticatedError: the token is missing or wrong.
        ConnectionLostError: the server could not be reached within the retries.
    """

    def __init__(
        self,
        address: str,
        timeout_s: float = 10.0,
        token: str | None = None,
        *,
        root_certificates: bytes | None = None,
        stream: bool = False,
        max_retries: int = 5,
        backoff_s: float = 0.1,
        client_name: str = "genworld-python",
        max_chunk_bytes: int = 0,
        codec: wire.Codec | None = None,
    ) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("timeout_s must be > 0, max_retries and backoff_s >= 0")
        self._address = address
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._client_name = client_name
        self._max_chunk_bytes = max_chunk_bytes
        self._codec = codec
        self._stream = stream
        self._auth = ((AUTH_METADATA_KEY, f"{BEARER_PREFIX}{token}"),) if token else ()
        announce_codec()
        options = [
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
            ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
            ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        # FrameSets and FrameChunks arrive as raw bytes and are read in place (bridge.reassembly).
        self._rpc_handshake = self._unary_rpc("Handshake", service_pb.HandshakeResponse.FromString)
        self._rpc_reset = self._unary_rpc("Reset", None)
        self._rpc_step = self._channel.unary_unary(f"/{SERVICE_NAME}/Step")  # bytes in, bytes out
        self._rpc_set_pose = self._unary_rpc("SetPose", None)
        self._rpc_close = self._unary_rpc("Close", service_pb.CloseResponse.FromString)
        self._rpc_stream = self._channel.stream_stream(f"/{SERVICE_NAME}/StepStream")  # bytes both ways
        self._lock = threading.RLock()
        self._watchdog = Watchdog() if stream else None
        self._stream_call: StepStreamCall | None = None
        self._session_id = ""
        self._info: WorldInfo | None = None
        self._next_step_id = 1
        self._needs_reset = False
        self._closed = False
        try:
            self._open_session()
        except BaseException:
            self._release()
            raise

    def _unary_rpc(
        self, name: str, deserializer: Callable[[bytes], Any] | None
    ) -> grpc.UnaryUnaryMultiCallable:
        return self._channel.unary_unary(
            f"/{SERVICE_NAME}/{name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=deserializer,
        )

    # ----------------------------------------------------------------------- World API
    @property
    def session_id(self) -> str:
        """The server's id of this client's session ('' while none is open)."""
        return self._session_id

    def handshake(self) -> WorldInfo:
        """The world's description from this client's current session."""
        with self._lock:
            self._check_not_closed()
            if self._info is None:
                self._open_session()
            assert self._info is not None
            return self._info

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> dict[str, Observation]:
        """Starts an episode; reopens the session first when the server lost it."""
        request = service_pb.ResetRequest(
            has_seed=seed is not None, seed=int(seed or 0), options_json=wire.options_to_json(options)
        )
        with self._lock:
            self._check_not_closed()
            if not self._session_id:
                self._open_session()
            try:
                frames = self._call(self._rpc_reset, request, "Reset")
            except SessionLostError:
                self._open_session()  # a restarted server: a reset needs no prior state
                frames = self._call(self._rpc_reset, request, "Reset")
            self._needs_reset = False
            return self._decode(frames, 0, "Reset")

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """Advances one step; agents missing from `actions` take the noop."""
        encoded_actions = wire.encode_step_actions(actions)  # refused before a step_id is used
        with self._lock:
            self._check_session("step")
            # Consumed even if the call fails: the server may have run it, and a later step
            # reusing the id would be answered with this step's cached frames.
            step_id, self._next_step_id = self._next_step_id, self._next_step_id + 1
            request = wire.step_request(step_id, encoded_actions)
            try:
                if self._stream:
                    return self._decode(self._stream_step(request), step_id, "StepStream")
                return self._decode(self._call(self._rpc_step, request, "Step"), step_id, "Step")
            except SessionLostError as exc:
                raise self._lose_session(exc) from None

    def set_pose(self, agent_id: str, pose: ArrayLike) -> Observation:
        """Teleports `agent_id` and renders it there."""
        T_pose = validate_pose(pose, "pose")
        request = service_pb.SetPoseRequest(agent_id=agent_id, pose=wire.pose_to_proto(T_pose))
        with self._lock:
            self._check_session("set_pose")
            try:
                frames = self._call(self._rpc_set_pose, request, "SetPose")
            except SessionLostError as exc:
                raise self._lose_session(exc) from None
            observations = self._decode(frames, 0, "SetPose")
        if agent_id not in observations:
            raise WorldError(f"SetPose: the server answered without a frame for {agent_id!r}")
        return observations[agent_id]

    def close(self) -> None:
        """Closes the server-side session and the channel; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop_stream()
            if self._session_id:
                try:
                    self._rpc_close(
                        service_pb.CloseRequest(), timeout=CLOSE_TIMEOUT_S, metadata=self._metadata(True)
                    )
                except grpc.RpcError as exc:  # the server may be gone already; nothing to undo
                    log.debug("Close of session %s… failed: %s", self._session_id[:8], exc)
            self._release()

    def __enter__(self) -> WorldClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------- sessions
    def _open_session(self) -> None:
        """Handshake: checks versions and opens a fresh session."""
        self._drop_stream()
        request = service_pb.HandshakeRequest(
            client_name=self._client_name,
            protocol_version=PROTOCOL_VERSION,
            capabilities=[CAPABILITY_RGB, CAPABILITY_DEPTH, CAPABILITY_STEP_STREAM],
            max_chunk_bytes=self._max_chunk_bytes,
            codec=int(self._codec) if self._codec is not None else 0,
        )
        try:
            response = self._call(self._rpc_handshake, request, "Handshake", with_session=False)
        except FailedPreconditionError as exc:  # the server refuses our protocol version
            raise VersionMismatchError(str(exc)) from None
        server_major = wire.parse_semver(response.protocol_version, "HandshakeResponse.protocol_version")[0]
        if server_major != wire.parse_semver(PROTOCOL_VERSION)[0]:
            raise VersionMismatchError(
                f"server {self._address} speaks protocol {response.protocol_version}, this client "
                f"{PROTOCOL_VERSION}; upgrade the older side"
            )
        if response.message:
            log.warning("server %s: %s", self._address, response.message)
        self._session_id = response.session_id
        self._info = WorldInfo(
            name=response.world_name,
            protocol_version=response.protocol_version,
            capabilities=tuple(response.capabilities),
            agent_ids=tuple(response.agent_ids),
            height=response.height,
            width=response.width,
            extra={
                "server_name": response.server_name,
                "session_id": response.session_id,
                "max_chunk_bytes": response.max_chunk_bytes,
                "max_request_bytes": response.max_request_bytes,
                "max_response_bytes": response.max_response_bytes,
                "codec": wire.Codec(response.codec).name if response.codec else "",
                "message": response.message,
            },
        )
        log.debug("session %s… opened on %s", self._session_id[:8], self._address)

    def _lose_session(self, cause: SessionLostError) -> SessionLostError:
        """Forgets the lost session, opens a new one if possible, and says what happened."""
        lost = self._session_id
        self._session_id, self._needs_reset = "", True
        try:
            self._open_session()
        except WorldError as exc:  # the server may still be coming up: reset() will retry
            log.info("could not reopen a session on %s yet: %s", self._address, exc)
        return SessionLostError(
            f"the server lost session {lost[:8]}… (restarted or expired), and the world state with it; "
            f"call reset() to continue. Server said: {cause}"
        )

    def _check_session(self, what: str) -> None:
        self._check_not_closed()
        if self._needs_reset:
            raise SessionLostError(f"{what}: the previous session was lost; call reset() first")

    def _check_not_closed(self) -> None:
        if self._closed:
            raise FailedPreconditionError("this WorldClient is closed")

    def _metadata(self, with_session: bool) -> tuple[tuple[str, str], ...]:
        if with_session:
            return ((SESSION_METADATA_KEY, self._session_id), *self._auth)
        return self._auth

    # ----------------------------------------------------------------------- calls
    # Attempts and retry tests are bound methods and module functions taking their inputs as
    # arguments, rather than closures made afresh on every call: a step builds no functions.
    def _retrying(
        self,
        what: str,
        attempt: Callable[..., T],
        retryable: Callable[[Exception], bool],
        *args: Any,
    ) -> T:
        """Runs `attempt(*args)`, retrying with exponential backoff while `retryable(error)`."""
        try:  # the first attempt outside the loop: the common, successful case stays short
            return attempt(*args)
        except Exception as exc:
            if not retryable(exc):
                raise
            last = exc
        delay = self._backoff_s
        for retry in range(1, self._max_retries + 1):
            log.info("%s: %s unreachable (%s); retry %d in %.2f s", what, self._address, last, retry, delay)
            time.sleep(delay)
            delay = min(2 * delay, MAX_BACKOFF_S)
            try:
                return attempt(*args)
            except Exception as exc:
                if not retryable(exc):
                    raise
                last = exc
        raise ConnectionLostError(
            f"{what}: no answer from {self._address} after {self._max_retries + 1} attempts: {last}"
        )

    def _call(
        self, rpc: grpc.UnaryUnaryMultiCallable, request: Any, what: str, with_session: bool = True
    ) -> Any:
        """One unary call with deadline and retries; failures become WorldErrors."""
        attempt, retryable = self._unary_attempt, _retryable_rpc_error
        return self._retrying(what, attempt, retryable, rpc, request, what, with_session)

    def _unary_attempt(
        self, rpc: grpc.UnaryUnaryMultiCallable, request: Any, what: str, with_session: bool
    ) -> Any:
        try:
            return rpc(request, timeout=self._timeout_s, metadata=self._metadata(with_session))
        except grpc.RpcError as exc:
            if exc.code() in RETRYABLE:
                raise
            raise error_for_rpc(exc, what) from None

    def _stream_step(self, request: bytes) -> AssembledFrameSet | FlatFrameSet | DecodedFrameSet:
        """One step over the long-lived StepStream, reopening it after transient failures."""
        return self._retrying("StepStream", self._stream_attempt, _retryable_stream_error, request)

    def _stream_attempt(self, request: bytes) -> AssembledFrameSet | FlatFrameSet | DecodedFrameSet:
        assert self._watchdog is not None
        if self._stream_call is None:
            self._stream_call = StepStreamCall(
                self._rpc_stream, self._metadata(True), self._watchdog, MAX_STREAM_FRAME_BYTES
            )
        try:
            return self._stream_call.step(request, self._timeout_s)
        except grpc.RpcError as exc:
            self._drop_stream()
            if exc.code() in RETRYABLE:
                raise
            raise error_for_rpc(exc, "StepStream") from None
        except InvalidArgumentError as exc:  # chunks out of order or sizes wrong: the server's fault
            self._drop_stream()
            raise WorldError(f"StepStream: the server sent an invalid chunk sequence: {exc}") from None
        except BaseException:
            self._drop_stream()
            raise

    def _drop_stream(self) -> None:
        if self._stream_call is not None:
            self._stream_call.close()
            self._stream_call = None

    def _decode(
        self, frames: bytes | AssembledFrameSet | FlatFrameSet | DecodedFrameSet, step_id: int, what: str
    ) -> dict[str, Observation]:
        try:
            if isinstance(frames, bytes):
                # Our servers' layout is read in one pass (in C where built); any other
                # goes through protobuf.
                frames = (
                    decode_single_frame(frames, False)
                    or read_frameset_layout(frames)
                    or read_frameset(frames)
                )
            if frames.step_id != step_id:
                raise WorldError(f"{what}: the server answered step {frames.step_id}, expected {step_id}")
            if isinstance(frames, DecodedFrameSet):
                return frames.observations
            return wire.frameset_from_proto(frames)
        except InvalidArgumentError as exc:  # the server's fault, not the caller's input
            raise WorldError(f"{what}: the server sent an invalid FrameSet: {exc}") from None

    def _release(self) -> None:
        self._drop_stream()
        if self._watchdog is not None:
            self._watchdog.close()
        self._channel.close()


def _retryable_rpc_error(exc: Exception) -> bool:
    """A transient gRPC failure (the call may be repeated: steps reuse their step_id)."""
    return isinstance(exc, grpc.RpcError) and exc.code() in RETRYABLE


def _retryable_stream_error(exc: Exception) -> bool:
    """A transient StepStream failure, including a step the watchdog cut short."""
    return isinstance(exc, StreamInterruptedError) or _retryable_rpc_error(exc)
