"""Condition curriculum, noise levels, LR schedule, EMA and the deterministic batch order."""

from __future__ import annotations

import pytest
import torch

from sim_env.training.data import StepBatchSampler
from sim_env.training.ema import EMA
from sim_env.training.schedules import ConditionCurriculum, sample_sigmas, warmup_cosine


def test_progressive_injection_then_random_anchor_masking() -> None:
    c = ConditionCurriculum(injection_start=0.1, injection_end=0.3, anchor_mask_prob=0.2)
    assert c.keep_probability(0, 100) == 0.0
    assert c.keep_probability(9, 100) == 0.0
    assert c.keep_probability(20, 100) == pytest.approx(0.4)  # halfway up the ramp to 0.8
    assert c.keep_probability(30, 100) == pytest.approx(0.8)
    assert c.keep_probability(99, 100) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="injection_start"):
        ConditionCurriculum(injection_start=0.5, injection_end=0.2)


def test_sigmas_follow_the_shifted_schedule() -> None:
    s = sample_sigmas((20000,), 5.0, torch.Generator().manual_seed(0))
    assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0
    # shift 5 maps u = 0.25 to 0.625: a quarter of the samples lies below 0.625
    assert float((s < 0.625).float().mean()) == pytest.approx(0.25, abs=0.02)


def test_warmup_cosine() -> None:
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.1)


def test_ema_moves_towards_the_weights() -> None:
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    before = ema.shadow["weight"].clone()
    ema.update(model)  # first update uses min(0.5, 1/10) = 0.1: nearly a copy
    torch.testing.assert_close(ema.shadow["weight"], 0.1 * before + 0.9)


def test_batches_are_a_function_of_the_step() -> None:
    full = list(StepBatchSampler(10, 3, seed=7, start_step=0, total_steps=8))
    resumed = list(StepBatchSampler(10, 3, seed=7, start_step=5, total_steps=8))
    assert resumed == full[5:]
    first_epoch = [i for batch in full[:3] for i in batch] + full[3][:1]
    assert sorted(first_epoch) == list(range(10))  # every window once per epoch
