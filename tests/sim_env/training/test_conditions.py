"""Training conditions are the runtime's conditions: same memory, splat, codec and layout."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sim_env.checkpoints import save_checkpoint
from sim_env.conditioning import build_condition
from sim_env.model.dit import CausalDiT
from sim_env.runtime import GenerativeRuntime
from sim_env.training.conditions import clip_condition, ground_truth_reprojections, hand_maps
from sim_env.training.data import collate_windows, open_datasets
from sim_env.training.diffusion_forcing import mask_explicit_anchor
from tests.sim_env.training.tiny_data import MEMORY_CAPACITY, TINY_CONFIG

# The tiny config with the colour gate reading the reference provenance (one more channel).
REFERENCE_CONFIG = dataclasses.replace(
    TINY_CONFIG, name="test16-ref", anchor_gate=True, anchor_gate_channels=3, anchor_gate_reference=True
)


@pytest.mark.parametrize("cfg", [TINY_CONFIG, REFERENCE_CONFIG], ids=["plain", "reference"])
def test_condition_of_a_recorded_frame_equals_what_the_runtime_builds(cfg, tiny_data: dict, tmp_path) -> None:
    batch = collate_windows([open_datasets([tiny_data["rooms"]], span=2, stride=1)[3]])
    assert not torch.equal(batch.pose[:, 0], batch.pose[:, 1])  # the camera moved
    r_rgb, r_depth, r_mask = ground_truth_reprojections(
        batch.rgb, batch.depth, batch.K, batch.pose, cfg, MEMORY_CAPACITY
    )
    hands = hand_maps(batch.hand_keypoints, batch.has_hands, batch.K, cfg)
    training = clip_condition(r_rgb, r_depth, r_mask, hands, cfg)[:, :, 1]

    checkpoint = tmp_path / "random.safetensors"
    save_checkpoint(CausalDiT(cfg), checkpoint)
    runtime = GenerativeRuntime(str(checkpoint), memory_capacity=MEMORY_CAPACITY, denoising_steps=1)
    runtime.reset_batch(batch.rgb[:, 0], batch.depth[:, 0], batch.K[:, 0], batch.pose[:, 0], seed=0)
    seen = {}
    sample = runtime.sampler.sample

    def spy(noise: torch.Tensor, cond: torch.Tensor, cache_pass: object) -> torch.Tensor:
        seen["cond"] = cond.clone()
        return sample(noise, cond, cache_pass)

    runtime.sampler.sample = spy  # a spy on the one call, inside this unit test only
    runtime.teleport_batch(batch.pose[:, 1], torch.ones(1, dtype=torch.bool))
    assert seen["cond"].shape == (1, cfg.condition_channels, 1, cfg.height, cfg.width)
    torch.testing.assert_close(training, seen["cond"][:, :, 0])
    assert training[:, cfg.out_channels].mean() > 0.3  # the reference covers much of the new view
    if cfg.anchor_gate_reference:  # only the reference is in the memory: all of it is pinned
        torch.testing.assert_close(training[:, -1], training[:, cfg.out_channels])


def test_reference_channel_marks_only_the_pinned_reference(tiny_data: dict) -> None:
    """Frame 2 sees the pinned reference (frame 0) and the unpinned frame 1; only the first is marked."""
    cfg = REFERENCE_CONFIG
    batch = collate_windows([open_datasets([tiny_data["rooms"]], span=3, stride=1)[3]])
    r_rgb, r_depth, r_mask = ground_truth_reprojections(
        batch.rgb, batch.depth, batch.K, batch.pose, cfg, MEMORY_CAPACITY
    )
    hands = hand_maps(batch.hand_keypoints, batch.has_hands, batch.K, cfg)
    cond = clip_condition(r_rgb, r_depth, r_mask, hands, cfg)[:, :, 2]
    reference, validity = cond[:, -1], cond[:, cfg.out_channels]
    assert set(reference.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(reference <= validity)  # provenance only where the anchor is valid
    assert reference.sum() > 0 and (validity - reference).sum() > 0  # both kinds of pixel present
    with pytest.raises(ValueError, match="render_rgb"):  # a colour-only splat is refused
        build_condition(r_rgb[:, 2, ..., :3], r_depth[:, 2], r_mask[:, 2], hands[:, 2], cfg)


@pytest.mark.parametrize("cfg", [TINY_CONFIG, REFERENCE_CONFIG], ids=["plain", "reference"])
def test_anchor_masking_keeps_the_hand_channel(cfg) -> None:
    cond = torch.rand(2, cfg.condition_channels, 3, 4, 4) + 0.1
    masked = mask_explicit_anchor(cond, torch.tensor([False, True]), cfg)
    c, hands = cfg.out_channels, cfg.trunk_condition_channels
    assert not masked[0, : c + 1].any()  # reprojection and validity gone
    torch.testing.assert_close(masked[0, c + 1 : hands], cond[0, c + 1 : hands])  # hands stay
    assert not masked[0, hands:].any()  # and the provenance goes with its anchor
    torch.testing.assert_close(masked[1], cond[1])
