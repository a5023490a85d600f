"""Training on tiny recorded data: exact resume, the shipped checkpoint format, GT conditions."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sim_env.checkpoints import load_checkpoint
from sim_env.generative_world import GenerativeWorld
from sim_env.training.conditions import ground_truth_reprojections
from sim_env.training.data import collate_windows, open_datasets
from sim_env.training.diffusion_forcing import ForcingOptions
from sim_env.training.trainer import Trainer, TrainSettings, state_path
from tests.sim_env.training.tiny_data import MEMORY_CAPACITY, TINY_CONFIG


def _settings(tiny_data: dict, out, **overrides) -> TrainSettings:
    base = TrainSettings(
        data=(str(tiny_data["rooms"]), str(tiny_data["tabletop"])),
        out=str(out),
        steps=4,
        batch_size=2,
        span=6,
        stride=2,
        gt_forcing_start=0.5,
        gt_forcing_prob=1.0,  # steps 2 and 3 are ground-truth forcing: the resume crosses into it
        save_every=0,
        logdir="",
        forcing=ForcingOptions(max_history=4, rollout_frames=2, memory_capacity=MEMORY_CAPACITY),
    )
    return dataclasses.replace(base, **overrides)


def test_resume_is_bit_identical(tiny_data: dict, tmp_path) -> None:
    straight = Trainer(_settings(tiny_data, tmp_path / "a.safetensors"), TINY_CONFIG)
    straight.run()
    first = Trainer(_settings(tiny_data, tmp_path / "b.safetensors", stop_at=2), TINY_CONFIG)
    first.run()
    assert first.step == 2 and state_path(tmp_path / "b.safetensors").exists()
    resumed = Trainer(_settings(tiny_data, tmp_path / "b.safetensors"), TINY_CONFIG)
    resumed.load(state_path(tmp_path / "b.safetensors"))
    resumed.run()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key, value in straight.ema.shadow.items():
        assert torch.equal(value, resumed.ema.shadow[key]), key
    moved = any(
        not torch.equal(v, first.ema.shadow[k]) for k, v in straight.ema.shadow.items()
    )  # the last two steps changed the weights, so equality above is not vacuous
    assert moved


def test_checkpoint_is_ema_weights_that_the_world_loads(tiny_data: dict, tmp_path) -> None:
    out = tmp_path / "m.safetensors"
    trainer = Trainer(_settings(tiny_data, out, steps=1), TINY_CONFIG)
    trainer.run()
    state, config = load_checkpoint(out)
    assert config == TINY_CONFIG
    for key, value in trainer.ema.shadow.items():
        assert torch.equal(state[key], value), key
    world = GenerativeWorld(checkpoint=str(out), memory_capacity=MEMORY_CAPACITY, denoising_steps=1)
    assert world.config == TINY_CONFIG
    for key, value in world.model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_ground_truth_reprojection_of_a_static_camera_copies_the_previous_frame(tiny_data: dict) -> None:
    data = open_datasets([tiny_data["tabletop"]], span=3, stride=1)  # hand actions: the camera stays
    batch = collate_windows([data[0]])
    assert batch.has_hands.all()
    assert torch.equal(batch.pose[:, 0], batch.pose[:, 1])
    rgb, depth, mask = ground_truth_reprojections(
        batch.rgb, batch.depth, batch.K, batch.pose, TINY_CONFIG, MEMORY_CAPACITY
    )
    assert not mask[:, 0].any()  # nothing precedes the reference
    assert mask[:, 1].float().mean() > 0.8  # 5 cm voxels merge some neighbouring far pixels
    close = (rgb[:, 1] - batch.rgb[:, 0].float()).abs().amax(-1)[mask[:, 1]]
    assert float((close <= 40).float().mean()) > 0.8  # voxel colours average neighbouring pixels
    rel = ((depth[:, 1] - batch.depth[:, 0]).abs() / batch.depth[:, 0])[mask[:, 1]]
    assert float(rel.median()) < 0.05


def test_train_only_moves_just_the_named_parameters(tiny_data: dict, tmp_path) -> None:
    """A gate-only finetune (``train_only=("head.gate",)``) leaves every other weight as it was."""
    gated = dataclasses.replace(TINY_CONFIG, anchor_gate=True, anchor_gate_channels=3)
    trainer = Trainer(_settings(tiny_data, tmp_path / "g.safetensors", train_only=("head.gate",)), gated)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("head.gate") for k in changed)
    with pytest.raises(ValueError, match="matches no parameter"):
        Trainer(_settings(tiny_data, tmp_path / "n.safetensors", train_only=("nothing.",)), gated)
