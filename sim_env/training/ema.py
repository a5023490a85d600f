"""Exponential moving average of model weights (the weights that get shipped)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Float32 shadow copy of every floating parameter and buffer of a model.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates,
    so early averages are not dominated by the random initialisation.

    Args:
        model: the model being trained.
        decay: the final decay per update.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {
            k: v.detach().float().clone() for k, v in model.state_dict().items() if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow weights towards the model's current ones."""
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for key, value in model.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value.detach().float(), 1.0 - decay)
        self.updates += 1

    def state_for(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the EMA weights substituted (for saving or evaluation)."""
        return {
            k: self.shadow[k].to(v.dtype) if k in self.shadow else v for k, v in model.state_dict().items()
        }

    def state_dict(self) -> dict:
        """Serialisable state (shadow weights, update count, decay)."""
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (tensors are moved to the current shadow's devices)."""
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)
