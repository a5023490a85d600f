"""TrajectoryDataset over a MujocoWorld recording: indexing, visibility, DataLoader workers."""

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bridge.dataset import TrajectoryDataset
from bridge.recorder import record
from bridge.trajectory_format import load_field

EPISODES, STEPS, AGENTS = 3, 9, 2
FRAMES = STEPS + 1
RES = (12, 16)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset") / "ds"
    record(
        world="mujoco",
        scene="rooms",
        episodes=EPISODES,
        steps=STEPS,
        policy="random",
        out=out,
        resolution=RES,
        seed=11,
        num_agents=AGENTS,
    )
    return out


@pytest.fixture(scope="module")
def hands_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset") / "hands"
    record(world="mujoco", scene="tabletop", episodes=1, steps=4, policy="spiral", out=out, resolution=RES)
    return out


@pytest.mark.parametrize(("window", "stride"), [(1, 1), (4, 1), (4, 3), (FRAMES, 1), (3, 100)])
def test_length_counts_windows_per_episode_and_agent(root, window, stride):
    dataset = TrajectoryDataset(root, window=window, stride=stride)
    per_sequence = (FRAMES - window) // stride + 1
    assert len(dataset) == EPISODES * AGENTS * per_sequence


def test_windows_are_consecutive_frames_that_never_cross_episodes(root):
    dataset = TrajectoryDataset(root, window=4, stride=3)
    for i in range(len(dataset)):
        item = dataset[i]
        episode, agent, start = int(item["episode"]), int(item["agent"]), int(item["start"])
        name = f"ep_{episode:06d}"
        assert dataset.locate(i) == (name, f"agent_{agent}", start)
        assert start + 4 <= FRAMES
        frame_ids = load_field(root, name, "frame_id")[start : start + 4, agent]
        np.testing.assert_array_equal(frame_ids, np.arange(start, start + 4))
        np.testing.assert_array_equal(
            item["pose"].numpy(), load_field(root, name, "pose")[start : start + 4, agent]
        )
        np.testing.assert_array_equal(
            item["rgb"].numpy(), load_field(root, name, "rgb")[start : start + 4, agent]
        )


def test_items_are_typed_tensors(root):
    item = TrajectoryDataset(root, window=5)[0]
    assert item["rgb"].dtype == torch.uint8 and tuple(item["rgb"].shape) == (5, *RES, 3)
    assert item["depth"].dtype == torch.float32 and tuple(item["depth"].shape) == (5, *RES)
    assert item["pose"].dtype == torch.float64 and tuple(item["pose"].shape) == (5, 4, 4)
    assert item["K"].dtype == torch.float64 and tuple(item["K"].shape) == (5, 3, 3)
    assert item["actions"].dtype == torch.float32 and tuple(item["actions"].shape) == (5, 22)
    assert "hand_keypoints" not in item  # rooms has no hands
    assert item["episode"].dtype == torch.int64 and item["start"].ndim == 0


def test_hand_keypoints_come_with_tabletop_windows(hands_root):
    item = TrajectoryDataset(hands_root, window=3)[1]
    assert item["hand_keypoints"].dtype == torch.float32 and tuple(item["hand_keypoints"].shape) == (
        3,
        2,
        21,
        3,
    )


def test_agent_and_field_selection(root):
    only = TrajectoryDataset(root, window=2, agent="agent_1", fields=["pose", "collided", "sim_time"])
    assert len(only) == EPISODES * (FRAMES - 1)
    item = only[0]
    assert set(item) == {"pose", "collided", "sim_time", "episode", "agent", "start"}
    assert int(item["agent"]) == 1 and item["collided"].dtype == torch.bool
    with pytest.raises(ValueError, match="agent_7"):
        TrajectoryDataset(root, window=2, agent="agent_7")
    with pytest.raises(ValueError, match="unknown fields"):
        TrajectoryDataset(root, window=2, fields=["normals"])
    with pytest.raises(ValueError, match="hand_keypoints"):
        TrajectoryDataset(root, window=2, fields=["hand_keypoints"])
    with pytest.raises(ValueError, match="window"):
        TrajectoryDataset(root, window=0)


def test_indexing_bounds_and_oversized_windows(root):
    dataset = TrajectoryDataset(root, window=FRAMES)
    assert int(dataset[-1]["episode"]) == EPISODES - 1
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    assert len(TrajectoryDataset(root, window=FRAMES + 1)) == 0


def test_only_manifest_episodes_are_visible(root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shutil.copytree(copy / "episodes" / "ep_000000", copy / "episodes" / "ep_000099")  # never listed
    shutil.copytree(copy / "episodes" / "ep_000000", copy / "episodes" / ".tmp-ep_000100-1")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["episodes"] = manifest["episodes"][1:]  # as if ep_000000 were still in flight
    (copy / "manifest.json").write_text(json.dumps(manifest))
    dataset = TrajectoryDataset(copy, window=FRAMES)
    assert len(dataset) == (EPISODES - 1) * AGENTS
    assert {dataset.locate(i)[0] for i in range(len(dataset))} == {"ep_000001", "ep_000002"}


def test_pickles_without_open_maps_before_and_after_use(root):
    dataset = TrajectoryDataset(root, window=3)
    clone = pickle.loads(pickle.dumps(dataset))
    dataset[0]
    assert dataset._arrays  # opened lazily on first access
    again = pickle.loads(pickle.dumps(dataset))
    assert not again._arrays
    assert again[0]["rgb"].equal(clone[0]["rgb"])


def test_dataloader_with_two_workers_sees_every_window_once(root):
    dataset = TrajectoryDataset(root, window=3, stride=2)
    loader = DataLoader(
        dataset, batch_size=4, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    seen = []
    for batch in loader:
        assert batch["rgb"].shape[1:] == (3, *RES, 3) and batch["rgb"].dtype == torch.uint8
        seen += list(
            zip(batch["episode"].tolist(), batch["agent"].tolist(), batch["start"].tolist(), strict=True)
        )
    expected = [(e, a, s) for e in range(EPISODES) for a in range(AGENTS) for s in range(0, FRAMES - 2, 2)]
    assert sorted(seen) == sorted(expected)
