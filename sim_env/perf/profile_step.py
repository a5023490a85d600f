"""Where one runtime step's GPU time goes: a kernel table from `torch.profiler`.

The speed table (`sim_env.bench_speed`) splits a step into conditioning, denoising, cache pass
and decode with CUDA events; this says which kernels fill each part, and what the remainder
("other": memory insert, cache roll, sampler arithmetic) is made of. Each phase is a
`record_function` range, so the table has one row per phase next to the kernels.

    python -m sim_env.perf.profile_step --config wan2.1-1.3b --compile-blocks --steps 2
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from sim_env.bench_world import _reset
from sim_env.runtime import GenerativeRuntime
from sim_env.runtime_speed import SpeedOptions

WARMUP_STEPS = 3
NAV_SCALE = 0.25


def profile_steps(runtime: GenerativeRuntime, steps: int, rows: int) -> str:
    """Warm up, profile ``steps`` eager steps, return the kernel table sorted by device time."""
    gen = torch.Generator().manual_seed(0)
    n = runtime.num_streams

    def nav() -> torch.Tensor:
        return (NAV_SCALE * (2 * torch.rand(n, 6, generator=gen, dtype=torch.float64) - 1)).to(runtime.device)

    cuda = runtime.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(runtime.device)

    for _ in range(WARMUP_STEPS):
        runtime.step_batch(nav())
    runtime.phase_timer = record_function
    sync()
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("step"):
                runtime.step_batch(nav())
        sync()
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile a world's step on CUDA and print the table (exit status 2 without CUDA)."""
    parser = argparse.ArgumentParser(prog="python -m sim_env.perf.profile_step", description=__doc__)
    parser.add_argument("--config", default="wan2.1-1.3b")
    parser.add_argument("--worlds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--compile-blocks", action="store_true")
    parser.add_argument("--fp8", action="store_true")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("profile_step: needs a CUDA device")
        return 2
    runtime = GenerativeRuntime(
        config=args.config,
        device="cuda",
        num_worlds=args.worlds,
        dtype=torch.bfloat16,
        speed=SpeedOptions(compile_blocks=args.compile_blocks, fp8_linears=args.fp8),
    )
    _reset(runtime, seed=0)
    print(profile_steps(runtime, args.steps, args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
