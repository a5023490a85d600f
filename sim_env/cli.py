"""The `genworld` console script: bridge commands plus the simulator's own (`demo`).

It lives in `sim_env` because the dependency direction is agents → sim_env → bridge:
bridge's commands are registered from `bridge.cli`, and this module adds what needs
`sim_env`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bridge import cli as bridge_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `genworld`."""
    parser, subparsers = bridge_cli.build_parser()
    demo = subparsers.add_parser("demo", help="run the default world on the CPU and write a video")
    demo.add_argument("--out", default="demo.mp4", help="video path (.mp4 or .gif)")
    demo.add_argument("--steps", type=int, default=200)
    demo.add_argument("--scene", default="rooms", choices=["rooms", "tabletop"])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--resolution", type=bridge_cli.parse_resolution, default=(64, 64), help="HxW")
    args = parser.parse_args(argv)
    bridge_cli.configure_logging(args.verbose)
    if args.command == "demo":
        from sim_env.demo import run_demo

        run_demo(out=args.out, steps=args.steps, scene=args.scene, seed=args.seed, resolution=args.resolution)
        return 0
    return bridge_cli.dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
