"""The recorder against the real MujocoWorld: layout, resume, crash safety, workers."""

import fcntl
import functools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bridge.conventions import is_rigid
from bridge.dataset import TrajectoryDataset
from bridge.engines.mujoco_world import MujocoWorld
from bridge.recorder import DatasetMismatchError, record
from bridge.trajectory_format import (
    ACTION_COL_KIND,
    ACTION_DIM,
    ACTION_KIND_KEY,
    ACTION_KIND_NONE,
    decode_action,
    encode_action,
    load_field,
    read_manifest,
)
from bridge.types import Action

RES = (16, 16)
FIELDS = ("rgb", "depth", "pose", "K", "frame_id", "sim_time", "collided", "actions")
KILL_EPISODES, KILL_STEPS = 12, 30
KILL_TIMEOUT_S = 120.0
# An orphaned worker would finish its 16x16 episode well within this and touch OUT.
ORPHAN_GRACE_S = 1.0


def _record(out, episodes=2, steps=6, **kwargs):
    args = {"world": "mujoco", "scene": "rooms", "policy": "random", "resolution": RES, "seed": 0}
    args.update(kwargs)
    return record(episodes=episodes, steps=steps, out=out, **args)


def test_record_writes_the_documented_layout(tmp_path):
    out = tmp_path / "ds"
    summary = _record(out, episodes=2, steps=6, num_agents=2)
    assert summary.episodes_recorded == 2 and summary.frames == 2 * 7 * 2
    assert summary.resolution == RES and summary.agent_ids == ("agent_0", "agent_1")
    manifest = read_manifest(out)
    assert manifest["version"] == 1 and manifest["resolution"] == list(RES)
    assert manifest["args"]["policy"] == "random" and manifest["world_info"]["name"] == "mujoco"
    assert [(e["name"], e["seed"], e["frames"]) for e in manifest["episodes"]] == [
        ("ep_000000", 0, 7),
        ("ep_000001", 1, 7),
    ]
    assert sorted(p.name for p in (out / "episodes").iterdir()) == ["ep_000000", "ep_000001"]
    meta = json.loads((out / "episodes" / "ep_000001" / "meta.json").read_text())
    assert meta["seed"] == 1 and meta["scene"] == "rooms" and meta["steps"] == 6
    assert meta["timing"]["frames_per_s"] > 0
    a = {f: load_field(out, "ep_000001", f) for f in FIELDS}
    assert a["rgb"].dtype == np.uint8 and a["rgb"].shape == (7, 2, *RES, 3)
    assert a["depth"].dtype == np.float32 and a["depth"].shape == (7, 2, *RES)
    assert a["pose"].dtype == np.float64 and a["pose"].shape == (7, 2, 4, 4)
    assert a["K"].shape == (7, 2, 3, 3) and a["actions"].shape == (7, 2, ACTION_DIM)
    assert a["collided"].dtype == np.bool_ and a["sim_time"].dtype == np.float64
    np.testing.assert_array_equal(a["frame_id"][:, 0], np.arange(7))
    assert all(is_rigid(p) for p in a["pose"].reshape(-1, 4, 4))
    assert (a["actions"][0, :, ACTION_COL_KIND] == ACTION_KIND_NONE).all()
    assert (a["actions"][1:, :, ACTION_COL_KIND] == ACTION_KIND_KEY).all()
    assert "hand_keypoints" not in meta["fields"]
    assert not list(out.glob(".tmp-*")) and not list((out / "episodes").glob(".tmp-*"))


def test_tabletop_records_hand_actions_and_keypoints(tmp_path):
    _record(tmp_path / "t", episodes=1, steps=4, scene="tabletop", policy="keys")
    keypoints = load_field(tmp_path / "t", "ep_000000", "hand_keypoints")
    assert keypoints.dtype == np.float32 and keypoints.shape == (5, 1, 2, 21, 3)
    assert np.isfinite(keypoints).all()
    rows = load_field(tmp_path / "t", "ep_000000", "actions")[1:, 0]
    assert all(decode_action(r).kind == "hand" for r in rows)


def test_action_encoding_round_trips():
    for action in (
        Action.from_key(7),
        Action.from_nav([0.5, -1, 0, 0.25, 0, 1]),
        Action.from_hand(np.r_[np.linspace(-1, 1, 6), 0.3, np.zeros(6), 1.0]),
    ):
        back = decode_action(encode_action(action))
        assert back.kind == action.kind and back.key == action.key
        for name in ("nav_vector", "hand_vector"):
            if getattr(action, name) is not None:
                np.testing.assert_allclose(getattr(back, name), getattr(action, name), atol=1e-7)
    assert decode_action(encode_action(None)) is None


def test_resume_skips_finished_episodes_and_extends(tmp_path):
    out = tmp_path / "ds"
    _record(out, episodes=2)
    before = load_field(out, "ep_000001", "rgb", mmap=False)
    mtime = (out / "episodes" / "ep_000001" / "rgb.npy").stat().st_mtime_ns
    summary = _record(out, episodes=3)
    assert (summary.episodes_recorded, summary.episodes_skipped) == (1, 2)
    assert (out / "episodes" / "ep_000001" / "rgb.npy").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(load_field(out, "ep_000001", "rgb"), before)
    assert [e["index"] for e in read_manifest(out)["episodes"]] == [0, 1, 2]
    assert _record(out, episodes=3).episodes_recorded == 0


def test_resume_removes_debris_of_a_killed_run(tmp_path):
    out = tmp_path / "ds"
    _record(out, episodes=1)
    stale_tmp = out / "episodes" / ".tmp-ep_000001-99999"
    stale_tmp.mkdir()
    (stale_tmp / "rgb.npy").write_bytes(b"partial")
    unlisted = out / "episodes" / "ep_000002"  # renamed, but the manifest never listed it
    unlisted.mkdir()
    (out / ".tmp-manifest.json-99999").write_text("{")
    _record(out, episodes=3)
    names = sorted(p.name for p in (out / "episodes").iterdir())
    assert names == ["ep_000000", "ep_000001", "ep_000002"]
    assert load_field(out, "ep_000002", "rgb").shape[0] == 7
    assert not list(out.glob(".tmp-*"))


def test_resume_with_other_arguments_is_a_clear_error(tmp_path):
    out = tmp_path / "ds"
    _record(out, episodes=1)
    with pytest.raises(DatasetMismatchError, match=r"steps: dataset has 6, this run asks for 7"):
        _record(out, episodes=2, steps=7)
    with pytest.raises(DatasetMismatchError, match="policy"):
        _record(out, episodes=2, policy="loop")
    assert len(read_manifest(out)["episodes"]) == 1


def test_two_workers_record_the_same_arrays_as_one(tmp_path):
    one = _record(tmp_path / "one", episodes=3, steps=5, workers=1)
    two = _record(tmp_path / "two", episodes=3, steps=5, workers=2)
    assert one.episodes_recorded == two.episodes_recorded == 3
    for episode in ("ep_000000", "ep_000001", "ep_000002"):
        for field in FIELDS:
            np.testing.assert_array_equal(
                load_field(tmp_path / "one", episode, field), load_field(tmp_path / "two", episode, field)
            )


def test_zstd_rgb_reads_back_identical(tmp_path):
    _record(tmp_path / "raw", episodes=1)
    _record(tmp_path / "zst", episodes=1, rgb_codec="zstd")
    assert (tmp_path / "zst" / "episodes" / "ep_000000" / "rgb.npy.zst").is_file()
    raw = TrajectoryDataset(tmp_path / "raw", window=7)[0]["rgb"]
    zst = TrajectoryDataset(tmp_path / "zst", window=7)[0]["rgb"]
    assert raw.equal(zst)


def _cli_record(out, workers):
    command = [
        sys.executable,
        "-m",
        "bridge.cli",
        "record",
        "--world",
        "mujoco",
        "--episodes",
        str(KILL_EPISODES),
        "--steps",
        str(KILL_STEPS),
        "--resolution",
        "16x16",
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )


def _listed(out):
    try:
        return len(read_manifest(out)["episodes"])
    except (FileNotFoundError, ValueError):  # not written yet
        return 0


def _snapshot(out):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*")}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_run_loses_only_episodes_in_flight_and_resume_completes(tmp_path, workers):
    out = tmp_path / "killed"
    proc = _cli_record(out, workers)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while _listed(out) < 1:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "recorder never finished an episode"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = read_manifest(out)["episodes"]
    assert 1 <= len(finished) < KILL_EPISODES, "the kill should land mid-run"
    before = _snapshot(out)
    time.sleep(ORPHAN_GRACE_S)
    assert _snapshot(out) == before, "recorder processes kept writing after the kill"

    dataset = TrajectoryDataset(out, window=KILL_STEPS + 1)
    assert len(dataset) == len(finished)  # only listed episodes are visible
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["rgb"].shape == (KILL_STEPS + 1, *RES, 3)
        assert item["depth"].isfinite().any()
    assert all((out / "episodes" / e["name"] / "meta.json").is_file() for e in finished)

    resumed = _cli_record(out, workers)
    _, stderr = resumed.communicate(timeout=KILL_TIMEOUT_S)
    assert resumed.returncode == 0, stderr
    assert "frames/s" in stderr and f"({len(finished)} already done)" in stderr
    assert [e["index"] for e in read_manifest(out)["episodes"]] == list(range(KILL_EPISODES))
    assert len(TrajectoryDataset(out, window=KILL_STEPS + 1)) == KILL_EPISODES
    names = sorted(p.name for p in (out / "episodes").iterdir())
    assert names == [f"ep_{i:06d}" for i in range(KILL_EPISODES)]


def test_grpc_world_records_the_resolution_the_server_reports(tmp_path):
    pytest.importorskip("bridge.client")
    server_module = pytest.importorskip("bridge.server")
    served = (12, 20)
    factory = functools.partial(MujocoWorld, scene="rooms", height=served[0], width=served[1])
    with server_module.serve(factory) as server:
        summary = _record(tmp_path / "remote", world=f"grpc://{server.address}", resolution=(64, 64))
    manifest = read_manifest(tmp_path / "remote")
    assert summary.resolution == served and manifest["resolution"] == list(served)
    assert manifest["args"]["resolution"] == [64, 64]
    _record(tmp_path / "local", resolution=served)
    for field in FIELDS:  # same seeds, same frames; poses cross the wire as quaternions
        remote, local = (load_field(tmp_path / d, "ep_000001", field) for d in ("remote", "local"))
        np.testing.assert_allclose(remote, local, rtol=0, atol=1e-12 if field in ("pose", "K") else 0)


def test_a_run_that_finished_nothing_can_be_retried_with_other_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown world"):
        _record(tmp_path / "ds", world="mujcoo")
    assert _record(tmp_path / "ds", episodes=1).episodes_recorded == 1
    assert read_manifest(tmp_path / "ds")["args"]["world"] == "mujoco"


def test_a_second_recorder_on_the_same_directory_fails_fast(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another recorder"):
            _record(out)
