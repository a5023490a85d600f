"""Ground-truth forcing: supervise frames generated from the model's OWN history (ARCHITECTURE §7).

Diffusion forcing always conditions on ground truth; at inference the history is the model's
own output and the point-cloud memory holds its own RGB-D. Here the model first rolls out a
few frames along the recorded camera path exactly as the runtime would — few-step sampler,
memory of generated frames rendered into each new camera, cache layout of `runtime_layout` —
without gradients; then the next frame is noised from the GROUND TRUTH at its pose and
supervised with the generated frames as clean history. Only that last chunk is back-propagated
(chunk-wise backprop: memory stays at one chunk however long the rollout).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from sim_env.conditioning import decode_frame, encode_frame
from sim_env.model.dit import CausalDiT
from sim_env.sampler import NUM_TRAIN_TIMESTEPS, FlowSampler, FlowSchedule
from sim_env.training.conditions import Reprojection, clip_condition, clip_plucker, hand_maps
from sim_env.training.data import WindowBatch
from sim_env.training.diffusion_forcing import (
    ForcingOptions,
    StepResult,
    mask_explicit_anchor,
    velocity_loss,
)
from sim_env.training.layout import ClipLayout, runtime_layout
from sim_env.training.schedules import gaussian, sample_sigmas


def _frame_condition(memory: Reprojection, batch: WindowBatch, index: int, model: CausalDiT) -> torch.Tensor:
    """Condition (B, cc, H, W) of recorded frame ``index`` from the memory as it is now."""
    cfg = model.config
    r_rgb, r_depth, r_mask = memory.render(batch.K[:, index], batch.pose[:, index])
    hands = hand_maps(
        batch.hand_keypoints[:, index : index + 1], batch.has_hands, batch.K[:, index : index + 1], cfg
    )
    return clip_condition(r_rgb[:, None], r_depth[:, None], r_mask[:, None], hands, cfg)[:, :, 0]


def _clip_inputs(
    frames: list[torch.Tensor],
    target_cond: torch.Tensor,
    batch: WindowBatch,
    layout: ClipLayout,
    model: CausalDiT,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """History frames of ``layout`` (from ``frames``), zero-conditioned, plus the target's condition."""
    history = torch.stack([frames[i] for i in layout.frame_indices[:-1]], dim=2)  # (B, C, F-1, H, W)
    cond = torch.zeros(
        history.shape[0], target_cond.shape[1], layout.frames, *history.shape[3:], device=history.device
    )
    cond[:, :, -1] = target_cond
    idx = torch.tensor(layout.frame_indices, device=history.device)
    plucker = clip_plucker(batch.K[:, idx], batch.pose[:, idx], model.config)
    return history, cond, plucker


@torch.no_grad()
def _generate(
    model: CausalDiT,
    history: torch.Tensor,
    cond: torch.Tensor,
    plucker: torch.Tensor,
    layout: ClipLayout,
    sampler_schedule: FlowSchedule,
    noise: torch.Tensor,
    autocast: AbstractContextManager,
) -> torch.Tensor:
    """Sample the last clip frame (B, C, H, W) given clean history, as the runtime's sampler does."""
    positions = layout.position_tensor(history.device)

    def velocity(x: torch.Tensor, sigma: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        with autocast:
            v = model(x.transpose(1, 2), NUM_TRAIN_TIMESTEPS * sigma, c, plucker, frame_positions=positions)
        return v.float().transpose(1, 2)

    b, f = history.shape[0], layout.frames
    context = torch.cat([history, torch.zeros_like(history[:, :, :1])], dim=2).transpose(1, 2)
    start = torch.cat([torch.zeros_like(history), noise[:, :, None]], dim=2).transpose(1, 2)
    noisy = torch.zeros(b, f, dtype=torch.bool, device=history.device)
    noisy[:, -1] = True
    sampler = FlowSampler(velocity, sampler_schedule, device=history.device)
    return sampler.sample(start, cond, context=context, noisy=noisy)[:, -1]


def ground_truth_forcing_step(
    model: CausalDiT,
    batch: WindowBatch,
    keep_prob: float,
    options: ForcingOptions,
    generator: torch.Generator,
    autocast: AbstractContextManager,
    schedule_shift: float = 5.0,
) -> StepResult:
    """Loss of one ground-truth-forcing step: roll out k frames, supervise frame k + 1.

    Args:
        model: the DiT.
        batch: recorded windows on the training device.
        keep_prob: probability that the SUPERVISED frame sees the explicit anchor (rollout frames
            always do, as at inference).
        options: forcing options (rollout length and sampler steps).
        generator: CPU generator of every random draw of this step.
        autocast: mixed-precision context.
        schedule_shift: shift of the rollout sampler's schedule (the runtime's).
    """
    cfg, dev = model.config, batch.rgb.device
    span = batch.rgb.shape[1]
    rollout = int(
        torch.randint(1, max(min(options.rollout_frames, span - 2), 1) + 1, (1,), generator=generator)
    )
    schedule = FlowSchedule.uniform(options.rollout_steps, shift=schedule_shift)
    b = batch.rgb.shape[0]
    memory = Reprojection(b, cfg, dev, options.memory_capacity)
    memory.insert(
        batch.rgb[:, 0], batch.depth[:, 0], batch.K[:, 0], batch.pose[:, 0], batch.reference_hands(), True
    )
    frames = [encode_frame(batch.rgb[:, 0], batch.depth[:, 0])]
    was_training = model.training
    model.eval()
    for j in range(1, rollout + 1):
        layout = runtime_layout(cfg, j - 1, generator)
        target_cond = _frame_condition(memory, batch, j, model)
        history, cond, plucker = _clip_inputs(frames, target_cond, batch, layout, model)
        noise = gaussian(tuple(frames[0].shape), generator, dev)
        x = _generate(model, history, cond, plucker, layout, schedule, noise, autocast)
        rgb, depth = decode_frame(x)
        memory.insert(rgb, depth, batch.K[:, j], batch.pose[:, j])
        frames.append(x)
    model.train(was_training)

    target = rollout + 1
    layout = runtime_layout(cfg, rollout, generator)
    target_cond = _frame_condition(memory, batch, target, model)
    history, cond, plucker = _clip_inputs(frames, target_cond, batch, layout, model)
    x_target = encode_frame(batch.rgb[:, target], batch.depth[:, target])
    x0 = torch.cat([history, x_target[:, :, None]], dim=2)
    sigma = torch.zeros(b, layout.frames)
    sigma[:, -1] = sample_sigmas((b,), options.sigma_shift, generator)
    noise = gaussian(tuple(x0.shape), generator, dev)
    keep = (torch.rand(b, generator=generator) < keep_prob).to(dev)
    cond = mask_explicit_anchor(cond, keep, cfg)
    loss = velocity_loss(
        model, x0, noise, sigma.to(dev), cond, plucker, layout, autocast, options.depth_weight
    )
    return StepResult(loss, {"history": float(rollout), "anchor_kept": float(keep.float().mean())})
