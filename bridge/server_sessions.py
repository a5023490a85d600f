"""Server-side sessions: one per Handshake, each with its World and its step cache.

A session is what makes Step idempotent (it remembers the last step_id and its frames)
and what lets several clients share one server without seeing each other's worlds.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.framing import EncodedFrameSet
from bridge.reassembly import FrameSetAssembler, read_frameset
from bridge.types import ResourceExhaustedError, SessionLostError, World, WorldInfo
from bridge.wire import Codec

log = logging.getLogger(__name__)

SESSION_ID_BYTES = 16
# The reaper looks for idle sessions this often (at most), so expiry is timely but cheap.
MAX_REAPER_PERIOD_S = 30.0
REAPER_PERIODS_PER_TIMEOUT = 4
# How long closing a session waits for its in-flight call (shutdown must not hang forever).
SESSION_CLOSE_WAIT_S = 10.0


@dataclass(frozen=True)
class SentStep:
    """A step's answer as it was serialised, kept for an idempotent retry of its step_id.

    Serialised bytes are immutable, so a retry resends exactly what was computed even if
    the engine reuses its render buffers. A retry over the other transport (unary after
    streamed, or back) is converted, which costs a copy but never a step.
    """

    step_id: int
    unary: bytes | None = None
    chunks: tuple[bytes, ...] | None = None

    def as_unary(self) -> bytes:
        """The serialised FrameSet."""
        if self.unary is not None:
            return self.unary
        assert self.chunks is not None
        assembler = FrameSetAssembler()
        assembled = [assembler.add(c) for c in self.chunks][-1]
        assert assembled is not None
        return EncodedFrameSet.from_assembled(assembled).to_bytes()

    def as_chunks(self, max_chunk_bytes: int) -> list[bytes]:
        """The serialised FrameChunks."""
        if self.chunks is not None:
            return list(self.chunks)
        assert self.unary is not None
        return EncodedFrameSet.from_assembled(read_frameset(self.unary)).chunks(max_chunk_bytes)


@dataclass
class Session:
    """One client's view of a World.

    Attributes:
        session_id: opaque id the client sends in the `genworld-session` metadata.
        world: the World this session drives.
        owns_world: whether closing the session closes the world (factory-made worlds).
        world_lock: serialises calls into `world`; shared by all sessions of a shared world.
        info: the world's handshake, cached (agent ids are validated against it).
        client_name: who opened the session, for logs.
        max_chunk_bytes: StepStream chunk size negotiated in the handshake.
        codec: frame codec negotiated in the handshake.
        lock: serialises this session's calls, so a retried step waits for the original.
        has_reset: Step and SetPose need a Reset first.
        last_step_id: the highest step_id served; older ones are refused.
        last_result: frames of `last_step_id`, resent when the same step_id is retried.
        last_used: monotonic time of the last call, for idle expiry.
    """

    session_id: str
    world: World
    owns_world: bool
    world_lock: threading.Lock
    info: WorldInfo
    client_name: str
    max_chunk_bytes: int
    codec: Codec
    lock: threading.Lock = field(default_factory=threading.Lock)
    has_reset: bool = False
    last_step_id: int = 0
    last_result: SentStep | None = None
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False

    def touch(self) -> None:
        """Marks the session as in use now."""
        self.last_used = time.monotonic()


@dataclass(frozen=True)
class WorldSource:
    """Where sessions get their World: one shared instance or a factory per session."""

    factory: Callable[[], World] | None = None
    shared: World | None = None
    shared_lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> tuple[World, bool, threading.Lock]:
        """(world, owned by the session, lock serialising its calls)."""
        if self.shared is not None:
            return self.shared, False, self.shared_lock
        assert self.factory is not None
        return self.factory(), True, threading.Lock()


class SessionRegistry:
    """Opens, finds, expires and closes sessions; thread-safe.

    Args:
        source: where each session's World comes from.
        max_sessions: sessions alive at once; Handshake beyond it is RESOURCE_EXHAUSTED.
        idle_timeout_s: sessions unused this long are closed (their worlds too).
    """

    def __init__(self, source: WorldSource, max_sessions: int, idle_timeout_s: float) -> None:
        self._source = source
        self._max_sessions = max_sessions
        self._idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, Session] = {}
        self._opening = 0  # slots reserved by handshakes still building their world
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._reaper = threading.Thread(
            target=self._reap_forever, name="genworld-session-reaper", daemon=True
        )
        self._reaper.start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def open(self, client_name: str, max_chunk_bytes: int, codec: Codec) -> Session:
        """Creates a session (and, with a factory, its World).

        Raises:
            ResourceExhaustedError: `max_sessions` sessions are alive.
        """
        self.expire_idle()
        with self._lock:
            if len(self._sessions) + self._opening >= self._max_sessions:
                raise ResourceExhaustedError(
                    f"server is at its limit of {self._max_sessions} sessions; close one or retry later"
                )
            self._opening += 1
        try:
            world, owned, world_lock = self._source.open()  # may be slow: outside the registry lock
            try:
                with world_lock:
                    info = world.handshake()
            except BaseException:
                if owned:
                    world.close()
                raise
        finally:
            with self._lock:
                self._opening -= 1
        session = Session(
            session_id=secrets.token_hex(SESSION_ID_BYTES),
            world=world,
            owns_world=owned,
            world_lock=world_lock,
            info=info,
            client_name=client_name,
            max_chunk_bytes=max_chunk_bytes,
            codec=codec,
        )
        with self._lock:
            self._sessions[session.session_id] = session
            count = len(self._sessions)
        log.info(
            "session %s… opened for %r on world %r (%d/%d sessions)",
            session.session_id[:8],
            client_name,
            info.name,
            count,
            self._max_sessions,
        )
        return session

    def get(self, session_id: str) -> Session:
        """The live session `session_id`.

        Raises:
            SessionLostError: unknown, closed or expired (NOT_FOUND on the wire).
        """
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            shown = f"{session_id[:8]}…" if session_id else "(none)"
            raise SessionLostError(
                f"unknown or expired session {shown}; the server may have restarted — call Handshake again"
            )
        session.touch()
        return session

    def close(self, session_id: str, reason: str = "closed by client") -> None:
        """Closes one session and its owned world; unknown ids are ignored."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            self._close_session(session, reason)

    def close_all(self) -> None:
        """Closes every session (server shutdown) and stops the reaper."""
        self._stopped.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            self._close_session(session, "server shutting down")

    def expire_idle(self) -> None:
        """Closes the sessions idle for longer than the timeout."""
        cutoff = time.monotonic() - self._idle_timeout_s
        with self._lock:
            stale = [s for s in self._sessions.values() if s.last_used < cutoff]
            for session in stale:
                del self._sessions[session.session_id]
        for session in stale:
            self._close_session(session, f"idle for more than {self._idle_timeout_s:g} s")

    def _close_session(self, session: Session, reason: str) -> None:
        session.closed = True  # calls still queued on the lock will see it and stop
        # Wait for an in-flight call of this session; a world stuck in a call is left open
        # rather than closed under its own feet (which may crash a native engine).
        if not session.lock.acquire(timeout=SESSION_CLOSE_WAIT_S):
            log.warning(
                "session %s… is stuck in a world call; not closing its world (%s)",
                session.session_id[:8],
                reason,
            )
            return
        try:
            session.last_result = None
            if session.owns_world:
                with session.world_lock:
                    session.world.close()
        except Exception:
            log.exception("closing the world of session %s… failed", session.session_id[:8])
        finally:
            session.lock.release()
        log.info("session %s… of %r closed: %s", session.session_id[:8], session.client_name, reason)

    def _reap_forever(self) -> None:
        period = min(MAX_REAPER_PERIOD_S, self._idle_timeout_s / REAPER_PERIODS_PER_TIMEOUT)
        while not self._stopped.wait(period):
            self.expire_idle()
