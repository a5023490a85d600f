"""The step profiler names the runtime's phases (CPU run of a small config)."""

from __future__ import annotations

import pytest

from sim_env.bench_world import _reset
from sim_env.perf.profile_step import main, profile_steps
from sim_env.runtime import GenerativeRuntime


def test_profile_table_has_a_row_per_phase() -> None:
    runtime = GenerativeRuntime(config="tiny-latent-test", denoising_steps=2)
    _reset(runtime, seed=0)
    table = profile_steps(runtime, steps=1, rows=200)
    for phase in ("step", "conditioning", "denoise", "cache_pass", "decode"):
        assert phase in table


def test_main_without_cuda_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only exit path")
    assert main(["--steps", "1"]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out
