"""The `genworld` console script: bridge commands plus the simulator's own (demo, train, eval).

It lives in `sim_env` because the dependency direction is agents → sim_env → bridge:
bridge's commands are registered from `bridge.cli`, and this module adds what needs
`sim_env`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge import cli as bridge_cli

BENCH_WORLD_DEFAULT_FRAMES = 50
BENCH_WORLD_DEFAULT_REPEATS = 5


def _subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The subcommand action of ``parser`` (bridge builds `bench`'s; sim_env adds targets to it)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError(f"{parser.prog} has no subcommands")


def _add_bench_world(subparsers: argparse._SubParsersAction) -> None:
    """Register `genworld bench world` under bridge's `bench` command."""
    world = _subparsers_of(subparsers.choices["bench"]).add_parser(
        "world", help="generated env-steps/s of the batched generative runtime"
    )
    world.add_argument("--config", default="tiny64", help="model config: tiny64 or wan2.1-1.3b")
    world.add_argument("--num-worlds", default="1,16,256", help="comma-separated batch sizes")
    world.add_argument("--steps", type=int, default=4, help="denoising steps per frame")
    world.add_argument(
        "--frames", type=int, default=BENCH_WORLD_DEFAULT_FRAMES, help="timed steps per repeat"
    )
    world.add_argument("--repeats", type=int, default=BENCH_WORLD_DEFAULT_REPEATS)
    world.add_argument("--height", type=int, default=None, help="frame height (must match the config)")
    world.add_argument("--width", type=int, default=None, help="frame width (must match the config)")
    world.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    world.add_argument("--json", default=None, help="also write results here")
    from sim_env.bench_world import add_world_bench_arguments

    add_world_bench_arguments(world)
    from sim_env.bench_speed import add_speed_bench_arguments

    add_speed_bench_arguments(
        _subparsers_of(subparsers.choices["bench"]).add_parser(
            "speed", help="issue-7 speed table: wan 832x480, chunk-1 latency, tiny64 x256, RL tiers (CUDA)"
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `genworld`."""
    parser, subparsers = bridge_cli.build_parser()
    from sim_env import demo

    demo.add_demo_arguments(
        subparsers.add_parser("demo", help="run the default world on the CPU and write a video")
    )
    _add_bench_world(subparsers)
    from sim_env.evaluation.cli import add_eval_arguments
    from sim_env.training.cli import add_train_arguments

    add_train_arguments(subparsers.add_parser("train", help="train the world model on recorded data"))
    add_eval_arguments(
        subparsers.add_parser("eval", help="measure a world model against MuJoCo ground truth")
    )
    args = parser.parse_args(argv)
    bridge_cli.configure_logging(args.verbose)
    if args.command == "demo":
        return demo.run_demo_from_args(args)
    if args.command == "train":
        from sim_env.training.cli import run_train

        return run_train(args)
    if args.command == "eval":
        from sim_env.evaluation.cli import run_eval

        return run_eval(args)
    if args.command == "bench" and args.bench_target == "speed":
        from sim_env.bench_speed import run_speed_bench

        return run_speed_bench(args)
    if args.command == "bench" and args.bench_target == "world":
        from sim_env.bench_world import run_world_bench
        from sim_env.memory_rules import memory_rule_options

        return run_world_bench(
            config=args.config,
            num_worlds=[int(v) for v in args.num_worlds.split(",") if v],
            denoising_steps=args.steps,
            frames=args.frames,
            repeats=args.repeats,
            json_path=args.json,
            height=args.height,
            width=args.width,
            device=args.device,
            dtype=args.dtype,
            cuda_graph=False if args.no_cuda_graph else None,
            phase_steps=args.phase_steps,
            runtime_options=memory_rule_options(args) | {"reference_views": args.reference_views},
        )
    return bridge_cli.dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
