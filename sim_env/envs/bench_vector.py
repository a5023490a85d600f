"""Throughput of the GenWorld vector env with `gymnasium.utils.performance.benchmark_vector_step`.

``python -m sim_env.envs.bench_vector --num-envs 1,16,64`` builds
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", ...)`` for every N and
reports env-steps/s (Gymnasium's count: every sub-env step, excluding NEXT_STEP reset steps) as a
markdown table. Random weights are fine: the cost of a step does not depend on the weights.
The env is viewed through numpy (`vector_to_numpy`), because the benchmark's loop uses numpy on
the returned masks; that device-to-host copy is part of the measured step.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from collections.abc import Sequence

import gymnasium as gym
import torch
from gymnasium.utils.performance import benchmark_vector_step

import sim_env  # noqa: F401 - registers the ids
from bridge.bench import report
from sim_env.envs.wrappers import vector_to_numpy


def bench_vector(
    env_id: str = "GenWorld/Navigate-v0",
    num_envs: Sequence[int] = (1, 16, 64),
    world: str = "generative",
    device: str = "cpu",
    duration: float = 5.0,
    denoising_steps: int = 4,
    seed: int = 0,
) -> list[dict[str, float | int | str]]:
    """Env-steps/s of the vector env for every ``num_envs`` (one row per N)."""
    rows = []
    for n in num_envs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the random-weights notice, once per N
            kwargs = {"world": world, "device": device}
            if world == "generative":
                kwargs["denoising_steps"] = denoising_steps
            env = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
        env = vector_to_numpy(env)
        start = time.perf_counter()
        steps_per_s = benchmark_vector_step(env, target_duration=duration, seed=seed)
        env.close()
        rows.append(
            {
                "num_envs": n,
                "steps_per_s": steps_per_s,
                "wall_s": time.perf_counter() - start,
                "device": device,
            }
        )
        print(f"num_envs={n:4d}: {steps_per_s:9.1f} env-steps/s", flush=True)
    return rows


def machine_description(device: str) -> str:
    """One line naming the machine the figures come from."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints a markdown table (and writes JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="GenWorld/Navigate-v0")
    parser.add_argument("--num-envs", default="1,16,64", help="comma-separated sub-env counts")
    parser.add_argument("--world", default="generative")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--denoising-steps", type=int, default=4)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = bench_vector(
        args.env_id,
        [int(v) for v in args.num_envs.split(",") if v],
        args.world,
        args.device,
        args.duration,
        args.denoising_steps,
    )
    print(
        f"\n{args.env_id}, world={args.world}, denoising_steps={args.denoising_steps}, "
        f"{machine_description(args.device)}"
    )
    table = [[str(r["num_envs"]), f"{r['steps_per_s']:.1f}"] for r in rows]
    print(report.markdown_table(["num_envs", "env-steps/s"], table, text_columns=0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
