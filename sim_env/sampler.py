"""Few-step flow-matching sampler with per-frame noise levels and a clean cache pass.

Sign convention (rectified flow, as in Wan2.1 / SD3 / Self-Forcing)::

    x_σ = (1 − σ)·x0 + σ·ε,      σ ∈ [0, 1],  σ = 1 is pure noise
    v   = dx_σ/dσ = ε − x0       (what ``model_fn`` predicts)

so one Euler step from σ to the next (smaller) σ' is ``x_σ' = x_σ + (σ' − σ)·v``; with σ' < σ the
step moves *against* the velocity, towards the data. If ``v`` is the exact velocity of a straight
path, the Euler step is exact for any step size, which is why few-step distilled generators
(DMD / Self-Forcing / InSpatio-WorldFM) can sample in 2–4 steps.

Timesteps on the usual 1000 scale are ``t = 1000·σ``; the model adapter decides how it embeds
``sigma`` (the Wan2.1 DiT embeds ``t``). Schedules are warped with the Wan/SD3 shift
``σ' = s·σ / (1 + (s − 1)·σ)``, which spends more steps at high noise for s > 1.

Per-frame noise levels: ``sigma`` handed to ``model_fn`` has shape (B, T). Frames outside the
``noisy`` mask (history / context frames of a causal chunk) sit at σ = 0 throughout and are left
bit-for-bit untouched, while the current chunk walks down the schedule.

After the last step the optional ``cache_pass`` is called once with the clean sample at σ = 0,
so the causal KV cache is written from clean frames rather than from the last noisy input
(Self-Forcing's "clean context" rule); its result is not used by the sampler.

Everything inside :meth:`FlowSampler.sample` is device-side: the σ table is a tensor built at
construction, the step loop is a Python ``range`` over a static count, nothing calls ``.item()``,
and all shapes are fixed, so the loop can be captured in a CUDA graph or ``torch.compile``-d.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

#: Number of discrete training timesteps that ``t`` values refer to (Wan2.1, SD3).
NUM_TRAIN_TIMESTEPS = 1000
#: WorldFM's best intermediate timestep for 2-step sampling (InSpatio-WorldFM §2.5).
WORLDFM_T_MID = 200
#: Default shift of the Wan2.1 flow-matching schedule at 480p.
WAN_DEFAULT_SHIFT = 5.0

ModelFn = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
"""``model_fn(x, sigma, cond) -> v``: x (B, T, ...), sigma (B, T), returns v shaped like x."""
CachePassFn = Callable[[torch.Tensor, torch.Tensor, Any], object]
"""``cache_pass(x_clean, sigma_zero, cond)``: writes the KV cache; its return value is ignored."""

SamplerMode = Literal["euler", "renoise"]


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """Warp noise levels with the Wan/SD3 time shift ``σ' = s·σ / (1 + (s − 1)·σ)``.

    The map fixes 0 and 1 and is monotone increasing for s > 0, so a descending schedule stays
    descending; s = 1 is the identity (a linear schedule stays linear).

    Args:
        sigma: noise levels in [0, 1].
        shift: the shift s (> 0).

    Returns:
        The shifted noise levels, same shape and dtype.
    """
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


@dataclass(frozen=True)
class FlowSchedule:
    """A descending list of noise levels σ_0 > σ_1 > … > σ_N = 0 (N sampling steps).

    Attributes:
        sigmas: the N + 1 noise levels, starting at the initial level and ending at 0.
    """

    sigmas: tuple[float, ...]

    def __post_init__(self) -> None:
        """Validate on the host once, so the sampler never has to check anything per step."""
        s = self.sigmas
        if len(s) < 2:
            raise ValueError("a schedule needs at least one step (two sigmas)")
        if s[-1] != 0.0:
            raise ValueError(f"the schedule must end at sigma = 0, got {s[-1]}")
        if not all(0.0 <= v <= 1.0 for v in s):
            raise ValueError(f"sigmas must lie in [0, 1], got {s}")
        if not all(a > b for a, b in itertools.pairwise(s)):
            raise ValueError(f"sigmas must be strictly decreasing, got {s}")

    @property
    def num_steps(self) -> int:
        """Number of model evaluations (excluding the cache pass)."""
        return len(self.sigmas) - 1

    @property
    def timesteps(self) -> tuple[float, ...]:
        """The noise levels on the 1000-step training scale (``t = 1000·σ``)."""
        return tuple(NUM_TRAIN_TIMESTEPS * v for v in self.sigmas)

    @classmethod
    def uniform(cls, num_steps: int, shift: float = 1.0, sigma_max: float = 1.0) -> FlowSchedule:
        """Evenly spaced σ from ``sigma_max`` to 0, then warped by ``shift``.

        Args:
            num_steps: number of sampling steps (≥ 1).
            shift: Wan/SD3 shift; 1 keeps the schedule linear.
            sigma_max: starting noise level (1 = pure noise).

        Returns:
            The schedule.
        """
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        base = torch.linspace(sigma_max, 0.0, num_steps + 1, dtype=torch.float64)
        return cls(tuple(float(v) for v in shift_sigma(base, shift)))

    @classmethod
    def from_timesteps(
        cls,
        timesteps: Sequence[float],
        shift: float = 1.0,
        num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
    ) -> FlowSchedule:
        """An explicit list of timesteps on the training scale; 0 is appended if missing.

        ``from_timesteps([1000, 200])`` is WorldFM's 2-step schedule (T → t_mid = 200 → 0). With
        ``shift`` ≠ 1 each ``t / num_train_timesteps`` is warped like Self-Forcing's
        ``warp_denoising_step`` does, i.e. the listed values are positions on the unshifted scale.

        Args:
            timesteps: descending timesteps, e.g. ``(1000, 750, 500, 250)``.
            shift: Wan/SD3 shift applied to ``t / num_train_timesteps``.
            num_train_timesteps: the scale the timesteps are given on.

        Returns:
            The schedule.
        """
        ts = [float(t) for t in timesteps]
        if not ts or ts[-1] != 0.0:
            ts.append(0.0)
        base = torch.tensor(ts, dtype=torch.float64) / num_train_timesteps
        return cls(tuple(float(v) for v in shift_sigma(base, shift)))

    @classmethod
    def worldfm_two_step(cls, t_mid: float = WORLDFM_T_MID) -> FlowSchedule:
        """InSpatio-WorldFM's distilled 2-step schedule: σ = 1 → t_mid/1000 → 0."""
        return cls.from_timesteps([NUM_TRAIN_TIMESTEPS, t_mid])


class FlowSampler:
    """Few-step flow-matching sampler over (B, T, ...) clips with per-frame noise levels.

    Two update rules are offered:

    - ``"euler"`` (default): ``x ← x + (σ' − σ)·v``; deterministic given the initial noise.
    - ``"renoise"``: predict ``x0 = x − σ·v`` and restart at σ' with *fresh* noise,
      ``x ← (1 − σ')·x0 + σ'·ε'`` (the DMD / Self-Forcing few-step inference rule);
      deterministic given the ``torch.Generator`` passed to :meth:`sample`.

    Args:
        model_fn: ``model_fn(x, sigma, cond) -> v`` (see :data:`ModelFn`).
        schedule: the noise levels to walk through.
        mode: the update rule.
        device: where the σ table lives (the sampler moves it once if the noise is elsewhere).
        dtype: dtype of the σ table handed to ``model_fn``.
    """

    def __init__(
        self,
        model_fn: ModelFn,
        schedule: FlowSchedule,
        mode: SamplerMode = "euler",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if mode not in ("euler", "renoise"):
            raise ValueError(f"unknown sampler mode {mode!r}")
        self.model_fn = model_fn
        self.schedule = schedule
        self.mode: SamplerMode = mode
        # Precomputed once: indexing this with a Python int inside the loop is a device-side view.
        self.sigmas = torch.tensor(schedule.sigmas, dtype=dtype, device=device)

    @property
    def num_steps(self) -> int:
        """Number of model evaluations per :meth:`sample` call (excluding the cache pass)."""
        return self.schedule.num_steps

    @staticmethod
    def make_noise(
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Standard normal noise from ``generator`` (use one per world for batch invariance)."""
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)

    def _sigmas_on(self, device: torch.device) -> torch.Tensor:
        if self.sigmas.device != device:
            self.sigmas = self.sigmas.to(device)
        return self.sigmas

    def sample(
        self,
        noise: torch.Tensor,
        cond: Any = None,
        cache_pass: CachePassFn | None = None,
        *,
        context: torch.Tensor | None = None,
        noisy: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoise ``noise`` down the schedule; optionally run the clean cache pass.

        Args:
            noise: (B, T, ...) the initial state at σ_0 for the noisy frames (for σ_0 = 1 this is
                pure Gaussian noise).
            cond: passed through to ``model_fn`` and ``cache_pass`` untouched.
            cache_pass: called once after sampling as ``cache_pass(x0, zeros(B, T), cond)``.
            context: (B, T, ...) clean frames used wherever ``noisy`` is False (history frames);
                defaults to ``noise`` itself there.
            noisy: (B, T) bool, which frames are generated; the others stay at σ = 0 and are never
                modified. Default: all frames.
            generator: source of the fresh noise in ``"renoise"`` mode.

        Returns:
            (B, T, ...) the clean sample (history frames equal ``context`` exactly).

        Gradient mode is the caller's: wrap in ``torch.inference_mode()`` for rollouts, or keep
        autograd on to train through the last step(s) as Self-Forcing does.
        """
        if noise.ndim < 2:
            raise ValueError(f"noise must be (B, T, ...), got shape {tuple(noise.shape)}")
        b, t = noise.shape[:2]
        sigmas = self._sigmas_on(noise.device).to(noise.dtype)
        if noisy is None:
            noisy = torch.ones(b, t, dtype=torch.bool, device=noise.device)
        extra = (1,) * (noise.ndim - 2)
        frame_noisy = noisy.reshape(b, t, *extra)
        frame_scale = noisy.to(noise.dtype)  # (B, T): 1 for generated frames, 0 for history
        x = noise if context is None else torch.where(frame_noisy, noise, context)
        clean = x  # history frames are taken from here at every step, so they never drift

        for k in range(self.num_steps):
            sigma = sigmas[k] * frame_scale
            sigma_next = sigmas[k + 1] * frame_scale
            v = self.model_fn(x, sigma, cond)
            if self.mode == "euler":
                x_next = x + (sigma_next - sigma).reshape(b, t, *extra) * v
            else:
                x0 = x - sigma.reshape(b, t, *extra) * v
                fresh = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                s_next = sigma_next.reshape(b, t, *extra)
                x_next = (1.0 - s_next) * x0 + s_next * fresh
            x = torch.where(frame_noisy, x_next, clean)

        if cache_pass is not None:
            cache_pass(x, torch.zeros(b, t, dtype=noise.dtype, device=noise.device), cond)
        return x
