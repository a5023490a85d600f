"""`sim_env.bench_speed` pieces that run without a GPU (the full table needs CUDA)."""

from __future__ import annotations

import pytest
import torch

from sim_env.bench_speed import best_padded_backend, main
from sim_env.bench_speed_report import DIT_PATHS, print_report
from sim_env.model.dit import remove_zero_keys

# The run-level fields every speed report starts with.
REPORT_HEADER = {
    "device": "test GPU",
    "torch": "x",
    "date": "2026-11-21",
    "ceiling_tflops": 780.0,
    "backend": "cudnn",
}


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


def test_lse_correction_removes_zeroed_keys_exactly() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=gen, dtype=torch.float64) for n in (5, 12, 12))
    valid = torch.arange(12) % 3 != 0  # 4 of 12 keys are empty slots
    k0, v0 = (torch.where(valid[:, None], t, 0.0) for t in (k, v))
    scores = q @ k0.transpose(-1, -2) / 8**0.5
    out_all = scores.softmax(-1) @ v0  # what a mask-free kernel returns over zeroed keys
    masked = scores.masked_fill(~valid, float("-inf")).softmax(-1) @ v
    corrected = remove_zero_keys(out_all, scores.logsumexp(-1), int((~valid).sum()))
    assert not torch.allclose(out_all, masked, atol=1e-3)  # the zeroed keys do matter uncorrected
    torch.testing.assert_close(corrected.double(), masked, rtol=1e-5, atol=1e-6)


def test_report_prints_only_the_measured_sections(capsys: pytest.CaptureFixture[str]) -> None:
    dit = {name: {"ms": 70.0, "tflops": 370.0, "fraction_of_ceiling": 0.47} for name in DIT_PATHS}
    dit |= {"psnr_padded_vs_reference_db": 64.9, "psnr_zero_key_vs_reference_db": 64.3}
    out = {
        **REPORT_HEADER,
        "attention": [{"form": "padded (mask-free, d+8)", "backend": "cudnn", "ms": 1.2, "tflops": 377.0}],
        "wan": {
            "frames_per_s": 31.0,
            "frames": 1008,
            "ms_per_chunk": 390.0,
            "compile_blocks": True,
            "dit_pass": dit,
            "dit_tflops_whole_step": 330.0,
            "phase_ms_eager": {"denoise": 276.8},
        },
    }
    print_report(out)
    text = capsys.readouterr().out
    assert "compiled blocks" in text and "| 31.0 |" in text and "DiT pass, zero_key" in text
    assert "tiny64" not in text and "action→frame" not in text and "FP8" not in text
    out["wan"]["fp8"] = True
    out["wan"]["dit_pass"] |= {
        "zero_key_bf16": {"ms": 80.0, "tflops": 320.0, "fraction_of_ceiling": 0.41},
        "fp8_speedup": 1.14,
        "psnr_fp8_vs_bf16_db": 38.2,
    }
    print_report(out)
    text = capsys.readouterr().out
    assert "FP8 linears" in text and "1.14×" in text and "| 38.2 |" in text
    with pytest.raises(ValueError, match="--sections"):  # checked before the CUDA check
        main(["--sections", "wan,bogus"])


def test_report_labels_compiled_tiny_rows(capsys: pytest.CaptureFixture[str]) -> None:
    out = {
        **REPORT_HEADER,
        "attention": [],
        "tiny": [
            {"num_worlds": 256, "dtype": "bfloat16", "env_steps_per_s": 5100.0, "compile_blocks": True},
            {"num_worlds": 256, "dtype": "float32", "env_steps_per_s": 1700.0},
        ],
        "tiers": {
            "num_streams": 256,
            "env_steps_per_s": 5000.0,
            "with_policy_steps_per_s": 4900.0,
            "with_ppo_steps_per_s": 4800.0,
            "compile_blocks": True,
        },
    }
    print_report(out)
    text = capsys.readouterr().out
    assert "tiny64 256 worlds, bfloat16, compiled blocks | env-steps/s | 5,100.0" in text
    assert "tiny64 256 worlds, float32 | env-steps/s | 1,700.0" in text
    assert "tiny64 256 worlds bf16, compiled blocks: + PPO update" in text
