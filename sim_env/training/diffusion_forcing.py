"""Diffusion forcing on ground-truth clips laid out like the runtime's ST-cache.

One step: draw how many frames the runtime would have generated before the current one, lay
the recorded frames out in the cache slots (`layout.runtime_layout`), and give every frame its
own noise level — the reference anchor is always clean, the current frame is always noisy, and
each history frame is either clean with zero conditioning (what the runtime's clean cache pass
writes) or noisy with its own condition and its own loss (diffusion forcing: independent noise
per chunk, so the model also learns to work from imperfect history). The target is the
flow-matching velocity ε − x0 at t = 1000·σ, the convention of `sim_env.sampler`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from sim_env.memory.reference_pin import DEFAULT_MEMORY_CAPACITY
from sim_env.model.config import DiTConfig
from sim_env.model.dit import CausalDiT
from sim_env.sampler import NUM_TRAIN_TIMESTEPS
from sim_env.training.conditions import (
    clip_condition,
    clip_plucker,
    encode_clip,
    ground_truth_reprojections,
    hand_maps,
)
from sim_env.training.data import WindowBatch
from sim_env.training.layout import ClipLayout, runtime_layout
from sim_env.training.schedules import gaussian, sample_sigmas


@dataclass(frozen=True)
class ForcingOptions:
    """Knobs shared by diffusion forcing and ground-truth forcing.

    Attributes:
        max_history: most frames generated before the current one in a training clip.
        noisy_history_prob: probability that a history frame is noisy (diffusion forcing).
        sigma_shift: shift of the training noise-level distribution.
        rollout_frames: most frames ground-truth forcing generates before the supervised one.
        rollout_steps: sampler steps of those self-generated frames.
        memory_capacity: voxels of the point-cloud memory (the runtime's default; smaller for
            tiny test frames).
        depth_weight: loss weight of the depth channel relative to each colour channel. The
            log-depth code spans 0.05–100 m in [-1, 1], so an error of 0.1 there is ~45 %
            relative depth error; depth also feeds the memory and collisions, hence > 1.
    """

    max_history: int = 12
    noisy_history_prob: float = 0.25
    sigma_shift: float = 5.0
    rollout_frames: int = 3
    rollout_steps: int = 2
    memory_capacity: int = DEFAULT_MEMORY_CAPACITY
    depth_weight: float = 2.0


@dataclass
class StepResult:
    """Loss of one training step and what to log about it."""

    loss: torch.Tensor
    stats: dict[str, float]


def velocity_loss(
    model: CausalDiT,
    x0: torch.Tensor,
    noise: torch.Tensor,
    sigma: torch.Tensor,
    cond: torch.Tensor,
    plucker: torch.Tensor,
    layout: ClipLayout,
    autocast: AbstractContextManager,
    depth_weight: float = 1.0,
) -> torch.Tensor:
    """Channel-weighted MSE between predicted and true velocity ε − x0 over the noisy frames (σ > 0).

    Args:
        model: the DiT.
        x0: (B, C, F, H, W) clean clip.
        noise: ε, same shape.
        sigma: (B, F) noise level per frame; 0 marks clean history.
        cond: (B, cc, F, H, W) conditioning (already zero for history frames).
        plucker: (B, F, h, w, 6).
        layout: the clip's cache positions.
        autocast: mixed-precision context of the forward pass.
        depth_weight: weight of the last (depth) channel; colour channels weigh 1.
    """
    s = sigma[:, None, :, None, None]
    x_t = (1.0 - s) * x0 + s * noise
    with autocast:
        v = model(
            x_t,
            NUM_TRAIN_TIMESTEPS * sigma,
            cond,
            plucker,
            frame_positions=layout.position_tensor(x0.device),
        )
    channel_weight = torch.ones(x0.shape[1], device=x0.device)
    channel_weight[-1] = depth_weight
    channel_weight = channel_weight / channel_weight.mean()  # keeps the loss scale comparable
    sq = (v.float() - (noise - x0)).square().mean(dim=(3, 4))  # (B, C, F)
    err = (sq * channel_weight[None, :, None]).mean(dim=1)  # (B, F)
    weight = (sigma > 0).float()
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def mask_explicit_anchor(cond: torch.Tensor, keep: torch.Tensor, config: DiTConfig) -> torch.Tensor:
    """Zero the anchor's channels of clips where ``keep`` (B,) is False.

    Those are the reprojection, its validity and (``anchor_gate_reference``) its provenance; the
    hand skeleton is an action and stays.
    """
    c = config.out_channels
    scale = keep.to(cond.dtype)[:, None, None, None, None]
    parts = [cond[:, : c + 1] * scale, cond[:, c + 1 : config.trunk_condition_channels]]
    if config.anchor_gate_reference:
        parts.append(cond[:, config.trunk_condition_channels :] * scale)
    return torch.cat(parts, dim=1)


def diffusion_forcing_step(
    model: CausalDiT,
    batch: WindowBatch,
    keep_prob: float,
    options: ForcingOptions,
    generator: torch.Generator,
    autocast: AbstractContextManager,
) -> StepResult:
    """Loss of one diffusion-forcing step on a batch of recorded windows.

    Args:
        model: the DiT (its config gives the cache layout and frame size).
        batch: recorded windows on the training device (at least 2 frames).
        keep_prob: probability that a clip sees the explicit anchor (`ConditionCurriculum`).
        options: forcing options.
        generator: CPU generator of every random draw of this step (resumable runs).
        autocast: mixed-precision context of the forward pass.
    """
    cfg, dev = model.config, batch.rgb.device
    span = batch.rgb.shape[1]
    max_history = min(options.max_history, span - 2)
    history = int(torch.randint(0, max_history + 1, (1,), generator=generator))
    layout = runtime_layout(cfg, history, generator)
    clip = batch.frames(layout.current + 1)
    r_rgb, r_depth, r_mask = ground_truth_reprojections(
        clip.rgb, clip.depth, clip.K, clip.pose, cfg, options.memory_capacity, clip.reference_hands()
    )
    idx = torch.tensor(layout.frame_indices, device=dev)
    hands = hand_maps(clip.hand_keypoints[:, idx], clip.has_hands, clip.K[:, idx], cfg)
    cond = clip_condition(r_rgb[:, idx], r_depth[:, idx], r_mask[:, idx], hands, cfg)
    x0 = encode_clip(clip.rgb[:, idx], clip.depth[:, idx])
    plucker = clip_plucker(clip.K[:, idx], clip.pose[:, idx], cfg)

    b, f = x0.shape[0], layout.frames
    noisy = torch.rand(b, f, generator=generator) < options.noisy_history_prob
    noisy[:, 0], noisy[:, -1] = False, True
    sigma = (sample_sigmas((b, f), options.sigma_shift, generator) * noisy).to(dev)
    noise = gaussian(tuple(x0.shape), generator, dev)
    keep = (torch.rand(b, generator=generator) < keep_prob).to(dev)
    cond = mask_explicit_anchor(cond, keep, cfg) * noisy.to(dev)[:, None, :, None, None]
    loss = velocity_loss(model, x0, noise, sigma, cond, plucker, layout, autocast, options.depth_weight)
    stats = {"history": float(history), "anchor_kept": float(keep.float().mean())}
    return StepResult(loss, stats)
