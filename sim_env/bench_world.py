"""`genworld bench world`: generated frames/s and env-steps/s of the batched generative runtime.

One env-step is one stream (agent) advancing one step, so a batch of N streams stepped once
counts N env-steps; frames/s counts generated video frames (``video_frames`` per env-step: 1 for
``tiny64``, 12 for ``wan2.1-1.3b``, whose 3 latent frames decode to 12). For every
``num_worlds`` the runtime is built with random weights, reset from synthetic reference frames
and warmed up (allocation, kernel loading, autotuning). On CUDA one `step_batch` is then
captured in a CUDA graph and the timed steps are graph replays (the step is host-sync free and
updates preallocated buffers in place, so a replay is a real step); elsewhere the steps run
eagerly. ``frames`` steps are timed ``repeats`` times and the median rate is reported, because
the first repeats of a fresh process and occasional host hiccups skew a mean. Timing brackets
the steps with a device synchronisation so queued work is counted.

For latent configs a separate eager pass after the warm-up (not graphed, ``phase_steps`` steps)
splits the step time into conditioning (memory splat into 12 cameras, TAEHV encode, masks, Plücker rays), DiT
denoising, the clean cache pass and the TAEHV decode, with CUDA events on the GPU; the rest
(kinematics, memory insert, cache roll) is reported as ``other``.

Latent configs run the DiT, its cache and the TAEHV in bfloat16 on CUDA (``dtype`` overrides);
pixel configs in float32.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bridge.bench import report
from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.latent_chunk import video_frames_per_step
from sim_env.memory_rules import add_memory_rule_arguments, memory_rules_of
from sim_env.model.config import get_config
from sim_env.reference_sweep import ReferenceViews, sweep_poses
from sim_env.runtime import GenerativeRuntime
from sim_env.runtime_speed import SpeedOptions

log = logging.getLogger(__name__)

DEFAULT_NUM_WORLDS = (1, 16, 256)
DEFAULT_FRAMES = 50  # timed steps per repeat
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 3  # untimed steps before timing (and before the graph capture)
DEFAULT_PHASE_STEPS = 5  # eager steps of the per-phase split (latent configs)
REFERENCE_DEPTH_M = 4.0  # synthetic reference scene: a noisy wall about this far away
NAV_SCALE = 0.25  # small random moves keep the cameras inside the reference's view
FOV_DEG = 70.0
PHASES = ("conditioning", "denoise", "cache_pass", "decode", "memory", "cache_roll")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class UnsupportedConfigError(RuntimeError):
    """The runtime cannot step this config at the requested size (nothing honest to time)."""


@dataclass(frozen=True)
class WorldBenchResult:
    """One row of the table: median rates over the repeats for one batch size.

    ``phase_ms`` (latent configs): mean ms per step of each phase in the eager pass, plus
    ``other`` and ``total``; empty when not measured.
    """

    config: str
    num_worlds: int
    height: int
    width: int
    denoising_steps: int
    device: str
    dtype: str
    frames: int
    repeats: int
    env_steps_per_s: float
    frames_per_s: float
    step_ms: float
    video_frames_per_step: int = 1
    cuda_graph: bool = False
    phase_ms: dict[str, float] = field(default_factory=dict)
    runtime_options: dict[str, Any] = field(default_factory=dict)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(runtime: GenerativeRuntime, seed: int) -> None:
    """Reset every stream from a synthetic RGB-D reference (a textured wall ahead).

    With ``runtime.reference_views`` > 1 the reference comes with a sweep of as many textured
    walls around it (`sim_env.reference_sweep`), so the memory holds what the envs' default holds.
    """
    n, h, w, v = runtime.num_streams, runtime.height, runtime.width, runtime.reference_views
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (n, v, h, w, 3), dtype=torch.uint8, generator=gen)
    depth = REFERENCE_DEPTH_M + torch.rand(n, v, h, w, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, FOV_DEG)).expand(n, v, 3, 3)
    start = look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2])
    pose = torch.as_tensor(sweep_poses(start, v)).expand(n, v, 4, 4)
    sweep = ReferenceViews(rgb[:, 1:], depth[:, 1:], K[:, 1:], pose[:, 1:]) if v > 1 else None
    runtime.reset_batch(rgb[:, 0], depth[:, 0], K[:, 0], pose[:, 0], seed=seed, sweep=sweep)


class PhaseTimer:
    """`GenerativeRuntime.phase_timer` that records each phase's device time.

    On CUDA a pair of events brackets each phase (read after one synchronisation at the end, so
    the timed steps run as usual); on the CPU the wall clock does.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._marks: list[tuple[str, object, object]] = []

    def _mark(self) -> object:
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        """Bracket one phase."""
        start = self._mark()
        yield
        self._marks.append((phase, start, self._mark()))

    def total_ms(self) -> dict[str, float]:
        """Milliseconds per phase summed over everything recorded (synchronises the device)."""
        _sync(self.device)
        totals: dict[str, float] = {}
        for phase, start, end in self._marks:
            if self.device.type == "cuda":
                ms = start.elapsed_time(end)  # type: ignore[attr-defined]
            else:
                ms = 1000.0 * (end - start)  # type: ignore[operator]
            totals[phase] = totals.get(phase, 0.0) + ms
        return totals


def measure_phases(runtime: GenerativeRuntime, navs: Sequence[torch.Tensor]) -> dict[str, float]:
    """Mean ms per step of each phase over eager steps of ``navs`` (plus ``other`` and ``total``)."""
    timer, untimed = PhaseTimer(runtime.device), runtime.phase_timer
    runtime.phase_timer = timer
    try:
        _sync(runtime.device)
        start = time.perf_counter()
        for nav in navs:
            runtime.step_batch(nav)
        totals = timer.total_ms()  # synchronises
        wall_ms = 1000.0 * (time.perf_counter() - start)
    finally:
        runtime.phase_timer = untimed
    per_step = {phase: totals.get(phase, 0.0) / len(navs) for phase in PHASES}
    per_step["total"] = wall_ms / len(navs)
    per_step["other"] = per_step["total"] - sum(per_step[p] for p in PHASES)
    return per_step


def graphed_step(
    runtime: GenerativeRuntime, warmup_navs: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """Warm up on a side stream, capture one `step_batch` in a CUDA graph; returns ``step(nav)``.

    The capture records kernels only (state does not advance); every replay is one real step of
    the runtime, reading the action from a static buffer that ``step`` fills first. ``step``
    returns the runtime's live output buffers, as `step_batch` does.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as torch.cuda.graphs asks
        for nav in warmup_navs:
            runtime.step_batch(nav)
    torch.cuda.current_stream().wait_stream(side)
    static_nav = torch.zeros_like(warmup_navs[0])
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = runtime.step_batch(static_nav)

    def step(nav: torch.Tensor) -> dict[str, torch.Tensor]:
        static_nav.copy_(nav)
        graph.replay()
        return static_out

    return step


def bench_one(
    config: str,
    num_worlds: int,
    denoising_steps: int,
    frames: int,
    repeats: int,
    device: torch.device,
    warmup: int = DEFAULT_WARMUP,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    cuda_graph: bool | None = None,
    phase_steps: int = DEFAULT_PHASE_STEPS,
    compile_blocks: bool = False,
    runtime_options: Mapping[str, Any] | None = None,
) -> WorldBenchResult:
    """Median env-steps/s and frames/s of ``num_worlds`` single-agent worlds stepped ``frames`` times.

    Args:
        config: model config name.
        num_worlds: B (one agent each).
        denoising_steps: flow-matching steps per step (the clean cache pass comes on top).
        frames: timed steps per repeat.
        repeats: timed repeats (the median is reported).
        device: torch device.
        warmup: untimed eager steps first.
        seed: weights, references and noise.
        dtype: model dtype; None = bfloat16 for latent configs on CUDA, else float32.
        cuda_graph: replay a captured step; None = on CUDA.
        phase_steps: eager steps of the per-phase split for latent configs (0 = skip).
        compile_blocks: ``torch.compile`` the DiT blocks (`GenerativeRuntime`).
        runtime_options: further `GenerativeRuntime` arguments (e.g. ``pinned_margin``), so a
            default's cost can be measured against the alternative in one run.
    """
    cfg = get_config(config)
    latent = cfg.vae is not None
    if dtype is None:
        dtype = torch.bfloat16 if latent and device.type == "cuda" else torch.float32
    if cuda_graph is None:
        cuda_graph = device.type == "cuda"
    runtime = GenerativeRuntime(
        config=config,
        device=str(device),
        num_worlds=num_worlds,
        denoising_steps=denoising_steps,
        seed=seed,
        dtype=dtype,
        speed=SpeedOptions(compile_blocks=compile_blocks),
        **dict(runtime_options or {}),
    )
    _reset(runtime, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    # Actions are made on the device before timing: an RL env's policy outputs live there too.
    navs = [
        (NAV_SCALE * (2 * torch.rand(num_worlds, 6, generator=gen, dtype=torch.float64) - 1)).to(device)
        for _ in range(max(frames, warmup, phase_steps, 1))
    ]
    if cuda_graph:
        step = graphed_step(runtime, navs[: max(warmup, 1)])
    else:
        step = runtime.step_batch
        for nav in navs[:warmup]:
            step(nav)
    # After the warm-up, so first-call costs (kernel loading, autotuning) stay out of the split.
    phase_ms = measure_phases(runtime, navs[:phase_steps]) if latent and phase_steps > 0 else {}
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for nav in navs[:frames]:
            step(nav)
        _sync(device)
        rates.append(frames / (time.perf_counter() - start))
    steps_per_s = statistics.median(rates)  # batched steps per second
    video_frames = video_frames_per_step(cfg)
    return WorldBenchResult(
        config=cfg.name,
        num_worlds=num_worlds,
        height=runtime.height,
        width=runtime.width,
        denoising_steps=denoising_steps,
        device=_device_name(device),
        dtype=str(dtype).removeprefix("torch."),
        frames=frames,
        repeats=repeats,
        env_steps_per_s=steps_per_s * runtime.num_streams,
        frames_per_s=steps_per_s * runtime.num_streams * video_frames,
        step_ms=1000.0 / steps_per_s,
        video_frames_per_step=video_frames,
        cuda_graph=cuda_graph,
        phase_ms=phase_ms,
        runtime_options=memory_rules_of(runtime) | {"reference_views": runtime.reference_views},
    )


def check_supported(config: str, height: int | None, width: int | None) -> None:
    """Raise `UnsupportedConfigError` unless the runtime generates ``config`` at that size."""
    cfg = get_config(config)
    if (height is not None and height != cfg.image_height) or (
        width is not None and width != cfg.image_width
    ):
        raise UnsupportedConfigError(
            f"{config} generates {cfg.image_height}x{cfg.image_width} frames; "
            f"{height}x{width} is not supported"
        )


def markdown_table(results: Sequence[WorldBenchResult]) -> str:
    """The results as a markdown table (the format of docs/benchmarks.md)."""
    header = ["config", "num_worlds", "HxW", "denoising steps", "dtype", "device", "CUDA graph"]
    header += ["env-steps/s", "frames/s", "ms/step"]
    rows = [
        [
            *(
                r.config,
                str(r.num_worlds),
                f"{r.height}x{r.width}",
                str(r.denoising_steps),
                r.dtype,
                r.device,
                "yes" if r.cuda_graph else "no",
            ),
            *(f"{r.env_steps_per_s:,.1f}", f"{r.frames_per_s:,.1f}", f"{r.step_ms:.2f}"),
        ]
        for r in results
    ]
    return report.markdown_table(header, rows, text_columns=7)


def phase_table(results: Sequence[WorldBenchResult]) -> str:
    """Per-phase ms/step of the results that have a split (empty string if none)."""
    measured = [r for r in results if r.phase_ms]
    if not measured:
        return ""
    columns = [*PHASES, "other", "total"]
    header = ["config", "num_worlds", *(f"{c} ms" for c in columns)]
    rows = [[r.config, str(r.num_worlds), *(f"{r.phase_ms[c]:.2f}" for c in columns)] for r in measured]
    return report.markdown_table(header, rows, text_columns=2)


def add_world_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `genworld bench world` beyond the CLI's own (for the CLI to add)."""
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="model dtype (default: auto)")
    parser.add_argument("--no-cuda-graph", action="store_true", help="time eager steps on CUDA too")
    parser.add_argument(
        "--phase-steps", type=int, default=DEFAULT_PHASE_STEPS, help="eager steps of the phase split"
    )
    parser.add_argument(
        "--reference-views",
        type=int,
        default=1,
        help="views per world at reset: the reference and a synthetic sweep around it (the envs' "
        "default is 8; the memory grows to hold them)",
    )
    add_memory_rule_arguments(parser)


def run_world_bench(
    config: str,
    num_worlds: Sequence[int],
    denoising_steps: int,
    frames: int,
    repeats: int,
    json_path: str | None = None,
    height: int | None = None,
    width: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    cuda_graph: bool | None = None,
    phase_steps: int = DEFAULT_PHASE_STEPS,
    runtime_options: Mapping[str, Any] | None = None,
) -> int:
    """Run the bench for every batch size, print the tables; exit status (2 = unsupported size)."""
    try:
        check_supported(config, height, width)
    except UnsupportedConfigError as exc:
        print(f"genworld bench world: cannot benchmark: {exc}")
        return 2
    if frames < 1 or repeats < 1 or not num_worlds or min(num_worlds) < 1:
        raise ValueError("frames, repeats and every num_worlds must be positive")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    results = []
    for n in num_worlds:
        result = bench_one(
            config,
            n,
            denoising_steps,
            frames,
            repeats,
            dev,
            warmup=min(DEFAULT_WARMUP, frames),
            dtype=None if dtype is None else DTYPES[dtype],
            cuda_graph=cuda_graph,
            phase_steps=phase_steps,
            runtime_options=runtime_options,
        )
        log.info("bench world %s B=%d: %.1f env-steps/s", config, n, result.env_steps_per_s)
        results.append(result)
    print(markdown_table(results))
    print(f"\nruntime options: {results[0].runtime_options}")
    phases = phase_table(results)
    if phases:
        print()
        print(phases)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
    return 0
