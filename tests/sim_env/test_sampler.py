"""Few-step flow-matching sampler: schedule shape, exactness on straight paths, per-frame sigmas."""

from __future__ import annotations

import itertools

import pytest
import torch

from sim_env.sampler import FlowSampler, FlowSchedule, shift_sigma

SHAPE = (2, 5, 3, 4, 4)  # (B, T, C, H, W)


def test_uniform_schedule_is_monotone_and_ends_at_zero() -> None:
    for shift in (1.0, 3.0, 5.0, 0.5):
        sigmas = FlowSchedule.uniform(4, shift=shift).sigmas
        assert len(sigmas) == 5
        assert sigmas[0] == pytest.approx(1.0) and sigmas[-1] == 0.0
        assert all(a > b for a, b in itertools.pairwise(sigmas))


def test_shift_one_is_linear_and_larger_shift_keeps_more_noise() -> None:
    assert FlowSchedule.uniform(4, shift=1.0).sigmas == pytest.approx((1.0, 0.75, 0.5, 0.25, 0.0))
    base = FlowSchedule.uniform(4, shift=1.0).sigmas
    shifted = FlowSchedule.uniform(4, shift=5.0).sigmas
    assert all(s > b for s, b in zip(shifted[1:-1], base[1:-1], strict=True))
    sigma = torch.linspace(0, 1, 11)
    assert torch.allclose(shift_sigma(sigma, 1.0), sigma)
    assert shift_sigma(torch.tensor(0.5), 3.0).item() == pytest.approx(0.75)  # 3·0.5 / (1 + 2·0.5)


def test_explicit_timesteps_worldfm_two_step() -> None:
    sched = FlowSchedule.worldfm_two_step()
    assert sched.sigmas == pytest.approx((1.0, 0.2, 0.0))
    assert sched.num_steps == 2
    assert sched.timesteps == pytest.approx((1000.0, 200.0, 0.0))
    with pytest.raises(ValueError):
        FlowSchedule((0.5, 0.8, 0.0))


def _straight_path_model(x0: torch.Tensor):
    """Exact velocity of the straight path through (x, σ) ending at x0: v = (x − x0)/σ = ε − x0."""

    def model_fn(x: torch.Tensor, sigma: torch.Tensor, cond: object) -> torch.Tensor:
        s = sigma.reshape(*sigma.shape, *([1] * (x.ndim - 2)))
        return torch.where(s > 0, (x - x0) / s.clamp_min(1e-12), torch.zeros_like(x))

    return model_fn


@pytest.mark.parametrize(
    "schedule",
    [
        FlowSchedule.uniform(1),
        FlowSchedule.uniform(4, shift=5.0),
        FlowSchedule.worldfm_two_step(),
        FlowSchedule.uniform(7, shift=3.0),
    ],
)
@pytest.mark.parametrize("mode", ["euler", "renoise"])
def test_recovers_x0_exactly_on_a_straight_path(schedule: FlowSchedule, mode: str) -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    noise = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    sampler = FlowSampler(_straight_path_model(x0), schedule, mode=mode, dtype=torch.float64)
    out = sampler.sample(noise, None, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-12)


def test_history_frames_untouched_and_model_sees_per_frame_sigmas() -> None:
    g = torch.Generator().manual_seed(0)
    context = torch.randn(SHAPE, generator=g)
    noise = torch.randn(SHAPE, generator=g)
    noisy = torch.zeros(SHAPE[:2], dtype=torch.bool)
    noisy[:, 3:] = True  # frames 0..2 are clean history, 3..4 the current chunk
    seen: list[torch.Tensor] = []

    def model_fn(x: torch.Tensor, sigma: torch.Tensor, cond: object) -> torch.Tensor:
        seen.append(sigma.clone())
        return torch.randn(x.shape, generator=g) * 100.0  # a wild model must not move history

    sched = FlowSchedule.uniform(4, shift=5.0)
    out = FlowSampler(model_fn, sched).sample(noise, None, context=context, noisy=noisy)
    assert torch.equal(out[:, :3], context[:, :3])
    assert not torch.allclose(out[:, 3:], noise[:, 3:])
    assert len(seen) == 4
    for k, sigma in enumerate(seen):
        assert sigma.shape == SHAPE[:2]
        assert torch.all(sigma[:, :3] == 0)
        assert torch.allclose(sigma[:, 3:], torch.full((2, 2), sched.sigmas[k]))


def test_cache_pass_called_once_at_sigma_zero_on_final_sample() -> None:
    x0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    calls: list[tuple[torch.Tensor, torch.Tensor, object]] = []
    sampler = FlowSampler(_straight_path_model(x0), FlowSchedule.uniform(4, shift=5.0))
    cond = {"pose": 1}
    out = sampler.sample(torch.randn(SHAPE), cond, cache_pass=lambda x, s, c: calls.append((x, s, c)))
    assert len(calls) == 1
    x, sigma, c = calls[0]
    assert x is out and c is cond
    assert sigma.shape == SHAPE[:2] and torch.all(sigma == 0)


def test_deterministic_given_generator() -> None:
    def model_fn(x: torch.Tensor, sigma: torch.Tensor, cond: object) -> torch.Tensor:
        return torch.tanh(x) * (1 + sigma.mean())

    sampler = FlowSampler(model_fn, FlowSchedule.uniform(4, shift=3.0), mode="renoise")

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return sampler.sample(FlowSampler.make_noise(SHAPE, g), None, generator=g)

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_no_data_dependent_host_work_runs_on_meta_device() -> None:
    """Meta tensors carry no data: any .item(), data-dependent branch or shape would raise here."""
    calls = []

    def model_fn(x: torch.Tensor, sigma: torch.Tensor, cond: object) -> torch.Tensor:
        calls.append(sigma.device)
        return x * sigma.mean()

    sampler = FlowSampler(model_fn, FlowSchedule.worldfm_two_step(), device="meta")
    noise = torch.empty(SHAPE, device="meta")
    noisy = torch.empty(SHAPE[:2], dtype=torch.bool, device="meta")
    out = sampler.sample(noise, None, lambda x, s, c: calls.append(s.device), context=noise, noisy=noisy)
    assert out.shape == SHAPE and out.device.type == "meta"
    assert len(calls) == 3 and all(d.type == "meta" for d in calls)
