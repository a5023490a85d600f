"""`summarize` on hand-made traces: means, medians and standard errors over episodes, and the plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_env.evaluation.plots import plot_report
from sim_env.evaluation.runner import FRAME_METRICS, EpisodeTrace, summarize


def _trace(value: float, steps: int) -> EpisodeTrace:
    trace = EpisodeTrace(metrics={m: [value + s for s in range(steps)] for m in FRAME_METRICS})
    trace.poses = [np.eye(4)] * (steps + 1)
    trace.steps, trace.seconds = steps, 1.0
    return trace


def test_standard_error_over_episodes_at_each_horizon(tmp_path) -> None:
    values = [10.0, 12.0, 17.0]
    traces = {"random_walk": [_trace(v, 8) for v in values]}
    out = summarize(traces, {}, {}, horizon=8)
    expected = float(np.std(values, ddof=1) / math.sqrt(len(values)))  # the same spread at every step
    assert out["stderr_by_horizon"]["psnr"] == {"1": pytest.approx(expected), "8": pytest.approx(expected)}
    assert out["curves_stderr"]["ssim"] == pytest.approx([expected] * 8)
    assert out["by_horizon"]["psnr"]["8"] == pytest.approx(np.mean(values) + 7)
    assert out["median_by_horizon"]["psnr"]["1"] == pytest.approx(12.0)
    one = summarize({"random_walk": [_trace(10.0, 8)]}, {}, {}, horizon=8)
    assert math.isnan(one["stderr_by_horizon"]["psnr"]["8"])  # one episode has no spread
    report = {"horizons": [1, 8], "variants": {"model": out, "single": one}}
    paths = plot_report(report, tmp_path, "r")
    assert {p.name for p in paths} == {"r_psnr.png", "r_ssim.png", "r_depth_absrel.png"}
