"""The benchmark_vector_step script runs and reports one row per num_envs."""

import json

from sim_env.envs.bench_vector import main


def test_bench_vector_reports_every_num_envs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--num-envs", "1,2", "--world", "mujoco", "--duration", "0.3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["num_envs"] for r in rows] == [1, 2]
    assert all(r["steps_per_s"] > 0 for r in rows)
    assert "| num_envs | env-steps/s |" in capsys.readouterr().out
