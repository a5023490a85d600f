"""The FP8-forms comparison runs the forms this machine supports (CPU: bf16 and PyTorch FP8)."""

from __future__ import annotations

import pytest
import torch

from sim_env.perf.fp8_forms import compare_fp8_forms, main


def test_cpu_compares_bf16_and_pytorch_fp8_on_the_same_pass() -> None:
    if torch.cuda.is_available():
        pytest.skip("the CPU form set")
    results = compare_fp8_forms("tiny-latent-test", torch.device("cpu"), warmup=1, repeats=2)
    assert list(results) == ["bf16", "fp8 PyTorch quantisation"]
    assert all(r["ms"] > 0 for r in results.values())
    assert results["bf16"]["psnr_db"] == float("inf")
    assert 20.0 < results["fp8 PyTorch quantisation"]["psnr_db"] < float("inf")  # close, not identical


def test_main_prints_a_row_per_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "tiny-latent-test", "--repeats", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| bf16 |" in out and "| fp8 PyTorch quantisation |" in out
