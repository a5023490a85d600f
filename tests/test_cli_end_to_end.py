"""The README's commands, end to end, as real processes: serve, record over gRPC, demo."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bridge.dataset import TrajectoryDataset
from bridge.worlds import make_world

GENWORLD = [sys.executable, "-m", "sim_env.cli"]
SERVER_START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early: {proc.stderr.read() if proc.stderr else ''}"
        try:
            world = make_world(f"grpc://127.0.0.1:{port}")
            world.handshake()
            world.close()
            return
        except Exception:
            time.sleep(0.3)
    raise TimeoutError("genworld serve did not come up")


@pytest.fixture
def served_port(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [*GENWORLD, "serve", "--world", "mujoco", "--scene", "rooms", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        _wait_for_server(port, proc)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("genworld serve did not shut down on SIGTERM")
    assert proc.returncode == 0, proc.stderr.read()


@pytest.mark.slow
def test_record_from_a_served_world_reads_back(served_port, tmp_path):
    out = tmp_path / "remote"
    result = subprocess.run(
        [
            *GENWORLD,
            "record",
            "--world",
            f"grpc://127.0.0.1:{served_port}",
            "--episodes",
            "2",
            "--steps",
            "6",
            "--policy",
            "loop",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    dataset = TrajectoryDataset(out, window=4, stride=1)
    assert len(dataset) == 2 * (7 - 4 + 1)
    window = dataset[0]
    assert tuple(window["rgb"].shape) == (4, 64, 64, 3)
    assert window["depth"].isfinite().any()


@pytest.mark.slow
def test_demo_writes_a_video(tmp_path):
    out = tmp_path / "demo.gif"
    result = subprocess.run(
        [*GENWORLD, "demo", "--steps", "6", "--denoising-steps", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "steps/s" in result.stdout
    from sim_env.envs.world_factory import DEFAULT_CHECKPOINT

    # Until a model ships the demo runs random weights and must say so.
    assert ("RANDOM weights" in result.stdout) != DEFAULT_CHECKPOINT.exists()
    if DEFAULT_CHECKPOINT.exists():  # the demo's scan: the engine's sweep from four spots
        assert "8 views of the engine at each of 4 spot(s) at reset, footprint occlusion on" in result.stdout
    assert result.stdout.count("PSNR") >= 6  # per-step fidelity against the MuJoCo shadow
    assert out.stat().st_size > 1000
    import imageio.v2 as imageio

    frames = imageio.mimread(out)
    assert len(frames) == 6
    # generated | ground truth | depth, each 64 px scaled by 4 with 2 px gaps between them
    assert frames[0].shape[1] == 4 * (3 * 64 + 2 * 2)


def test_help_lists_every_command():
    result = subprocess.run([*GENWORLD, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "record", "export", "bench", "demo"):
        assert command in result.stdout
