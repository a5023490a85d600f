"""The WorldService handlers: parse, validate, call the World, frame the answer.

Handlers receive raw request bytes and return serialised responses (identity
(de)serialisers), for two reasons: undecodable bytes become INVALID_ARGUMENT with a clear
message instead of gRPC's generic deserialisation failure, and frames are framed once by
`bridge.framing` rather than re-serialised by protobuf.

Every input is validated before the engine sees it; every failure becomes a gRPC status
through `bridge.grpc_status`, so one client's bad request never disturbs the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from bridge import wire, wire_native
from bridge.framing import MIN_CHUNK_BYTES, EncodedFrameSet
from bridge.grpc_status import SESSION_METADATA_KEY, status_for_error
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.server_sessions import SentStep, Session, SessionRegistry
from bridge.types import (
    CAPABILITY_STEP_STREAM,
    PROTOCOL_VERSION,
    Action,
    FailedPreconditionError,
    InvalidArgumentError,
    Observation,
    ResourceExhaustedError,
    SessionLostError,
    VersionMismatchError,
    WorldError,
)

log = logging.getLogger(__name__)

SERVER_NAME = "genworld-python"
M = TypeVar("M", bound=Message)
Handler = Callable[[bytes, grpc.ServicerContext], bytes]


@dataclass(frozen=True)
class ServiceLimits:
    """Sizes and codecs a server enforces and advertises in the handshake."""

    max_request_bytes: int
    max_response_bytes: int
    max_chunk_bytes: int
    codec: wire.Codec


def _parse(cls: type[M], raw: bytes) -> M:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        raise InvalidArgumentError(f"request is not a valid {cls.DESCRIPTOR.full_name}: {exc}") from exc


def _abort(context: grpc.ServicerContext, exc: BaseException, method: str) -> None:
    """Ends the call with the status of `exc`; unexpected errors are logged with traceback."""
    code = status_for_error(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("%s failed inside the world: %s", method, exc, exc_info=exc)
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, WorldError) else str(exc)
    else:
        log.info("%s refused (%s): %s", method, code.name, exc)
        message = str(exc)
    context.abort(code, message)


def _guarded(method: str, handler: Handler) -> Handler:
    """Turns exceptions of a unary handler into gRPC statuses."""

    def run(raw: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return handler(raw, context)
        except Exception as exc:
            _abort(context, exc, method)
            raise  # unreachable: abort raises

    return run


class WorldService:
    """Implements genworld.v1.WorldService over a SessionRegistry.

    Args:
        registry: the sessions (and through them, the worlds).
        limits: sizes and codec advertised in the handshake and enforced per call.
    """

    def __init__(self, registry: SessionRegistry, limits: ServiceLimits) -> None:
        self._registry = registry
        self._limits = limits
        wire_native.announce_codec()

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, all with identity (de)serialisers."""
        unary = {
            "Handshake": self.handshake,
            "Reset": self.reset,
            "Step": self.step,
            "SetPose": self.set_pose,
            "Close": self.close,
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(_guarded(name, fn)) for name, fn in unary.items()
        }
        handlers["StepStream"] = grpc.stream_stream_rpc_method_handler(self.step_stream)
        return handlers

    # ----------------------------------------------------------------------- sessions
    def _session(self, context: grpc.ServicerContext) -> Session:
        session_id = ""
        for key, value in context.invocation_metadata():
            if key == SESSION_METADATA_KEY:
                session_id = value if isinstance(value, str) else value.decode()
        return self._registry.get(session_id)

    @staticmethod
    def _check_open(session: Session) -> None:
        if session.closed:
            raise SessionLostError(f"session {session.session_id[:8]}… was closed; call Handshake again")

    # ----------------------------------------------------------------------- handlers
    def handshake(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Checks the protocol version and opens a session."""
        request = _parse(service_pb.HandshakeRequest, raw)
        client = wire.parse_semver(request.protocol_version, "HandshakeRequest.protocol_version")
        server = wire.parse_semver(PROTOCOL_VERSION)
        if client[0] != server[0]:
            raise VersionMismatchError(
                f"protocol major version mismatch: client {request.protocol_version}, server "
                f"{PROTOCOL_VERSION}; upgrade the older side"
            )
        message = ""
        if client[1] != server[1]:
            message = (
                f"protocol minor version differs: client {request.protocol_version}, server "
                f"{PROTOCOL_VERSION}; features the older side lacks are unavailable"
            )
        codec = self._negotiate_codec(request.codec)
        chunk = self._negotiate_chunk(request.max_chunk_bytes)
        session = self._registry.open(request.client_name or "unnamed client", chunk, codec)
        info = session.info
        capabilities = list(dict.fromkeys([*info.capabilities, CAPABILITY_STEP_STREAM]))
        return service_pb.HandshakeResponse(
            server_name=SERVER_NAME,
            world_name=info.name,
            protocol_version=PROTOCOL_VERSION,
            capabilities=capabilities,
            agent_ids=list(info.agent_ids),
            height=info.height,
            width=info.width,
            session_id=session.session_id,
            max_chunk_bytes=chunk,
            max_request_bytes=self._limits.max_request_bytes,
            max_response_bytes=self._limits.max_response_bytes,
            message=message,
            codec=codec,
        ).SerializeToString()

    def _negotiate_codec(self, requested: int) -> wire.Codec:
        if requested == 0:
            return self._limits.codec
        try:
            return wire.Codec(requested)
        except ValueError:
            raise InvalidArgumentError(f"HandshakeRequest.codec: unknown codec {requested}") from None

    def _negotiate_chunk(self, requested: int) -> int:
        if requested == 0:
            return self._limits.max_chunk_bytes
        return max(MIN_CHUNK_BYTES, min(requested, self._limits.max_chunk_bytes))

    def reset(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Starts an episode in the session's world."""
        session = self._session(context)
        request = _parse(service_pb.ResetRequest, raw)
        options = wire.options_from_json(request.options_json)
        seed = request.seed if request.has_seed else None
        with session.lock:
            self._check_open(session)
            with session.world_lock:
                observations = session.world.reset(seed=seed, options=options)
            payload = self._unary_payload(session, 0, observations)
            session.has_reset = True
            session.last_result = None  # a stale step must not be replayed into the new episode
        return self._checked_size(payload)

    def step(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """One lockstep step, idempotent per step_id."""
        session = self._session(context)
        step_id, actions = self._step_request(session, raw)
        with session.lock:
            cached = self._replay_or_advance(session, step_id)
            if cached is not None:
                return self._checked_size(cached.as_unary())
            blob = self._unary_payload(session, step_id, self._step_world(session, step_id, actions))
            session.last_result = SentStep(step_id, unary=blob)
        return self._checked_size(blob)

    def set_pose(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Teleports one agent and renders it there."""
        session = self._session(context)
        request = _parse(service_pb.SetPoseRequest, raw)
        if request.agent_id not in session.info.agent_ids:
            raise InvalidArgumentError(
                f"SetPoseRequest.agent_id: unknown agent {request.agent_id!r}; "
                f"this world has {list(session.info.agent_ids)}"
            )
        if not request.HasField("pose"):
            raise InvalidArgumentError("SetPoseRequest.pose is missing")
        pose = wire.pose_from_proto(request.pose, "SetPoseRequest.pose")
        with session.lock:
            self._check_open(session)
            if not session.has_reset:
                raise FailedPreconditionError("SetPose before Reset: call Reset first")
            with session.world_lock:
                observation = session.world.set_pose(request.agent_id, pose)
            payload = self._unary_payload(session, 0, {request.agent_id: observation})
            session.last_result = None
        return self._checked_size(payload)

    def close(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Closes the caller's session (and its world when the session owns it)."""
        _parse(service_pb.CloseRequest, raw)
        session = self._session(context)
        self._registry.close(session.session_id)
        return service_pb.CloseResponse().SerializeToString()

    def step_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """Bidirectional lockstep: each StepRequest answered by its FrameChunks."""
        try:
            session = self._session(context)
            for raw in requests:
                yield from self._stream_step(session, raw)
        except grpc.RpcError:  # raised by `requests` when the client cancels or disconnects
            log.debug("StepStream ended by the client")
        except Exception as exc:
            _abort(context, exc, "StepStream")

    def _stream_step(self, session: Session, raw: bytes) -> list[bytes]:
        """The FrameChunks answering one streamed StepRequest.

        All chunks are cut before the first is sent (cutting them lazily, overlapped with the
        transfer, measured no faster): the engine may reuse its buffers once its lock is free.
        """
        step_id, actions = self._step_request(session, raw)
        with session.lock:
            cached = self._replay_or_advance(session, step_id)
            if cached is not None:
                return cached.as_chunks(session.max_chunk_bytes)
            chunks = self._chunk_payloads(session, step_id, self._step_world(session, step_id, actions))
            session.last_result = SentStep(step_id, chunks=tuple(chunks))
        return chunks

    # ----------------------------------------------------------------------- helpers
    # Stepping is spelled out in plain calls under `with session.lock` rather than as one
    # context manager: a generator-based @contextmanager cost ~5 us per step.
    @staticmethod
    def _step_request(session: Session, raw: bytes) -> tuple[int, dict[str, Action]]:
        """The step_id and validated actions of a StepRequest (before the engine or any lock).

        A one-agent key press, the common step, is read straight from its bytes; anything
        else (or anything invalid) goes through protobuf and `wire.actions_from_proto`,
        which name the offending field.
        """
        key_step = wire.read_key_step_request(raw)
        if key_step is not None:
            step_id, agent_id, key = key_step
            action = wire.KEY_ACTIONS.get(key)
            if step_id >= 1 and action is not None and agent_id in session.info.agent_ids:
                return step_id, {agent_id: action}
        request = _parse(service_pb.StepRequest, raw)
        if request.step_id == 0:
            raise InvalidArgumentError("StepRequest.step_id must be >= 1")
        return request.step_id, wire.actions_from_proto(request.actions, session.info.agent_ids)

    def _replay_or_advance(self, session: Session, step_id: int) -> SentStep | None:
        """The cached answer when `step_id` retries the last step, else None (step the world).

        Must be called holding `session.lock`, which the caller keeps until it has serialised
        and cached the new frames.

        Raises:
            SessionLostError: the session was closed meanwhile.
            FailedPreconditionError: no Reset yet, or a step_id older than the last one.
        """
        self._check_open(session)
        session.touch()  # a long StepStream looks the session up once: keep it from expiring
        if not session.has_reset:
            raise FailedPreconditionError("Step before Reset: call Reset first")
        cached = session.last_result
        if cached is not None and step_id == cached.step_id:
            return cached  # a retry: the same frames again; the engine is not stepped twice
        if step_id <= session.last_step_id:
            raise FailedPreconditionError(
                f"StepRequest.step_id {step_id} is not newer than the last step "
                f"{session.last_step_id}; step ids must increase (a retry must reuse the last one)"
            )
        # A newer step_id means the client has the previous answer: drop it before
        # building the next one, so its memory is reused instead of a fresh allocation.
        session.last_result = None
        return None

    @staticmethod
    def _step_world(session: Session, step_id: int, actions: dict[str, Action]) -> dict[str, Observation]:
        """Steps the world (under `session.lock`); its output must be framed before the lock is freed."""
        with session.world_lock:
            observations = session.world.step(actions)
        session.last_step_id = step_id
        return observations

    @classmethod
    def _unary_payload(cls, session: Session, step_id: int, observations: dict[str, Observation]) -> bytes:
        """The serialised FrameSet: the C codec's common case, else the Python framing (same bytes)."""
        payload = wire_native.encode_single_frame(step_id, observations, session.codec, 0)
        if payload is not None:
            return payload
        return cls._encode(session, step_id, observations).to_bytes()

    @classmethod
    def _chunk_payloads(
        cls, session: Session, step_id: int, observations: dict[str, Observation]
    ) -> list[bytes]:
        """The serialised FrameChunks: the C codec's one-chunk case, else the Python framing."""
        chunk = wire_native.encode_single_frame(step_id, observations, session.codec, session.max_chunk_bytes)
        if chunk is not None:
            return [chunk]
        return cls._encode(session, step_id, observations).chunks(session.max_chunk_bytes)

    @staticmethod
    def _encode(session: Session, step_id: int, observations: dict) -> EncodedFrameSet:
        """Frames the world's output; a malformed observation is the world's fault (INTERNAL)."""
        try:
            return wire.encode_frameset(step_id, observations, session.codec)
        except InvalidArgumentError as exc:
            raise WorldError(f"world {session.info.name!r} returned an invalid observation: {exc}") from exc

    def _checked_size(self, payload: bytes) -> bytes:
        if len(payload) > self._limits.max_response_bytes:
            raise ResourceExhaustedError(
                f"FrameSet of {len(payload)} bytes exceeds max_response_bytes "
                f"{self._limits.max_response_bytes}; use StepStream, which chunks frames"
            )
        return payload
