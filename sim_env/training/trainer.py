"""The training loop: diffusion forcing, then ground-truth forcing; EMA; exactly resumable.

Resumability: a run's state file (``<out>.state.pt``) holds the model, EMA, optimizer, LR
schedule and step; the data order (`StepBatchSampler`) and every random draw of a step (a CPU
generator seeded from (seed, step)) are pure functions of the step, and the global torch RNG
states are saved as well. Stopping at step k and resuming therefore reproduces the
uninterrupted run bit for bit on the same device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from sim_env.checkpoints import load_compatible, save_checkpoint
from sim_env.model.config import DiTConfig
from sim_env.model.dit import CausalDiT, count_parameters
from sim_env.training.data import (
    StepBatchSampler,
    WindowBatch,
    check_resolution,
    collate_windows,
    open_datasets,
)
from sim_env.training.diffusion_forcing import ForcingOptions, StepResult, diffusion_forcing_step
from sim_env.training.ema import EMA
from sim_env.training.gt_forcing import ground_truth_forcing_step
from sim_env.training.layout import require_single_frame_chunks
from sim_env.training.schedules import ConditionCurriculum, warmup_cosine

log = logging.getLogger(__name__)

STATE_SUFFIX = ".state.pt"
_STEP_SEED_MUL = 0x9E3779B1  # golden-ratio multiplier: neighbouring steps get unrelated seeds


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run depends on (stored in the state file).

    Attributes:
        data: recorded dataset directories.
        out: path of the shipped checkpoint (EMA weights, safetensors with the config).
        steps: total optimisation steps.
        batch_size: clips per step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear LR warmup.
        grad_clip: max gradient norm.
        ema_decay: EMA decay.
        seed: data order and every random draw.
        span: recorded frames per dataset window (>= max_history + 2).
        stride: frames between window starts.
        gt_forcing_start: fraction of training after which ground-truth forcing steps are mixed in.
        gt_forcing_prob: probability of a ground-truth forcing step after that point.
        save_every: steps between checkpoints (0: only at the end).
        device: torch device.
        amp: bf16 autocast on CUDA.
        workers: data-loader processes.
        logdir: TensorBoard directory (None: ``<out>.tb``; "" disables).
        init: checkpoint to start from (weights only).
        stop_at: stop (and checkpoint) at this step even if ``steps`` is larger (time boxes).
        max_minutes: stop (and checkpoint) after this much wall time (a GPU-budget safety net;
            the LR schedule still refers to ``steps``).
        forcing: forcing options.
        curriculum: condition-injection schedule.
        train_only: parameter-name prefixes to train (empty: all). A finetune of one new head
            on a frozen trained model (e.g. ``("head.gate",)``) cannot disturb what the rest
            of the model learned.
    """

    data: tuple[str, ...]
    out: str
    steps: int
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    span: int = 14
    stride: int = 3
    gt_forcing_start: float = 0.6
    gt_forcing_prob: float = 0.5
    save_every: int = 500
    device: str = "cpu"
    amp: bool = True
    workers: int = 0
    logdir: str | None = None
    init: str | None = None
    stop_at: int | None = None
    max_minutes: float | None = None
    forcing: ForcingOptions = field(default_factory=ForcingOptions)
    curriculum: ConditionCurriculum = field(default_factory=ConditionCurriculum)
    train_only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps}, {self.batch_size}")
        if self.span < 2:
            raise ValueError(f"span must be >= 2 (reference + one generated frame), got {self.span}")
        if not 0.0 <= self.gt_forcing_start <= 1.0 or not 0.0 <= self.gt_forcing_prob <= 1.0:
            raise ValueError("gt_forcing_start and gt_forcing_prob must lie in [0, 1]")


def state_path(out: str | os.PathLike[str]) -> Path:
    """Where the resumable state of a run writing ``out`` lives."""
    return Path(f"{os.fspath(out)}{STATE_SUFFIX}")


def trainable_parameters(model: torch.nn.Module, prefixes: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter outside ``prefixes`` (none frozen when empty); return the trained ones."""
    trained = []
    for name, parameter in model.named_parameters():
        train = not prefixes or name.startswith(prefixes)
        parameter.requires_grad_(train)
        if train:
            trained.append(parameter)
    if not trained:
        raise ValueError(f"train_only {list(prefixes)} matches no parameter of the model")
    log.info("training %d of %d parameter tensors", len(trained), len(list(model.parameters())))
    return trained


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of every random draw at ``step`` (a pure function of seed and step)."""
    return torch.Generator().manual_seed((seed * _STEP_SEED_MUL + step) % (1 << 63))


class Trainer:
    """Owns the model, EMA, optimizer and data of one run.

    Args:
        settings: the run's settings.
        config: model config.
    """

    def __init__(self, settings: TrainSettings, config: DiTConfig) -> None:
        require_single_frame_chunks(config)
        self.settings, self.config = settings, config
        self.device = torch.device(settings.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.model = CausalDiT(config)
        if settings.init:
            report = load_compatible(self.model, settings.init)
            log.info(
                "init from %s: %d missing, %d mismatched keys",
                settings.init,
                len(report.missing),
                len(report.mismatched),
            )
        self.model.to(self.device).train()
        self.trained = trainable_parameters(self.model, settings.train_only)
        self.ema = EMA(self.model, settings.ema_decay)
        self.optimizer = torch.optim.AdamW(
            self.trained, lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.99)
        )
        warmup = min(settings.warmup_steps, max(settings.steps // 10, 1))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, settings.steps, warmup)
        )
        self.data = open_datasets(settings.data, settings.span, settings.stride)
        check_resolution(self.data, config)
        self.step = 0

    # ------------------------------------------------------------------ state
    def save(self) -> None:
        """Write the EMA checkpoint (``out``) and the full resumable state next to it."""
        out = Path(self.settings.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.ema.state_for(self.model), out, self.config)
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "config": self.config.to_json(),
            "settings": repr(self.settings),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        tmp = state_path(out).with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, state_path(out))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a state file written by :meth:`save` (the config must match)."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        if DiTConfig.from_json(state["config"]) != self.config:  # parsed: new fields take defaults
            raise ValueError(f"resume: {path} was trained with a different model config")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.step = int(state["step"])
        log.info("resumed %s at step %d", path, self.step)

    # ------------------------------------------------------------------ loop
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.settings.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _loader(self, stop: int) -> DataLoader:
        s = self.settings
        sampler = StepBatchSampler(len(self.data), s.batch_size, s.seed, self.step, stop)
        return DataLoader(
            self.data,
            batch_sampler=sampler,
            num_workers=s.workers,
            collate_fn=collate_windows,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def train_step(self, batch: WindowBatch) -> StepResult:
        """One optimisation step at ``self.step``."""
        s = self.settings
        g = step_generator(s.seed, self.step)
        keep_prob = s.curriculum.keep_probability(self.step, s.steps)
        gt_phase = self.step >= s.gt_forcing_start * s.steps
        use_gt = gt_phase and float(torch.rand((), generator=g)) < s.gt_forcing_prob
        step_fn = ground_truth_forcing_step if use_gt else diffusion_forcing_step
        result = step_fn(self.model, batch, keep_prob, s.forcing, g, self._autocast())
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trained, s.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update(self.model)
        result.stats.update(
            gt_forcing=float(use_gt),
            keep_prob=keep_prob,
            grad_norm=float(grad_norm),
            lr=self.scheduler.get_last_lr()[0],
        )
        return result

    def run(self) -> dict[str, float]:
        """Train from ``self.step`` to ``steps`` (or ``stop_at``); returns a summary."""
        s = self.settings
        stop = min(s.steps, s.stop_at) if s.stop_at is not None else s.steps
        log.info(
            "training %s (%.2fM params) on %d windows from %s, steps %d..%d, batch %d, device %s",
            self.config.name,
            count_parameters(self.model) / 1e6,
            len(self.data),
            list(s.data),
            self.step,
            stop,
            s.batch_size,
            self.device,
        )
        writer = self._writer()
        start, losses = time.perf_counter(), []
        bar = tqdm(total=stop, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        try:
            for batch in self._loader(stop):
                result = self.train_step(batch.to(self.device))
                loss = float(result.loss.detach())
                losses.append(loss)
                if writer is not None:
                    writer.add_scalar(
                        "loss/" + ("gt_forcing" if result.stats["gt_forcing"] else "diffusion_forcing"),
                        loss,
                        self.step,
                    )
                    for key, value in result.stats.items():
                        writer.add_scalar(f"train/{key}", value, self.step)
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{result.stats['lr']:.2e}")
                if s.save_every and self.step % s.save_every == 0 and self.step < stop:
                    self.save()
                if s.max_minutes is not None and time.perf_counter() - start > 60.0 * s.max_minutes:
                    log.warning(
                        "time limit of %.1f min reached at step %d: stopping", s.max_minutes, self.step
                    )
                    break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        self.save()
        seconds = time.perf_counter() - start
        tail = losses[-max(len(losses) // 10, 1) :] if losses else [float("nan")]
        summary = {
            "step": self.step,
            "seconds": seconds,
            "steps_per_s": len(losses) / max(seconds, 1e-9),
            "final_loss": sum(tail) / len(tail),
        }
        log.info(
            "trained to step %d in %.1f s (%.2f steps/s), loss %.4f -> %s",
            self.step,
            seconds,
            summary["steps_per_s"],
            summary["final_loss"],
            s.out,
        )
        return summary

    def _writer(self):
        logdir = self.settings.logdir
        if logdir == "":
            return None
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(logdir or f"{self.settings.out}.tb")
        writer.add_text("settings", repr(dataclasses.asdict(self.settings)), self.step)
        return writer
