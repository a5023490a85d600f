"""The roll-cost tool times every variant on a small config (CPU)."""

from __future__ import annotations

import pytest
import torch

from sim_env.perf.roll_cost import main, random_chunk_poses, roll_costs


def test_random_poses_are_rigid() -> None:
    pose = random_chunk_poses(2, 3, torch.Generator().manual_seed(0))
    rotation = pose[..., :3, :3]
    eye = torch.eye(3).expand_as(rotation)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    assert torch.equal(pose[..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(2, 3, 4))


def test_every_variant_is_timed(capsys: pytest.CaptureFixture[str]) -> None:
    costs = roll_costs("tiny-latent-test", torch.device("cpu"), worlds=2, warmup=1, repeats=2)
    assert list(costs) == ["no admission", "admission, eager", "admission, compiled"]
    assert all(ms > 0 for ms in costs.values())
    assert main(["--config", "tiny-latent-test", "--repeats", "1", "--device", "cpu"]) == 0
    assert "| admission, compiled |" in capsys.readouterr().out
