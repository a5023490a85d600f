"""`genworld bench world` on the CPU with tiny numbers: it runs and prints a markdown table."""

from __future__ import annotations

import json

import pytest

from sim_env.cli import main


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


def test_bench_world_refuses_latent_config(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "bench",
        "world",
        "--config",
        "wan2.1-1.3b",
        "--height",
        "480",
        "--width",
        "832",
        "--device",
        "cpu",
    ]
    assert main(argv) != 0
    assert "latent path" in capsys.readouterr().out
