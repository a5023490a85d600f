"""wan2.1-1.3b built on the meta device matches the public Wan2.1-T2V-1.3B parameter layout."""

import dataclasses

import torch

from sim_env.checkpoints import load_compatible
from sim_env.model import CONFIGS, CausalDiT, count_parameters

# Wan2.1-T2V-1.3B (Wan-Video/Wan2.1 wan/modules/model.py, config t2v_1_3B): dim 1536, ffn 8960,
# 30 layers, 12 heads, freq_dim 256, text_dim 4096, in/out 16 latent channels, patch (1, 2, 2).
DIM, FFN, LAYERS, FREQ, TEXT, LATENT, PATCH = 1536, 8960, 30, 256, 4096, 16, (1, 2, 2)


def wan_t2v_1_3b_layout():
    shapes = {
        "patch_embedding.weight": (DIM, LATENT, *PATCH),
        "patch_embedding.bias": (DIM,),
        "text_embedding.0.weight": (DIM, TEXT),
        "text_embedding.0.bias": (DIM,),
        "text_embedding.2.weight": (DIM, DIM),
        "text_embedding.2.bias": (DIM,),
        "time_embedding.0.weight": (DIM, FREQ),
        "time_embedding.0.bias": (DIM,),
        "time_embedding.2.weight": (DIM, DIM),
        "time_embedding.2.bias": (DIM,),
        "time_projection.1.weight": (6 * DIM, DIM),
        "time_projection.1.bias": (6 * DIM,),
        "head.head.weight": (LATENT * 4, DIM),
        "head.head.bias": (LATENT * 4,),
        "head.modulation": (1, 2, DIM),
    }
    for n in range(LAYERS):
        for attn in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                shapes[f"blocks.{n}.{attn}.{proj}.weight"] = (DIM, DIM)
                shapes[f"blocks.{n}.{attn}.{proj}.bias"] = (DIM,)
            shapes[f"blocks.{n}.{attn}.norm_q.weight"] = (DIM,)
            shapes[f"blocks.{n}.{attn}.norm_k.weight"] = (DIM,)
        shapes[f"blocks.{n}.norm3.weight"] = (DIM,)
        shapes[f"blocks.{n}.norm3.bias"] = (DIM,)
        shapes[f"blocks.{n}.ffn.0.weight"] = (FFN, DIM)
        shapes[f"blocks.{n}.ffn.0.bias"] = (FFN,)
        shapes[f"blocks.{n}.ffn.2.weight"] = (DIM, FFN)
        shapes[f"blocks.{n}.ffn.2.bias"] = (DIM,)
        shapes[f"blocks.{n}.modulation"] = (1, 6, DIM)
    return shapes


def _meta_model(cfg):
    with torch.device("meta"):
        return CausalDiT(cfg)


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_plain_backbone_matches_wan_t2v_1_3b_exactly():
    cfg = dataclasses.replace(CONFIGS["wan2.1-1.3b"], conditioned=False, camera_embedding=False)
    model = _meta_model(cfg)
    assert _shapes(model) == wan_t2v_1_3b_layout()
    assert 1.40e9 < count_parameters(model) < 1.43e9  # "1.3B": 1,418,996,800 parameters


def test_genworld_config_adds_only_camera_and_condition_channels():
    cfg = CONFIGS["wan2.1-1.3b"]
    shapes, expected = _shapes(_meta_model(cfg)), wan_t2v_1_3b_layout()
    extra = set(shapes) - set(expected)
    assert set(expected) <= set(shapes)
    assert extra == {f"camera_embedding.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    differing = {k for k in expected if shapes[k] != expected[k]}
    assert differing == {"patch_embedding.weight"}
    assert shapes["patch_embedding.weight"] == (DIM, LATENT + LATENT + 1 + 1, *PATCH)


def test_wan_t2v_checkpoint_widens_patch_embedding():
    small = dataclasses.replace(
        CONFIGS["tiny64"], name="small", dim=32, num_layers=1, num_heads=2, ffn_dim=64
    )
    wan_like = CausalDiT(dataclasses.replace(small, conditioned=False, camera_embedding=False))
    ours = CausalDiT(small)
    report = load_compatible(ours, {f"model.{k}": v for k, v in wan_like.state_dict().items()})
    assert report.expanded == ["patch_embedding.weight"] and not report.unexpected and not report.mismatched
    assert report.missing == sorted(f"camera_embedding.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))
    w = ours.patch_embedding.weight
    assert torch.equal(w[:, : small.out_channels], wan_like.patch_embedding.weight)
    assert (w[:, small.out_channels :] == 0).all()
