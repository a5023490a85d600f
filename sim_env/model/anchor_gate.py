"""The anchor gate's arithmetic: blend toward the reprojected anchor, fill it, open it fully.

`sim_env.model.dit` describes the gate: the head predicts a per-pixel logit g, and the clean
estimate becomes y + sigmoid(g)·m·(a − y) with the synthesis y, the anchor a and its validity m
(`anchor_blend`). With ``anchor_gate_fill`` the anchor is first hole-filled (`fill_anchor_holes`).
The runtime's ``reference_passthrough`` sets g to +∞ where the pinned reference lands and over
the small gaps of its splat (`reference_with_gaps`), and with ``reference_surfels`` wherever the
reference's surfels show (`open_passthrough`); channels the gate does not blend (depth) are
copied there by the same velocity rewrite (`copy_ungated`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim_env.memory.reference_surfels import closing
from sim_env.sampler import NUM_TRAIN_TIMESTEPS

# Smallest σ the gate's velocity divides by: below it the blend is no longer exact, but the
# sampler never evaluates there and the loss sees few such draws (σ is shifted toward 1).
GATE_MIN_SIGMA = 0.02
# Radius of the closing by which ``reference_passthrough`` marks the gaps of the reference's own
# splat: a surface approached to a fifth of its reference depth splats one pixel in five, and
# gaps of up to four pixels close; wider holes stay the model's.
PASSTHROUGH_GAP_SWEEPS = 2


def anchor_blend(
    x: torch.Tensor,
    t: torch.Tensor,
    velocity: torch.Tensor,
    anchor: torch.Tensor,
    validity: torch.Tensor,
    gate_logit: torch.Tensor,
) -> torch.Tensor:
    """The velocity whose clean estimate is pulled toward the anchor by the gate (float32).

    Args:
        x: (B, C, F, H, W) noisy input x_σ.
        t: (B, F) timesteps (1000·σ).
        velocity: (B, C, F, H, W) the head's velocity v̂ (synthesis estimate y = x_σ − σ·v̂).
        anchor: (B, C, F, H, W) reprojected anchor a, in the same encoding as x.
        validity: (B, 1, F, H, W) anchor validity m in [0, 1] (0 where masked or empty).
        gate_logit: (B, 1, F, H, W) gate logit g.

    Returns:
        v̂ − w·(a − y)/σ with w = sigmoid(g)·m, so that x_σ − σ·result = y + w·(a − y).
    """
    sigma = (t.float() / NUM_TRAIN_TIMESTEPS)[:, None, :, None, None]
    v = velocity.float()
    synthesis = x.float() - sigma * v
    weight = torch.sigmoid(gate_logit.float()) * validity.float()
    return v - weight * (anchor.float() - synthesis) / sigma.clamp_min(GATE_MIN_SIGMA)


def fill_anchor_holes(
    anchor: torch.Tensor, validity: torch.Tensor, sweeps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow the anchor into its holes, one pixel ring per sweep (static shapes, no host sync).

    Args:
        anchor: (B, C, F, H, W) reprojected anchor.
        validity: (B, 1, F, H, W) its validity (> 0.5 = known).
        sweeps: how many rings to grow.

    Returns:
        The filled anchor and its validity (1 where known or filled, else 0), same shapes. Known
        pixels keep their values; a pixel filled in sweep s takes the mean of its known 3×3
        neighbours after sweep s − 1.
    """
    b, c, f, h, w = anchor.shape
    values = anchor.float().transpose(1, 2).reshape(b * f, c, h, w)
    known = (validity.float() > 0.5).transpose(1, 2).reshape(b * f, 1, h, w).float()
    for _ in range(sweeps):
        total = F.avg_pool2d(values * known, 3, stride=1, padding=1, divisor_override=1)
        count = F.avg_pool2d(known, 3, stride=1, padding=1, divisor_override=1)
        grow = (known == 0) & (count > 0)
        values = torch.where(grow, total / count.clamp_min(1.0), values)
        known = torch.where(grow, 1.0, known)

    def back(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(b, f, -1, h, w).transpose(1, 2)

    return back(values).to(anchor.dtype), back(known).to(validity.dtype)


def reference_with_gaps(reference: torch.Tensor, validity: torch.Tensor, sweeps: int) -> torch.Tensor:
    """The reference's mark closed over the small gaps of its own splat.

    Single-pixel splats of a surface seen nearer than from the reference leave gaps between the
    reference's own pixels; the passthrough copies those too. A morphological closing (dilate,
    then erode, by ``sweeps`` pixels) marks holes narrower than 2·``sweeps`` + 1 pixels that
    reference pixels surround, but not the rim of a wide hole (a window without depth, a
    disocclusion): growing into those would paint the surrounding wall over them. Pixels drawn by
    the model keep their mark of 0.

    Args:
        reference: (B, 1, F, H, W) provenance, 1 on splatted reference pixels.
        validity: (B, 1, F, H, W) the splat's validity before any hole filling.
        sweeps: the closing's radius in pixels.

    Returns:
        (B, 1, F, H, W) bool, True where the anchor is copied.
    """
    b, _, f, h, w = reference.shape
    known = (validity > 0.5).transpose(1, 2).reshape(b * f, 1, h, w)
    marked = (reference > 0.5).transpose(1, 2).reshape(b * f, 1, h, w) & known
    copied = closing(marked[:, 0], sweeps)[:, None] & (marked | ~known)
    return copied.reshape(b, f, 1, h, w).transpose(1, 2)


def open_passthrough(
    anchor: torch.Tensor,
    validity: torch.Tensor,
    splatted: torch.Tensor,
    reference: torch.Tensor,
    gate_logit: torch.Tensor,
    allowed: torch.Tensor | None,
    surfels: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Open the gate fully where the pinned reference is copied (``reference_passthrough``).

    Args:
        anchor: (B, G, F, H, W) the gated channels' anchor (hole-filled with ``anchor_gate_fill``).
        validity: (B, 1, F, H, W) its validity.
        splatted: (B, 1, F, H, W) the splat's validity before any hole filling.
        reference: (B, 1, F, H, W) provenance, 1 on splatted reference pixels.
        gate_logit: (B, 1, F, H, W) gate logits.
        allowed: bool, broadcastable to (B, 1, F, H, W): where copying is allowed (None: all).
        surfels: optional (shown, values) of `sim_env.memory.reference_surfels`, values holding
            the G gated channels and possibly more (depth), in the model's encoding.

    Returns:
        The anchor, validity and gate logits to blend with, and (shown, values) of the channels
        past G that are copied too (None when the surfels hold none).
    """
    copied = reference_with_gaps(reference, splatted, PASSTHROUGH_GAP_SWEEPS)
    beyond = None
    gated = anchor.shape[1]
    if surfels is not None:
        shown, values = surfels
        if allowed is not None:
            shown = shown & allowed
        # The closing's holes keep the filled anchor's colour (a mean of their neighbours).
        holes = copied & (splatted <= 0.5)
        anchor = torch.where(shown & ~holes, values[:, :gated].to(anchor.dtype), anchor)
        validity = torch.where(shown, torch.ones_like(validity), validity)
        copied = copied | shown
        if values.shape[1] > gated:
            beyond = (shown, values[:, gated:])
    if allowed is not None:
        copied = copied & allowed
    return anchor, validity, gate_logit.masked_fill(copied, float("inf")), beyond


def copy_ungated(
    x: torch.Tensor, t: torch.Tensor, velocity: torch.Tensor, shown: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """The velocity of the ungated channels with the first K set to copy ``values`` where ``shown``.

    Args:
        x: (B, C', F, H, W) noisy input of the ungated channels.
        t: (B, F) timesteps on the 1000 scale.
        velocity: (B, C', F, H, W) their predicted velocity (float32).
        shown: bool, broadcastable to (B, 1, F, H, W).
        values: (B, K, F or 1, H, W) clean values of the first K ≤ C' channels.

    Returns:
        ``velocity`` with (x_σ − value)/σ where shown, so that x_σ − σ·v is the value there.
    """
    sigma = (t.float() / NUM_TRAIN_TIMESTEPS)[:, None, :, None, None].clamp_min(GATE_MIN_SIGMA)
    k = values.shape[1]
    copy = (x[:, :k].float() - values.float()) / sigma
    return torch.cat([torch.where(shown, copy, velocity[:, :k]), velocity[:, k:]], dim=1)
