"""`genworld bench bridge`: RGB-D frames/s over loopback gRPC against a bare-gRPC ceiling.

What is measured: a WorldClient stepping a bridge server (unary Step, then StepStream),
and, in the same run, a bare gRPC echo server that answers a small request with a
pre-serialised payload of exactly the byte size of our FrameSet (for the stream case:
the same number and sizes of chunk messages). The ratio bridge/ceiling is the share of
raw gRPC throughput the bridge keeps; the rest is our encoding, validation, sessions and
decoding.

Servers run in a separate (spawned) process so client and server do not share a GIL,
as in real use. The bridge server hosts `ConstantWorld`, which returns precomputed random
observations: the benchmark measures transport, not rendering.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing as mp
import os
import platform
import queue
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bridge.bench import report
from bridge.client import MAX_RECEIVE_BYTES, WorldClient
from bridge.conventions import intrinsics_from_fov, look_at
from bridge.server import DEFAULT_MAX_CHUNK_BYTES, serve
from bridge.types import CAPABILITY_DEPTH, CAPABILITY_RGB, Action, Observation, WorldInfo
from bridge.wire import encode_frameset

log = logging.getLogger(__name__)

ECHO_SERVICE = "genworld.bench.Echo"
# Distinct precomputed frames the constant world cycles through, so consecutive steps do
# not hand the server the very same arrays (no accidental caching anywhere).
CONSTANT_FRAMES = 4
WARMUP_FRAMES = 30
FOV_DEG = 70.0
MAX_DEPTH_M = 20.0
SERVER_START_TIMEOUT_S = 60.0
PORT_POLL_S = 0.5
ECHO_WORKERS = 8
BYTES_PER_MB = 1e6
MS_PER_S = 1e3
P50, P99 = 50, 99
# The echo request stands in for a StepRequest with one key action (about 10 bytes).
ECHO_REQUEST = b"\x08\x01\x12\x06\n\x01a\x10\x01"


class ConstantWorld:
    """A World that returns precomputed random RGB-D frames: rendering costs nothing.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        seed: seed of the random frames.
    """

    def __init__(self, height: int, width: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._height, self._width = height, width
        pose, K = look_at([0.0, 0.0, 1.5], [1.0, 0.0, 1.5]), intrinsics_from_fov(width, height, FOV_DEG)
        self._frames = [
            Observation(
                rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                depth=rng.uniform(0.1, MAX_DEPTH_M, (height, width)).astype(np.float32),
                pose=pose,
                K=K,
                frame_id=0,
                sim_time=0.0,
            )
            for _ in range(CONSTANT_FRAMES)
        ]
        self._count = 0

    def handshake(self) -> WorldInfo:
        """A single-agent RGB-D world at the configured resolution."""
        return WorldInfo(
            name="constant",
            capabilities=(CAPABILITY_RGB, CAPABILITY_DEPTH),
            height=self._height,
            width=self._width,
        )

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> dict[str, Observation]:
        """Frame 0."""
        self._count = 0
        return {"agent_0": self._frame()}

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        """The next precomputed frame."""
        self._count += 1
        return {"agent_0": self._frame()}

    def set_pose(self, agent_id: str, pose: Any) -> Observation:
        """The current frame (the pose is ignored)."""
        return self._frame()

    def close(self) -> None:
        """Nothing to release."""

    def _frame(self) -> Observation:
        f = self._frames[self._count % CONSTANT_FRAMES]
        return Observation(f.rgb, f.depth, f.pose, f.K, frame_id=self._count, sim_time=float(self._count))


def _echo_payloads(height: int, width: int) -> tuple[bytes, list[bytes]]:
    """Byte strings as large as the bridge's FrameSet and its StepStream chunks."""
    world = ConstantWorld(height, width)
    encoded = encode_frameset(1, world.step({}))
    blob_size = len(encoded.to_bytes())
    chunk_sizes = [len(c) for c in encoded.chunks(DEFAULT_MAX_CHUNK_BYTES)]
    filler = os.urandom(max(blob_size, *chunk_sizes))
    return filler[:blob_size], [filler[:n] for n in chunk_sizes]


def _server_process(height: int, width: int, ports: mp.Queue, stop: Any) -> None:
    """Hosts the bridge server and the echo ceiling until `stop` is set."""
    unary_payload, chunk_payloads = _echo_payloads(height, width)

    def echo_unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        return unary_payload

    def echo_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in requests:
            yield from chunk_payloads

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(echo_unary),
        "Stream": grpc.stream_stream_rpc_method_handler(echo_stream),
    }
    echo = grpc.server(
        futures.ThreadPoolExecutor(max_workers=ECHO_WORKERS),
        options=[("grpc.max_send_message_length", MAX_RECEIVE_BYTES)],
    )
    echo.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ECHO_SERVICE, handlers),))
    echo_port = echo.add_insecure_port("127.0.0.1:0")
    echo.start()
    bridge = serve(lambda: ConstantWorld(height, width))
    ports.put((bridge.port, echo_port))
    stop.wait()
    bridge.stop(grace=None)
    echo.stop(grace=None)


@dataclass(frozen=True)
class CaseResult:
    """Timings of one (resolution, transport) case.

    Rates are medians over repeats; `ratio` is the median of the per-repeat ratios of the
    bridge to the ceiling timed right after it.
    """

    resolution: str
    transport: str
    frame_bytes: int
    fps: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    ceiling_fps: float
    ceiling_mb_per_s: float
    ratio: float


@dataclass
class _Timings:
    rates: list[float] = field(default_factory=list)  # frames/s of each repeat
    latencies: list[float] = field(default_factory=list)  # seconds, every timed step


def _interleaved(steppers: dict[str, Callable[[], Any]], frames: int, repeats: int) -> dict[str, _Timings]:
    """Times each stepper `repeats` times, alternating between them.

    Alternating repeats of the bridge and its ceiling means both see the same background
    load, so their ratio stays meaningful on a busy machine.
    """
    for step in steppers.values():
        for _ in range(WARMUP_FRAMES):
            step()
    timings = {name: _Timings() for name in steppers}
    for _ in range(repeats):
        for name, step in steppers.items():
            start = time.perf_counter()
            for _ in range(frames):
                t0 = time.perf_counter()
                step()
                timings[name].latencies.append(time.perf_counter() - t0)
            timings[name].rates.append(frames / (time.perf_counter() - start))
    return timings


def _bridge_stepper(stack: ExitStack, address: str, stream: bool) -> Callable[[], Any]:
    client = stack.enter_context(WorldClient(address, stream=stream, client_name="genworld-bench"))
    client.reset(seed=0)
    actions = {"agent_0": Action.from_key(1)}
    return lambda: client.step(actions)


def _echo_stepper(stack: ExitStack, address: str, stream: bool, chunks_per_step: int) -> Callable[[], Any]:
    options = [("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
    channel = stack.enter_context(grpc.insecure_channel(address, options=options))
    if not stream:
        unary = channel.unary_unary(f"/{ECHO_SERVICE}/Unary")
        return lambda: unary(ECHO_REQUEST)
    requests: queue.SimpleQueue = queue.SimpleQueue()
    end = object()
    call = channel.stream_stream(f"/{ECHO_SERVICE}/Stream")(iter(requests.get, end))
    stack.callback(call.cancel)
    stack.callback(requests.put, end)
    responses = iter(call)

    def step() -> None:
        requests.put(ECHO_REQUEST)
        for _ in range(chunks_per_step):
            next(responses)

    return step


def _wait_for_ports(ports: mp.Queue, process: mp.process.BaseProcess) -> tuple[int, int]:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return ports.get(timeout=PORT_POLL_S)
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the benchmark server process died (exit code {process.exitcode})"
                ) from None
    raise TimeoutError(f"the benchmark servers did not start within {SERVER_START_TIMEOUT_S:g} s")


def _bench_resolution(height: int, width: int, frames: int, repeats: int) -> list[CaseResult]:
    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()
    stop = ctx.Event()
    process = ctx.Process(target=_server_process, args=(height, width, ports, stop), daemon=True)
    process.start()
    try:
        bridge_port, echo_port = _wait_for_ports(ports, process)
        unary_payload, chunk_payloads = _echo_payloads(height, width)
        results = []
        for transport, stream in (("unary Step", False), ("StepStream", True)):
            with ExitStack() as stack:
                steppers = {
                    "bridge": _bridge_stepper(stack, f"127.0.0.1:{bridge_port}", stream),
                    "ceiling": _echo_stepper(stack, f"127.0.0.1:{echo_port}", stream, len(chunk_payloads)),
                }
                timings = _interleaved(steppers, frames, repeats)
            bridge, ceiling = timings["bridge"], timings["ceiling"]
            fps, ceiling_fps = statistics.median(bridge.rates), statistics.median(ceiling.rates)
            wire_bytes = sum(map(len, chunk_payloads)) if stream else len(unary_payload)
            results.append(
                CaseResult(
                    resolution=f"{height}x{width}",
                    transport=transport,
                    frame_bytes=wire_bytes,
                    fps=fps,
                    mb_per_s=fps * wire_bytes / BYTES_PER_MB,
                    p50_ms=float(np.percentile(bridge.latencies, P50)) * MS_PER_S,
                    p99_ms=float(np.percentile(bridge.latencies, P99)) * MS_PER_S,
                    ceiling_fps=ceiling_fps,
                    ceiling_mb_per_s=ceiling_fps * wire_bytes / BYTES_PER_MB,
                    ratio=statistics.median(b / c for b, c in zip(bridge.rates, ceiling.rates, strict=True)),
                )
            )
            log.info(
                "%s %s: %.0f frames/s (ceiling %.0f)", results[-1].resolution, transport, fps, ceiling_fps
            )
        return results
    finally:
        stop.set()
        process.join(timeout=SERVER_START_TIMEOUT_S)
        if process.is_alive():
            process.terminate()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """One line about the machine, for the report."""
    return (
        f"{_cpu_model()}, {os.cpu_count()} CPU cores, {platform.system()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}"
    )


def markdown_table(results: list[CaseResult]) -> str:
    """The results as a markdown table."""
    header = [
        "resolution",
        "transport",
        "bytes/frame",
        "frames/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "ceiling frames/s",
        "ceiling MB/s",
        "bridge/ceiling",
    ]
    rows = [
        [
            r.resolution,
            r.transport,
            str(r.frame_bytes),
            f"{r.fps:.0f}",
            f"{r.mb_per_s:.1f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.ceiling_fps:.0f}",
            f"{r.ceiling_mb_per_s:.1f}",
            f"{r.ratio:.0%}",
        ]
        for r in results
    ]
    return report.markdown_table(header, rows, text_columns=2)


def run_bridge_bench(
    resolutions: list[tuple[int, int]], frames: int, repeats: int, json_path: str | None
) -> list[dict]:
    """Runs every case, prints a markdown table and optionally writes JSON.

    Args:
        resolutions: (height, width) pairs.
        frames: timed steps per repeat.
        repeats: timed repeats per case; medians are reported.
        json_path: where to write the results as JSON, or None.

    Returns:
        One dict per (resolution, transport) case.
    """
    results = [r for h, w in resolutions for r in _bench_resolution(h, w, frames, repeats)]
    print(f"machine: {machine_description()}")
    print(
        f"{frames} frames x {repeats} repeats per case, medians; RGB-D, 1 agent, RAW codec, loopback, "
        f"StepStream chunks of at most {DEFAULT_MAX_CHUNK_BYTES} bytes (the server default)\n"
    )
    print(markdown_table(results))
    rows = [dataclasses.asdict(r) for r in results]
    if json_path is not None:
        payload = {
            "machine": machine_description(),
            "frames": frames,
            "repeats": repeats,
            "max_chunk_bytes": DEFAULT_MAX_CHUNK_BYTES,
            "results": rows,
        }
        Path(json_path).write_text(json.dumps(payload, indent=2))
    return rows
