"""`genworld eval`: arguments and entry point (the work is in `sim_env.evaluation.runner`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from sim_env.evaluation.plots import plot_report
from sim_env.evaluation.runner import POSE_SOURCES, VARIANTS, EvalSettings, run_evaluation
from sim_env.evaluation.trajectories import TRAJECTORY_NAMES
from sim_env.memory_rules import add_memory_rule_arguments, memory_rule_options

log = logging.getLogger(__name__)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the flags of `genworld eval`."""
    parser.add_argument("--checkpoint", default="default", help="checkpoint path, 'default' or 'random'")
    parser.add_argument("--world", default="mujoco", choices=["mujoco"], help="ground-truth engine")
    parser.add_argument("--episodes", type=int, default=4, help="held-out episodes per trajectory")
    parser.add_argument("--horizon", type=int, default=128, help="steps per episode")
    parser.add_argument("--seed-offset", type=int, default=100_000, help="first held-out engine seed")
    parser.add_argument("--out", default="report.json", help="JSON report (plots go next to it)")
    parser.add_argument("--video", default=None, help="write side-by-side videos into this directory")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--denoising-steps", type=int, default=4)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--trajectories", default=",".join(TRAJECTORY_NAMES), help="comma-separated subset")
    parser.add_argument("--memory-capacity", type=int, default=None, help="voxels of the memories")
    parser.add_argument(
        "--pose-source",
        choices=POSE_SOURCES,
        default="world",
        help="world: each world moves itself, the engine shadows it; engine: the engine moves and "
        "each world is teleported to its pose (every variant scored on the same views)",
    )
    parser.add_argument(
        "--reference-views",
        type=int,
        default=1,
        help="every world starts from the engine's reference plus its sweep, this many views in "
        "all around the start (1: the reference frame only, the default protocol)",
    )
    parser.add_argument(
        "--reference-positions",
        type=int,
        default=1,
        help="the sweep of --reference-views is rendered at this many positions: the start and "
        "those the scan chooses from what the views so far show (sim_env.reference_scan)",
    )
    add_memory_rule_arguments(parser)  # for the model worlds


def run_eval(args: argparse.Namespace) -> int:
    """Run `genworld eval`: report JSON, PNG plots next to it, optional videos."""
    checkpoint = None if args.checkpoint == "random" else args.checkpoint
    settings = EvalSettings(
        checkpoint=checkpoint,
        episodes=args.episodes,
        horizon=args.horizon,
        seed_offset=args.seed_offset,
        device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        denoising_steps=args.denoising_steps,
        variants=tuple(v for v in args.variants.split(",") if v),
        trajectories=tuple(t for t in args.trajectories.split(",") if t),
        memory_capacity=args.memory_capacity,
        video_dir=args.video,
        pose_source=args.pose_source,
        **memory_rule_options(args),
        reference_views=args.reference_views,
        reference_positions=args.reference_positions,
    )
    report = run_evaluation(settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plots = plot_report(report, out.parent, out.stem)
    log.info("wrote %s and %s", out, ", ".join(str(p) for p in plots))
    return 0
