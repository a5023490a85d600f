"""`genworld bench world` on the CPU with tiny numbers: it runs and prints a markdown table."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch

from sim_env.bench_world import run_world_bench
from sim_env.cli import main
from sim_env.runtime import DEFAULT_PINNED_MARGIN


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: one torch thread avoids hand-off overhead on a busy 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_bench_world_prints_table(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "world", "--config", "tiny64", "--num-worlds", "1,2", "--steps", "1"]
    argv += ["--frames", "2", "--repeats", "1", "--device", "cpu", "--json", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| config | num_worlds |" in table
    rows = [line for line in table.splitlines() if line.startswith("| tiny64 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2"]
    results = json.loads(out.read_text())
    assert [r["num_worlds"] for r in results] == [1, 2]
    assert all(r["env_steps_per_s"] > 0 for r in results)
    # Passthrough is on by default, but tiny64 has no provenance channel to copy by; carving is on.
    defaults = {
        "pinned_margin": DEFAULT_PINNED_MARGIN,
        "footprint_occlusion": False,
        "reference_collisions": True,
        "reference_passthrough": False,
        "reference_surfels": False,
        "carve_free_space": True,
        "background_free": False,
        "sample_footprints": False,
        "reference_views": 1,
    }
    assert results[0]["runtime_options"] == defaults


def test_bench_world_passes_the_memory_rules_to_the_runtime(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "world", "--num-worlds", "1", "--steps", "1", "--frames", "1"]
    argv += ["--repeats", "1", "--device", "cpu", "--json", str(out)]
    argv += ["--config", "tiny64-colour-gate-fill-ref"]
    rules = ["--pinned-margin", "0", "--no-reference-collisions", "--no-reference-passthrough"]
    rules += ["--reference-surfels", "--no-carve-free-space", "--footprint-occlusion", "--background-free"]
    rules += ["--sample-footprints"]
    assert main([*argv, *rules]) == 0
    chosen = {
        "reference_collisions": False,
        "pinned_margin": 0.0,
        "footprint_occlusion": True,
        "reference_passthrough": False,
        "reference_surfels": False,  # asked for, but it needs the passthrough
        "carve_free_space": False,
        "background_free": True,
        "sample_footprints": True,
        "reference_views": 1,
    }
    assert f"runtime options: {chosen}" in capsys.readouterr().out
    assert json.loads(out.read_text())[0]["runtime_options"] == chosen
    assert main(argv) == 0  # the defaults: passthrough and carving on
    assert json.loads(out.read_text())[0]["runtime_options"]["reference_passthrough"] is True
    assert json.loads(out.read_text())[0]["runtime_options"]["carve_free_space"] is True
    assert json.loads(out.read_text())[0]["runtime_options"]["reference_surfels"] is True
    assert main([*argv, "--reference-views", "3"]) == 0  # a synthetic sweep at reset
    assert json.loads(out.read_text())[0]["runtime_options"]["reference_views"] == 3
    assert json.loads(out.read_text())[0]["runtime_options"]["footprint_occlusion"] is False  # opt-in


def test_bench_world_latent_config_reports_video_frames_and_phases(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    out = tmp_path / "bench.json"
    code = run_world_bench("tiny-latent-test", [1], 1, 1, 1, json_path=str(out), device="cpu", phase_steps=1)
    assert code == 0
    printed = capsys.readouterr().out
    assert "| tiny-latent-test |" in printed and "denoise ms" in printed
    (result,) = json.loads(out.read_text())
    assert result["video_frames_per_step"] == 12 and (result["height"], result["width"]) == (32, 48)
    assert result["frames_per_s"] == pytest.approx(12 * result["env_steps_per_s"])
    phases = result["phase_ms"]
    assert set(phases) == {
        "conditioning",
        "denoise",
        "cache_pass",
        "decode",
        "memory",
        "cache_roll",
        "other",
        "total",
    }
    assert all(phases[p] > 0 for p in ("conditioning", "denoise", "cache_pass", "decode"))
    assert phases["total"] >= phases["denoise"] + phases["cache_pass"]
    assert not result["cuda_graph"]


def test_bench_world_refuses_a_size_the_config_does_not_generate(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "world", "--config", "wan2.1-1.3b", "--height", "240", "--width", "416"]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "480x832" in capsys.readouterr().out
