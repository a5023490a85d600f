"""Training conditions are the runtime's conditions: same memory, splat, codec and layout."""

from __future__ import annotations

import torch

from sim_env.checkpoints import save_checkpoint
from sim_env.model.dit import CausalDiT
from sim_env.runtime import GenerativeRuntime
from sim_env.training.conditions import clip_condition, ground_truth_reprojections, hand_maps
from sim_env.training.data import collate_windows, open_datasets
from sim_env.training.diffusion_forcing import mask_explicit_anchor
from tests.sim_env.training.tiny_data import MEMORY_CAPACITY, TINY_CONFIG


def test_condition_of_a_recorded_frame_equals_what_the_runtime_builds(tiny_data: dict, tmp_path) -> None:
    cfg = TINY_CONFIG
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


def test_anchor_masking_keeps_the_hand_channel() -> None:
    cond = torch.rand(2, TINY_CONFIG.condition_channels, 3, 4, 4) + 0.1
    masked = mask_explicit_anchor(cond, torch.tensor([False, True]), TINY_CONFIG.out_channels)
    c = TINY_CONFIG.out_channels
    assert not masked[0, : c + 1].any()  # reprojection and validity gone
    torch.testing.assert_close(masked[0, c + 1 :], cond[0, c + 1 :])  # hands stay
    torch.testing.assert_close(masked[1], cond[1])
