"""`genworld` command line: serve, record, export and bench.

Each subcommand parses its flags here and calls one function of the module that owns the
work, so the modules stay importable and testable without argparse.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def parse_resolution(text: str) -> tuple[int, int]:
    """Parses HxW (e.g. 480x640) into (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"resolution must look like 480x640, got {text!r}") from exc
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"resolution must be positive, got {text!r}")
    return h, w


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The `genworld` parser with bridge's commands; callers may add subcommands."""
    parser = argparse.ArgumentParser(prog="genworld", description="GenWorld: generated worlds as simulators.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="host a World over gRPC")
    serve.add_argument("--world", default="mujoco", help="mujoco (one world per client session)")
    serve.add_argument("--scene", default="rooms", choices=["rooms", "tabletop"])
    serve.add_argument("--resolution", type=parse_resolution, default=(64, 64), help="HxW")
    serve.add_argument("--agents", type=int, default=1, help="cameras per world")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    serve.add_argument("--port", type=int, default=50051)
    serve.add_argument("--token", default=None, help="require 'authorization: Bearer TOKEN'")
    serve.add_argument("--tls-cert", default=None, help="PEM certificate chain for TLS")
    serve.add_argument("--tls-key", default=None, help="PEM private key for TLS")
    serve.add_argument("--max-sessions", type=int, default=16)

    record = sub.add_parser("record", help="record trajectory shards from a World")
    record.add_argument("--world", default="mujoco", help="mujoco or grpc://HOST:PORT")
    record.add_argument("--scene", default="rooms", choices=["rooms", "tabletop"])
    record.add_argument("--episodes", type=int, required=True)
    record.add_argument("--steps", type=int, required=True, help="steps per episode")
    record.add_argument("--policy", default="random", choices=["random", "spiral", "loop", "keys"])
    record.add_argument("--out", required=True, help="dataset directory (re-running resumes)")
    record.add_argument("--resolution", type=parse_resolution, default=(64, 64), help="HxW")
    record.add_argument("--workers", type=int, default=1, help="parallel recording processes")
    record.add_argument("--seed", type=int, default=0, help="episode i uses seed S + i")
    record.add_argument("--agents", type=int, default=1, help="cameras per world")

    export = sub.add_parser("export", help="convert a recorded dataset to another layout")
    export.add_argument("--format", required=True, choices=["tartanair", "realestate10k", "colmap"])
    export.add_argument("src", help="recorded dataset directory")
    export.add_argument("out", help="output directory")

    bench = sub.add_parser("bench", help="benchmarks; figures go to docs/benchmarks.md")
    bench_sub = bench.add_subparsers(dest="bench_target", required=True)
    bench_bridge = bench_sub.add_parser("bridge", help="gRPC frames/s vs a bare gRPC echo ceiling")
    bench_bridge.add_argument("--resolutions", default="64x64,480x640")
    bench_bridge.add_argument("--frames", type=int, default=300, help="timed frames per case")
    bench_bridge.add_argument("--repeats", type=int, default=5)
    bench_bridge.add_argument("--json", default=None, help="also write results here")
    bench_render = bench_sub.add_parser("render", help="MuJoCo rendering frames/s")
    bench_render.add_argument("--resolutions", default="64x64,480x640")
    bench_render.add_argument("--scenes", default="rooms,tabletop")
    bench_render.add_argument("--frames", type=int, default=200)
    bench_render.add_argument("--repeats", type=int, default=5)
    bench_render.add_argument("--json", default=None)
    return parser, sub


def configure_logging(verbose: bool) -> None:
    """Readable timestamped logs; debug with -v."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def dispatch(args: argparse.Namespace) -> int:
    """Runs a parsed bridge subcommand."""
    if args.command == "serve":
        from bridge.server import run_server

        return run_server(
            world=args.world,
            scene=args.scene,
            resolution=args.resolution,
            num_agents=args.agents,
            host=args.host,
            port=args.port,
            token=args.token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            max_sessions=args.max_sessions,
        )
    if args.command == "record":
        from bridge.recorder import record

        record(
            world=args.world,
            scene=args.scene,
            episodes=args.episodes,
            steps=args.steps,
            policy=args.policy,
            out=args.out,
            resolution=args.resolution,
            workers=args.workers,
            seed=args.seed,
            num_agents=args.agents,
        )
        return 0
    if args.command == "export":
        from bridge.export import export

        export(args.format, args.src, args.out)
        return 0
    if args.command == "bench":
        resolutions = [parse_resolution(r) for r in args.resolutions.split(",")]
        if args.bench_target == "bridge":
            from bridge.bench.grpc_bench import run_bridge_bench

            run_bridge_bench(resolutions, args.frames, args.repeats, args.json)
        else:
            from bridge.bench.render_bench import run_render_bench

            run_render_bench(resolutions, args.scenes.split(","), args.frames, args.repeats, args.json)
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    """Bridge-only entry point (`python -m bridge.cli`); `genworld` adds sim_env commands."""
    args = build_parser()[0].parse_args(argv)
    configure_logging(args.verbose)
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
