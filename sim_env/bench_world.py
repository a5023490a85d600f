"""`genworld bench world`: generated env-steps/s of the batched generative runtime.

One env-step is one stream (agent) advancing one frame, so a batch of N streams stepped once
counts N env-steps; frames/s counts generated RGB-D frames (``chunk_frames`` per env-step).
For every ``num_worlds`` the runtime is built with random weights, reset from synthetic
reference frames, warmed up (allocation, kernel loading, autotuning), then ``frames`` steps are
timed ``repeats`` times; the median rate is reported, because the first repeats of a fresh
process and occasional host hiccups skew a mean. Timing brackets the steps with a device
synchronisation so queued work is counted, while the steps themselves run without one.

Only configs the runtime can step are measured: the latent ``wan2.1-1.3b`` path (Wan-VAE
encoder, TAEHV decode, multi-frame chunks) is not built yet, and the command then exits non-zero
with that reason rather than report a number for something that did not run.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from bridge.bench import report
from bridge.conventions import intrinsics_from_fov, look_at
from sim_env.conditioning import require_pixel_space
from sim_env.model.config import get_config
from sim_env.runtime import GenerativeRuntime

log = logging.getLogger(__name__)

DEFAULT_NUM_WORLDS = (1, 16, 256)
DEFAULT_FRAMES = 50  # timed steps per repeat
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 3  # untimed steps before timing
REFERENCE_DEPTH_M = 4.0  # synthetic reference scene: a noisy wall about this far away
NAV_SCALE = 0.25  # small random moves keep the cameras inside the reference's view
FOV_DEG = 70.0


class UnsupportedConfigError(RuntimeError):
    """The runtime cannot step this config yet (so there is nothing honest to time)."""


@dataclass(frozen=True)
class WorldBenchResult:
    """One row of the table: median rates over the repeats for one batch size."""

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


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(runtime: GenerativeRuntime, seed: int) -> None:
    """Reset every stream from a synthetic RGB-D reference (a textured wall ahead)."""
    n, h, w = runtime.num_streams, runtime.height, runtime.width
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    depth = REFERENCE_DEPTH_M + torch.rand(n, h, w, generator=gen)
    K = torch.as_tensor(intrinsics_from_fov(w, h, FOV_DEG)).expand(n, 3, 3)
    pose = torch.as_tensor(look_at([0.0, 0.0, 1.2], [3.0, 0.0, 1.2])).expand(n, 4, 4)
    runtime.reset_batch(rgb, depth, K, pose, seed=seed)


def bench_one(
    config: str,
    num_worlds: int,
    denoising_steps: int,
    frames: int,
    repeats: int,
    device: torch.device,
    warmup: int = DEFAULT_WARMUP,
    seed: int = 0,
) -> WorldBenchResult:
    """Median env-steps/s of ``num_worlds`` single-agent worlds stepped ``frames`` times."""
    runtime = GenerativeRuntime(
        config=config, device=str(device), num_worlds=num_worlds, denoising_steps=denoising_steps, seed=seed
    )
    _reset(runtime, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    # Actions are made on the device before timing: an RL env's policy outputs live there too.
    navs = [
        (NAV_SCALE * (2 * torch.rand(num_worlds, 6, generator=gen, dtype=torch.float64) - 1)).to(device)
        for _ in range(frames)
    ]
    for nav in navs[:warmup]:
        runtime.step_batch(nav)
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for nav in navs:
            runtime.step_batch(nav)
        _sync(device)
        rates.append(frames / (time.perf_counter() - start))
    steps_per_s = statistics.median(rates)  # batched steps per second
    cfg = runtime.config
    return WorldBenchResult(
        config=cfg.name,
        num_worlds=num_worlds,
        height=cfg.height,
        width=cfg.width,
        denoising_steps=denoising_steps,
        device=_device_name(device),
        dtype=str(next(runtime.model.parameters()).dtype).removeprefix("torch."),
        frames=frames,
        repeats=repeats,
        env_steps_per_s=steps_per_s * runtime.num_streams,
        frames_per_s=steps_per_s * runtime.num_streams * cfg.chunk_frames,
        step_ms=1000.0 / steps_per_s,
    )


def check_supported(config: str, height: int | None, width: int | None) -> None:
    """Raise `UnsupportedConfigError` unless the runtime can step ``config`` at that size."""
    cfg = get_config(config)
    try:
        require_pixel_space(cfg)
    except NotImplementedError as exc:
        raise UnsupportedConfigError(
            f"{config} needs the latent path (Wan-VAE encoder for the condition, TAEHV decode, "
            f"multi-frame chunks), which GenerativeRuntime does not implement yet: {exc}"
        ) from exc
    if cfg.chunk_frames != 1:
        raise UnsupportedConfigError(
            f"{config}: the runtime generates one frame per step (chunk_frames == 1)"
        )
    if (height is not None and height != cfg.image_height) or (
        width is not None and width != cfg.image_width
    ):
        raise UnsupportedConfigError(
            f"{config} generates {cfg.image_height}x{cfg.image_width} frames; "
            f"{height}x{width} is not supported"
        )


def markdown_table(results: Sequence[WorldBenchResult]) -> str:
    """The results as a markdown table (the format of docs/benchmarks.md)."""
    header = ["config", "num_worlds", "HxW", "denoising steps", "dtype", "device"]
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
            ),
            *(f"{r.env_steps_per_s:,.1f}", f"{r.frames_per_s:,.1f}", f"{r.step_ms:.2f}"),
        ]
        for r in results
    ]
    return report.markdown_table(header, rows, text_columns=6)


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
) -> int:
    """Run the bench for every batch size, print the table; exit status (2 = unsupported config)."""
    try:
        check_supported(config, height, width)
    except UnsupportedConfigError as exc:
        print(f"genworld bench world: cannot benchmark: {exc}")
        return 2
    if frames < 1 or repeats < 1 or not num_worlds or min(num_worlds) < 1:
        raise ValueError("frames, repeats and every num_worlds must be positive")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    results = []
    for n in num_worlds:
        result = bench_one(
            config, n, denoising_steps, frames, repeats, dev, warmup=min(DEFAULT_WARMUP, frames)
        )
        log.info("bench world %s B=%d: %.1f env-steps/s", config, n, result.env_steps_per_s)
        results.append(result)
    print(markdown_table(results))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
    return 0
