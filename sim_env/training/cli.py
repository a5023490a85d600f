"""`genworld train`: arguments and entry point (the work is in `sim_env.training.trainer`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from sim_env.model.config import DiTConfig, get_config
from sim_env.training.diffusion_forcing import ForcingOptions
from sim_env.training.schedules import ConditionCurriculum
from sim_env.training.trainer import Trainer, TrainSettings, state_path

log = logging.getLogger(__name__)


def resolve_config(name_or_path: str) -> DiTConfig:
    """A registered config name (``tiny64``) or a JSON file of `DiTConfig` fields."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return DiTConfig.from_json(path.read_text())
    return get_config(name_or_path)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the flags of `genworld train`."""
    d = TrainSettings(data=("",), out="", steps=1)
    f, c = ForcingOptions(), ConditionCurriculum()
    parser.add_argument(
        "--data", nargs="+", required=True, help="recorded dataset directories (genworld record)"
    )
    parser.add_argument("--config", default="tiny64", help="model config name or a DiTConfig JSON file")
    parser.add_argument("--init", default=None, help="start from this checkpoint's weights")
    parser.add_argument("--steps", type=int, required=True, help="total optimisation steps")
    parser.add_argument("--out", required=True, help="checkpoint to write (EMA weights, .safetensors)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>.state.pt if it exists")
    parser.add_argument("--stop-at", type=int, default=None, help="stop and checkpoint at this step")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop and checkpoint after this long")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--span", type=int, default=d.span, help="recorded frames per training window")
    parser.add_argument("--stride", type=int, default=d.stride, help="frames between window starts")
    parser.add_argument(
        "--max-history", type=int, default=f.max_history, help="generated frames before the target"
    )
    parser.add_argument("--noisy-history-prob", type=float, default=f.noisy_history_prob)
    parser.add_argument(
        "--gt-forcing-start", type=float, default=d.gt_forcing_start, help="fraction of steps"
    )
    parser.add_argument("--gt-forcing-prob", type=float, default=d.gt_forcing_prob)
    parser.add_argument(
        "--rollout-frames", type=int, default=f.rollout_frames, help="GT forcing rollout length"
    )
    parser.add_argument(
        "--rollout-steps", type=int, default=f.rollout_steps, help="sampler steps per rollout frame"
    )
    parser.add_argument(
        "--memory-capacity", type=int, default=f.memory_capacity, help="voxels of the point-cloud memory"
    )
    parser.add_argument("--depth-weight", type=float, default=f.depth_weight, help="loss weight of depth")
    parser.add_argument("--injection-start", type=float, default=c.injection_start)
    parser.add_argument("--injection-end", type=float, default=c.injection_end)
    parser.add_argument("--anchor-mask-prob", type=float, default=c.anchor_mask_prob)
    parser.add_argument("--save-every", type=int, default=d.save_every)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    parser.add_argument("--workers", type=int, default=d.workers, help="data-loader processes")
    parser.add_argument(
        "--logdir", default=None, help="TensorBoard directory (default <out>.tb; '' disables)"
    )
    parser.add_argument(
        "--train-only",
        default="",
        help="comma-separated parameter-name prefixes to train, the rest frozen (e.g. head.gate)",
    )


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """`TrainSettings` of parsed `genworld train` flags."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return TrainSettings(
        data=tuple(args.data),
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        seed=args.seed,
        span=args.span,
        stride=args.stride,
        gt_forcing_start=args.gt_forcing_start,
        gt_forcing_prob=args.gt_forcing_prob,
        save_every=args.save_every,
        device=device,
        amp=not args.no_amp,
        workers=args.workers,
        logdir=args.logdir,
        init=args.init,
        stop_at=args.stop_at,
        max_minutes=args.max_minutes,
        forcing=ForcingOptions(
            max_history=args.max_history,
            noisy_history_prob=args.noisy_history_prob,
            rollout_frames=args.rollout_frames,
            rollout_steps=args.rollout_steps,
            memory_capacity=args.memory_capacity,
            depth_weight=args.depth_weight,
        ),
        curriculum=ConditionCurriculum(args.injection_start, args.injection_end, args.anchor_mask_prob),
        train_only=tuple(p for p in args.train_only.split(",") if p),
    )


def run_train(args: argparse.Namespace) -> int:
    """Run `genworld train`; writes the checkpoint, its state file and a JSON summary."""
    settings = settings_from_args(args)
    trainer = Trainer(settings, resolve_config(args.config))
    resume_from = state_path(settings.out)
    if args.resume and resume_from.exists():
        trainer.load(resume_from)
    elif args.resume:
        log.info("no state at %s: starting from step 0", resume_from)
    summary = trainer.run()
    Path(f"{settings.out}.summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0
