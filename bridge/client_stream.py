"""The client side of StepStream: one long-lived bidi call, one step at a time.

gRPC Python has no per-message deadline on a stream, so a single watchdog thread cancels
the call when a step overruns; the client then treats it like DEADLINE_EXCEEDED (reopen,
resend the same step_id, which the server answers from its cache).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import grpc

from bridge.frame_meta import FlatFrameSet, read_chunk_layout
from bridge.reassembly import AssembledFrameSet, FrameSetAssembler
from bridge.wire_native import DecodedFrameSet, decode_single_frame


class StreamInterruptedError(Exception):
    """A streamed step got no complete answer; retrying on a new stream is safe.

    Either it overran its deadline (the watchdog then cancelled the call) or the server
    ended the stream early.
    """


class Watchdog:
    """Runs a callback when an armed deadline passes; one thread for the client's lifetime.

    Arming is cheap (no thread per step, and no lock on the common path): the armed
    (deadline, callback) pair is one attribute, swapped atomically; the thread sleeps
    until the earliest deadline it knows and re-reads the pair when it wakes, so it only
    needs waking when a deadline is earlier than the one it sleeps towards.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: tuple[float, Callable[[], None]] | None = None
        self._sleeping_until: float | None = None  # None: waiting with no deadline
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="genworld-stream-watchdog", daemon=True)
        self._thread.start()

    def arm(self, timeout_s: float, callback: Callable[[], None]) -> None:
        """Calls `callback` in `timeout_s` seconds unless disarmed first."""
        deadline = time.monotonic() + timeout_s
        self._armed = (deadline, callback)
        sleeping_until = self._sleeping_until
        if sleeping_until is None or sleeping_until > deadline:
            with self._cond:
                self._cond.notify()

    def disarm(self) -> None:
        """Cancels the pending callback."""
        self._armed = None

    def close(self) -> None:
        """Stops the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                armed = self._armed
                if armed is None:
                    self._sleeping_until = None
                    # Re-check after publishing that we sleep with no deadline: an arm()
                    # that read the old value did not notify.
                    if self._armed is None:
                        self._cond.wait()
                    continue
                deadline, callback = armed
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._sleeping_until = deadline
                    if self._armed is armed:
                        self._cond.wait(remaining)
                    continue
                if self._armed is not armed:  # re-armed or disarmed meanwhile
                    continue
                self._armed = None
                self._cond.release()
                try:
                    callback()
                finally:
                    self._cond.acquire()


_END = object()


class StepStreamCall:
    """One open StepStream call.

    Args:
        method: the stream-stream callable (raw StepRequest bytes in, raw FrameChunk bytes out).
        metadata: call metadata (session id, token).
        watchdog: shared deadline watchdog.
        max_frame_bytes: largest frame the assembler accepts.
    """

    def __init__(
        self,
        method: grpc.StreamStreamMultiCallable,
        metadata: Sequence[tuple[str, str]],
        watchdog: Watchdog,
        max_frame_bytes: int,
    ) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._call = method(iter(self._requests.get, _END), metadata=metadata)
        self._responses: Iterator[bytes] = iter(self._call)  # serialised FrameChunks
        self._watchdog = watchdog
        self._assembler = FrameSetAssembler(max_frame_bytes)
        self._timed_out = False

    def step(self, request: bytes, timeout_s: float) -> AssembledFrameSet | FlatFrameSet | DecodedFrameSet:
        """Sends one serialised StepRequest and reassembles its frames.

        Raises:
            grpc.RpcError: the call failed (the stream is then unusable).
            StreamInterruptedError: no complete answer within `timeout_s`, or none at all.
        """
        self._requests.put(request)
        self._watchdog.arm(timeout_s, self._expire)
        try:
            for chunk in self._responses:
                if self._assembler.idle:
                    # A whole one-frame FrameSet in our layout skips the assembler.
                    flat = decode_single_frame(chunk, True) or read_chunk_layout(chunk)
                    if flat is not None:
                        return flat
                result = self._assembler.add(chunk)
                if result is not None:
                    return result
        except grpc.RpcError:
            if self._timed_out:
                raise StreamInterruptedError(f"no answer within {timeout_s:g} s") from None
            raise
        finally:
            self._watchdog.disarm()
        raise StreamInterruptedError("the server ended StepStream without answering")

    def _expire(self) -> None:
        self._timed_out = True
        self._call.cancel()

    def close(self) -> None:
        """Half-closes the request side and cancels the call."""
        self._requests.put(_END)
        self._call.cancel()
