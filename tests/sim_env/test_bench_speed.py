"""`sim_env.bench_speed` pieces that run without a GPU (the full table needs CUDA)."""

from __future__ import annotations

import pytest
import torch

from sim_env.bench_speed import best_padded_backend, main


def test_best_padded_backend_picks_the_fastest_timed_row() -> None:
    rows = [
        {"form": "masked (additive bias)", "backend": "efficient", "ms": 1.0},
        {"form": "padded (mask-free, d+8)", "backend": "default", "ms": 0.5},
        {"form": "padded (mask-free, d+8)", "backend": "flash", "ms": 3.0},
        {"form": "padded (mask-free, d+8)", "backend": "cudnn", "ms": 2.0},
        {"form": "padded (mask-free, d+8)", "backend": "efficient", "error": "no kernel"},
    ]
    assert best_padded_backend(rows) == "cudnn"
    assert best_padded_backend(rows[:2]) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only exit path")
def test_main_without_cuda_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out
