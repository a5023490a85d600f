"""Checkpoints: safetensors round trip with config metadata; prefixed / nested foreign state dicts."""

import dataclasses

import torch

from sim_env.checkpoints import load_checkpoint, load_compatible, save_checkpoint, strip_prefixes
from sim_env.model import CONFIGS, CausalDiT, DiTConfig

SMALL = dataclasses.replace(CONFIGS["tiny64"], name="small", dim=32, num_layers=2, num_heads=2, ffn_dim=64)


def _model(seed):
    torch.manual_seed(seed)
    return CausalDiT(SMALL)


def test_strip_prefixes_any_order():
    assert strip_prefixes("model._orig_mod.blocks.0.ffn.0.weight") == "blocks.0.ffn.0.weight"
    assert strip_prefixes("_fsdp_wrapped_module.module.model.head.head.bias") == "head.head.bias"
    assert strip_prefixes("_orig_mod._fsdp_wrapped_module.patch_embedding.weight") == "patch_embedding.weight"
    assert strip_prefixes("blocks.0.modulation") == "blocks.0.modulation"


def test_safetensors_round_trip_with_config(tmp_path):
    src = _model(0)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(src, path)
    state, config = load_checkpoint(path)
    assert config == SMALL and isinstance(config, DiTConfig)
    assert set(state) == set(src.state_dict())
    dst = _model(1)
    report = load_compatible(dst, path)
    assert report.ok and not report.unexpected and not report.expanded
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    assert DiTConfig.from_json(SMALL.to_json()) == SMALL


def test_self_forcing_style_checkpoint_loads_with_no_missing_keys(tmp_path):
    src = _model(0)
    prefixes = ["model._orig_mod.", "model._fsdp_wrapped_module.", "module.", "_orig_mod.model."]
    prefixed = {prefixes[i % len(prefixes)] + k: v for i, (k, v) in enumerate(src.state_dict().items())}
    prefixed["model._orig_mod.extra_buffer"] = torch.zeros(3)
    path = tmp_path / "checkpoint_model_001000.pt"
    torch.save({"generator_ema": prefixed, "step": 1000}, path)
    dst = _model(1)
    report = load_compatible(dst, path)
    assert report.missing == [] and report.mismatched == [] and report.ok
    assert report.unexpected == ["extra_buffer"]
    assert torch.equal(dst.blocks[1].modulation, src.blocks[1].modulation)


def test_mismatched_shapes_are_reported_not_loaded():
    dst = _model(1)
    before = dst.head.head.weight.clone()
    state = {"head.head.weight": torch.zeros(3, 3)}
    report = load_compatible(dst, state)
    assert report.mismatched == ["head.head.weight"] and "head.head.weight" not in report.missing
    assert torch.equal(dst.head.head.weight, before) and not report.ok
