"""Step-dependent training schedules: noise levels, condition curriculum and learning rate.

Condition curriculum (InSpatio-WorldFM §2.4.1): early on the explicit anchor — the reprojected
point-cloud render and its validity mask — is withheld, so the model must learn to pull content
from the implicit memory (the reference and history frames in attention); the anchor is then
introduced gradually ("progressive condition injection") and, once fully in, still masked at
random with a small probability ("random anchor masking") so that the implicit pathway keeps
being used. The hand-skeleton channel is an action, not an anchor, and is never masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sim_env.sampler import shift_sigma


@dataclass(frozen=True)
class ConditionCurriculum:
    """Probability that a training clip sees its explicit anchor, as a function of progress.

    Attributes:
        injection_start: fraction of training with the anchor always withheld.
        injection_end: fraction at which the anchor is fully introduced (linear ramp between).
        anchor_mask_prob: probability of masking the anchor after the ramp.
    """

    injection_start: float = 0.05
    injection_end: float = 0.25
    anchor_mask_prob: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.injection_start <= self.injection_end <= 1.0:
            raise ValueError(
                "condition curriculum: need 0 <= injection_start <= injection_end <= 1, got "
                f"{self.injection_start}, {self.injection_end}"
            )
        if not 0.0 <= self.anchor_mask_prob < 1.0:
            raise ValueError(f"anchor_mask_prob must be in [0, 1), got {self.anchor_mask_prob}")

    def keep_probability(self, step: int, total_steps: int) -> float:
        """Probability of keeping the explicit anchor at ``step`` of ``total_steps``."""
        progress = step / max(total_steps, 1)
        full = 1.0 - self.anchor_mask_prob
        if progress < self.injection_start:
            return 0.0
        if progress >= self.injection_end:
            return full
        return full * (progress - self.injection_start) / (self.injection_end - self.injection_start)


def sample_sigmas(shape: tuple[int, ...], shift: float, generator: torch.Generator) -> torch.Tensor:
    """Training noise levels σ = shift(u), u ~ U(0, 1): the sampler's shifted schedule, spread out.

    With the inference shift (Wan/Self-Forcing, 5) most samples land at high noise, where the
    few-step sampler spends its steps.
    """
    return shift_sigma(torch.rand(shape, generator=generator), shift)


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator | None:
    """A generator on ``device`` seeded from the step's CPU generator (None on the CPU: use it directly).

    Large noise tensors are drawn where they are used instead of on the host and copied, while
    staying a pure function of the step's seed (resumable runs).
    """
    if device.type == "cpu":
        return None
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def gaussian(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn from (a child of) ``generator``."""
    child = device_generator(generator, device)
    if child is None:
        return torch.randn(shape, generator=generator)
    return torch.randn(shape, generator=child, device=device)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, final_fraction: float = 0.1) -> float:
    """LR multiplier: linear warmup, then cosine decay to ``final_fraction`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
