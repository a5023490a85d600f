"""TAEHV Tiny-VAE: shapes, first-frame rule, streaming == parallel, fixed-size state, key layout."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sim_env.model.taehv import (
    TAEHV,
    TAEHV_TINY_TEST,
    TAEW2_1,
    TAEHVStreamingDecoder,
    load_taehv_state_dict,
)

B, C_LAT, H_LAT, W_LAT = 2, 16, 3, 4


@pytest.fixture(scope="module")
def model() -> TAEHV:
    torch.manual_seed(0)
    m = TAEHV(TAEHV_TINY_TEST).eval()
    with torch.no_grad():  # centre the random-init output so the [0, 1] clamp does not hide differences
        m.decoder[-1].bias.fill_(0.5)
    return m


def _latents(t: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(B, t, C_LAT, H_LAT, W_LAT, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("t", [1, 2, 5])
def test_parallel_decode_shape_first_frame_rule(model: TAEHV, t: int) -> None:
    with torch.no_grad():
        out = model.decode_video(_latents(t))
    assert out.shape == (B, 1 + 4 * (t - 1), 3, 8 * H_LAT, 8 * W_LAT)
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_streaming_equals_parallel(model: TAEHV) -> None:
    latents = _latents(6)
    with torch.no_grad():
        parallel = model.decode_video(latents)
    inside = ((parallel > 0) & (parallel < 1)).float().mean()
    assert inside > 0.5  # the comparison is not dominated by clamped values
    stream = TAEHVStreamingDecoder(model)
    chunks = [stream.decode(latents[:, i]) for i in range(latents.shape[1])]
    assert [c.shape[1] for c in chunks] == [1, 4, 4, 4, 4, 4]
    torch.testing.assert_close(torch.cat(chunks, 1), parallel, rtol=1e-5, atol=1e-5)
    # a reset starts an independent stream that reproduces the same frames
    stream.reset()
    again = torch.cat([stream.decode(latents[:, i]) for i in range(latents.shape[1])], 1)
    torch.testing.assert_close(again, parallel, rtol=1e-5, atol=1e-5)


def test_streaming_state_is_fixed_size_over_50_steps(model: TAEHV) -> None:
    state = model.init_decoder_state(1, 2, 2)
    shapes = [s.shape for s in state]
    assert len(state) == 9  # three MemBlocks in each of three stages
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _ in range(50):
            frames, state = model.decode_step(torch.randn(1, C_LAT, 2, 2, generator=g), state)
            assert frames.shape == (1, 4, 3, 16, 16)  # raw step: fixed shape, no trimming
            assert [s.shape for s in state] == shapes
    assert all(torch.isfinite(s).all() for s in state)


def test_encoder_shapes(model: TAEHV) -> None:
    frames = torch.rand(B, 9, 3, 8 * H_LAT, 8 * W_LAT)  # 9 = 1 + 4·2 frames pad to 12
    with torch.no_grad():
        lat = model.encode_video(frames)
    assert lat.shape == (B, 3, C_LAT, H_LAT, W_LAT)
    decoder_only = TAEHV(replace(TAEHV_TINY_TEST, with_encoder=False))
    assert set(decoder_only.state_dict()) == {k for k in model.state_dict() if k.startswith("decoder.")}
    with pytest.raises(RuntimeError):
        decoder_only.encode_video(frames)


# The public TAEHV layout (madebyollin/taehv `TAEHV.decoder` nn.Sequential), written out independently.
_MEMBLOCKS = {3: 256, 4: 256, 5: 256, 9: 128, 10: 128, 11: 128, 15: 64, 16: 64, 17: 64}
_EXPECTED_DECODER = {
    "decoder.1.weight": (256, 16, 3, 3),
    "decoder.1.bias": (256,),
    "decoder.7.conv.weight": (256, 256, 1, 1),  # TGrow ×1 (no temporal upsampling in stage 0)
    "decoder.8.weight": (128, 256, 3, 3),
    "decoder.13.conv.weight": (256, 128, 1, 1),  # TGrow ×2
    "decoder.14.weight": (64, 128, 3, 3),
    "decoder.19.conv.weight": (128, 64, 1, 1),  # TGrow ×2
    "decoder.20.weight": (64, 64, 3, 3),
    "decoder.22.weight": (3, 64, 3, 3),
    "decoder.22.bias": (3,),
}
for _i, _w in _MEMBLOCKS.items():
    _EXPECTED_DECODER |= {
        f"decoder.{_i}.conv.0.weight": (_w, 2 * _w, 3, 3),
        f"decoder.{_i}.conv.0.bias": (_w,),
        f"decoder.{_i}.conv.2.weight": (_w, _w, 3, 3),
        f"decoder.{_i}.conv.2.bias": (_w,),
        f"decoder.{_i}.conv.4.weight": (_w, _w, 3, 3),
        f"decoder.{_i}.conv.4.bias": (_w,),
    }


def test_decoder_keys_match_public_taew2_1_layout() -> None:
    with torch.device("meta"):
        full = TAEHV(TAEW2_1)
    sd = full.state_dict()
    dec = {k: tuple(v.shape) for k, v in sd.items() if k.startswith("decoder.")}
    assert dec == _EXPECTED_DECODER
    assert sum(p.numel() for p in full.decoder.parameters()) == 9_844_611
    assert all(k.startswith("encoder.") for k in sd if k not in dec)
    assert sd["encoder.0.weight"].shape == (64, 3, 3, 3) and sd["encoder.17.weight"].shape == (16, 64, 3, 3)


def test_load_public_style_checkpoint_decoder_only() -> None:
    cfg = replace(TAEHV_TINY_TEST, with_encoder=False)
    src = TAEHV(TAEHV_TINY_TEST)
    ckpt = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    # a checkpoint whose first TGrow was trained with temporal upsampling (2× output channels)
    ckpt["decoder.7.conv.weight"] = torch.randn(32, 16, 1, 1)
    dst = TAEHV(cfg)
    missing, unexpected = load_taehv_state_dict(dst, ckpt)
    assert missing == [] and unexpected == []
    torch.testing.assert_close(dst.decoder[7].conv.weight, ckpt["decoder.7.conv.weight"][16:])
    torch.testing.assert_close(dst.decoder[22].weight, ckpt["decoder.22.weight"])


def test_decode_step_has_no_data_dependent_host_work() -> None:
    """On the meta device any host sync or data-dependent shape would raise."""
    with torch.device("meta"):
        m = TAEHV(replace(TAEHV_TINY_TEST, with_encoder=False))
        state = m.init_decoder_state(B, H_LAT, W_LAT, device="meta")
        frames, new_state = m.decode_step(torch.empty(B, C_LAT, H_LAT, W_LAT), state)
    assert frames.shape == (B, 4, 3, 8 * H_LAT, 8 * W_LAT)
    assert [s.shape for s in new_state] == [s.shape for s in state]


# The public TAEHV encoder (madebyollin/taehv `TAEHV.encoder`): conv(3→64), ReLU, then three stages
# of [TPool(64, 2/2/1), conv(64→64, stride 2, no bias), 3 × MemBlock(64)], then conv(64→16).
_EXPECTED_ENCODER = {
    "encoder.0.weight": (64, 3, 3, 3),
    "encoder.0.bias": (64,),
    "encoder.2.conv.weight": (64, 128, 1, 1),  # TPool ×2
    "encoder.3.weight": (64, 64, 3, 3),
    "encoder.7.conv.weight": (64, 128, 1, 1),  # TPool ×2
    "encoder.8.weight": (64, 64, 3, 3),
    "encoder.12.conv.weight": (64, 64, 1, 1),  # TPool ×1
    "encoder.13.weight": (64, 64, 3, 3),
    "encoder.17.weight": (16, 64, 3, 3),
    "encoder.17.bias": (16,),
}
for _i in (4, 5, 6, 9, 10, 11, 14, 15, 16):
    _EXPECTED_ENCODER |= {
        f"encoder.{_i}.conv.0.weight": (64, 128, 3, 3),
        f"encoder.{_i}.conv.0.bias": (64,),
        f"encoder.{_i}.conv.2.weight": (64, 64, 3, 3),
        f"encoder.{_i}.conv.2.bias": (64,),
        f"encoder.{_i}.conv.4.weight": (64, 64, 3, 3),
        f"encoder.{_i}.conv.4.bias": (64,),
    }


@pytest.mark.parametrize("tgrow_trained_2x", [False, True])
def test_synthetic_taew2_1_state_dict_loads_with_no_missing_or_unexpected_keys(
    tgrow_trained_2x: bool,
) -> None:
    """A state dict with exactly the public taew2_1 names and shapes (the real file is not reachable here)."""
    gen = torch.Generator().manual_seed(0)
    layout = _EXPECTED_DECODER | _EXPECTED_ENCODER
    if tgrow_trained_2x:  # a file whose stage-0 TGrow was trained with temporal upsampling
        layout = layout | {"decoder.7.conv.weight": (512, 256, 1, 1)}
    state = {k: torch.randn(shape, generator=gen) for k, shape in layout.items()}
    model = TAEHV(TAEW2_1)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == _EXPECTED_DECODER | _EXPECTED_ENCODER
    missing, unexpected = load_taehv_state_dict(model, state)
    assert missing == [] and unexpected == []
    torch.testing.assert_close(model.encoder[2].conv.weight, state["encoder.2.conv.weight"])
    torch.testing.assert_close(model.decoder[7].conv.weight, state["decoder.7.conv.weight"][-256:])
    torch.testing.assert_close(model.decoder[22].bias, state["decoder.22.bias"])
