"""The anchor gate: the blend rule, the gated DiT, the sampler copying an open anchor, old checkpoints,
the hole-filled anchor and the reference-provenance offset."""

import dataclasses

import pytest
import torch

from sim_env.checkpoints import load_compatible
from sim_env.model import CONFIGS, CausalDiT
from sim_env.model.anchor_gate import GATE_MIN_SIGMA, anchor_blend, fill_anchor_holes, reference_with_gaps
from sim_env.model.dit import GATE_INIT_LOGIT
from sim_env.sampler import FlowSampler, FlowSchedule
from tests.sim_env.micro_configs import MICRO

GATED = dataclasses.replace(MICRO, name="micro-gated", anchor_gate=True)
PLAIN = dataclasses.replace(GATED, anchor_gate=False)


def _inputs(cfg, batch=2, frames=2, seed=1, validity=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.out_channels, frames, cfg.height, cfg.width, generator=g)
    cond = torch.randn(batch, cfg.condition_channels, frames, cfg.height, cfg.width, generator=g)
    cond[:, cfg.out_channels] = validity
    t = 100.0 + torch.rand(batch, frames, generator=g) * 900.0
    return x, t, cond


def _shape(batch=2, frames=3, size=4):
    g = torch.Generator().manual_seed(0)
    x, v, a = (torch.randn(batch, 4, frames, size, size, generator=g) for _ in range(3))
    t = torch.tensor([[1000.0, 500.0, 100.0]] * batch)
    return x, t, v, a


def test_blend_is_the_identity_where_the_anchor_is_invalid():
    x, t, v, a = _shape()
    zero = torch.zeros_like(x[:, :1])
    assert torch.equal(anchor_blend(x, t, v, a, zero, torch.full_like(zero, 9.0)), v)


def test_open_gate_makes_the_clean_estimate_the_anchor():
    x, t, v, a = _shape()
    one = torch.ones_like(x[:, :1])
    blended = anchor_blend(x, t, v, a, one, torch.full_like(one, 60.0))  # sigmoid(60) == 1 in fp32
    sigma = (t / 1000.0)[:, None, :, None, None]
    torch.testing.assert_close(x - sigma * blended, a, rtol=1e-5, atol=1e-5)


def test_partial_gate_interpolates_between_synthesis_and_anchor():
    x, t, v, a = _shape()
    logit = torch.randn(x[:, :1].shape, generator=torch.Generator().manual_seed(3))
    validity = torch.rand(x[:, :1].shape, generator=torch.Generator().manual_seed(4))
    blended = anchor_blend(x, t, v, a, validity, logit)
    sigma = (t / 1000.0)[:, None, :, None, None]
    synthesis = x - sigma * v
    w = torch.sigmoid(logit) * validity
    torch.testing.assert_close(x - sigma * blended, synthesis + w * (a - synthesis), rtol=1e-5, atol=1e-5)


def test_blend_stays_finite_at_sigma_zero():
    """History frames sit at σ = 0 with a zero anchor; tiny σ divides by GATE_MIN_SIGMA at most."""
    x, t, v, a = _shape()
    t = torch.zeros_like(t)
    one = torch.ones_like(x[:, :1])
    out = anchor_blend(x, t, v, a, one, torch.zeros_like(one))
    assert torch.isfinite(out).all()
    assert (out - v).abs().max() <= (0.5 * (a - x).abs().max() / GATE_MIN_SIGMA) + 1e-4


def test_gated_dit_without_anchor_matches_the_plain_head():
    torch.manual_seed(0)
    gated = CausalDiT(GATED).eval()
    plain = CausalDiT(PLAIN).eval()
    report = load_compatible(plain, gated.state_dict())
    assert report.unexpected == ["head.gate.bias", "head.gate.weight"] and not report.missing
    x, t, cond = _inputs(GATED, validity=0.0)
    with torch.no_grad():
        torch.testing.assert_close(gated(x, t, cond), plain(x, t, cond))
        torch.testing.assert_close(gated(x, t, None), plain(x, t, None))  # the cache pass: no anchor
        x2, t2, cond2 = _inputs(GATED, validity=1.0)
        assert not torch.allclose(gated(x2, t2, cond2), plain(x2, t2, cond2))


def test_sampler_copies_a_valid_anchor_through_an_open_gate():
    """Gate fully open, anchor valid everywhere: the few-step sample is the anchor itself."""
    torch.manual_seed(0)
    model = CausalDiT(GATED).eval()
    with torch.no_grad():
        model.head.gate.bias.fill_(60.0)
    _, _, cond = _inputs(GATED, frames=1, validity=1.0)
    anchor = cond[:, : GATED.out_channels].transpose(1, 2)  # (B, T, C, H, W)

    def velocity(x, sigma, c):
        return model(x.transpose(1, 2), 1000.0 * sigma, c).transpose(1, 2)

    sampler = FlowSampler(velocity, FlowSchedule.uniform(4, shift=5.0))
    noise = torch.randn(anchor.shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        sample = sampler.sample(noise, cond)
    torch.testing.assert_close(sample, anchor, rtol=1e-4, atol=1e-4)


def test_colour_only_gate_copies_the_colour_and_leaves_the_depth_to_the_model():
    """``anchor_gate_channels=3``: an open gate copies the anchor's colour; depth is the plain head's."""
    colour_gated = dataclasses.replace(GATED, anchor_gate_channels=3)
    torch.manual_seed(0)
    model = CausalDiT(colour_gated).eval()
    plain = CausalDiT(PLAIN).eval()
    load_compatible(plain, model.state_dict())
    with torch.no_grad():
        model.head.gate.bias.fill_(60.0)
    _, _, cond = _inputs(colour_gated, frames=1, validity=1.0)
    # (the sampled depth is not compared with the plain model's: after the first step the model
    # sees the gated colour in its input)
    anchor = cond[:, : colour_gated.out_channels].transpose(1, 2)

    def sample(net: CausalDiT) -> torch.Tensor:
        def velocity(x, sigma, c):
            return net(x.transpose(1, 2), 1000.0 * sigma, c).transpose(1, 2)

        noise = torch.randn(anchor.shape, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            return FlowSampler(velocity, FlowSchedule.uniform(4, shift=5.0)).sample(noise, cond)

    gated_sample = sample(model)
    torch.testing.assert_close(gated_sample[:, :, :3], anchor[:, :, :3], rtol=1e-4, atol=1e-4)
    # Depth at the first step is the plain head's (afterwards it sees the gated colour as input).
    x = torch.randn(2, 4, 1, colour_gated.height, colour_gated.width)
    t = torch.full((2, 1), 700.0)
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, cond)[:, 3:], plain(x, t, cond)[:, 3:])
    assert not torch.allclose(gated_sample[:, :, 3:], anchor[:, :, 3:], atol=1e-2)
    with pytest.raises(ValueError, match="anchor_gate_channels"):
        dataclasses.replace(GATED, anchor_gate_channels=5)


def test_checkpoint_without_gate_loads_with_a_mostly_closed_gate():
    torch.manual_seed(0)
    plain = CausalDiT(PLAIN)
    gated = CausalDiT(GATED)
    report = load_compatible(gated, plain.state_dict())
    assert report.missing == ["head.gate.bias", "head.gate.weight"] and not report.mismatched
    assert torch.equal(gated.head.head.weight, plain.head.head.weight)
    assert torch.all(gated.head.gate.weight == 0) and torch.all(gated.head.gate.bias == GATE_INIT_LOGIT)


def test_anchor_gate_needs_a_conditioned_config():
    with pytest.raises(ValueError, match="anchor_gate"):
        dataclasses.replace(GATED, conditioned=False)


def test_shipped_configs_do_not_gate():
    """Measured on tiny64 (docs/model.md): better at step 1, worse at 128 and on loops - off."""
    assert not CONFIGS["tiny64"].anchor_gate and not CONFIGS["wan2.1-1.3b"].anchor_gate
    assert CONFIGS["tiny64-colour-gate"].anchor_gate_channels == 3


def test_hole_filling_grows_one_ring_per_sweep_and_keeps_known_pixels():
    anchor = torch.zeros(1, 3, 2, 7, 7)
    validity = torch.zeros(1, 1, 2, 7, 7)
    anchor[:, :, 0, 3, 3] = torch.tensor([1.0, 2.0, 3.0])  # frame 0: one known pixel in the middle
    validity[:, :, 0, 3, 3] = 1.0
    anchor[:, :, 0, 3, 4] = 9.0  # a value under an invalid pixel must not leak
    filled, known = fill_anchor_holes(anchor, validity, sweeps=1)
    assert known[0, 0, 0].sum() == 9 and known[0, 0, 0, 2:5, 2:5].all()  # the 3×3 ring around it
    assert torch.equal(filled[0, :, 0, 2, 4], torch.tensor([1.0, 2.0, 3.0]))
    assert not known[0, 0, 1].any() and not filled[0, :, 1].any()  # nothing to grow from in frame 1
    filled, known = fill_anchor_holes(anchor, validity, sweeps=3)
    assert known[0, 0, 0].all() and torch.equal(filled[0, :, 0, 0, 0], torch.tensor([1.0, 2.0, 3.0]))
    # A hole between two known colours takes their mean; known pixels keep their own value.
    anchor, validity = torch.zeros(1, 1, 1, 1, 3), torch.tensor([[[[[1.0, 0.0, 1.0]]]]])
    anchor[..., 0], anchor[..., 2] = 2.0, 4.0
    filled, known = fill_anchor_holes(anchor, validity, sweeps=1)
    assert filled.flatten().tolist() == [2.0, 3.0, 4.0] and known.all()
    assert torch.equal(fill_anchor_holes(anchor, validity, 0)[0], anchor)


def test_filled_gate_copies_the_anchor_into_its_holes():
    """``anchor_gate_fill``: an open gate also copies the anchor's colour where the splat had holes."""
    filled_cfg = dataclasses.replace(GATED, anchor_gate_channels=3, anchor_gate_fill=8)
    torch.manual_seed(0)
    model = CausalDiT(filled_cfg).eval()
    with torch.no_grad():
        model.head.gate.bias.fill_(60.0)
    x, t, cond = _inputs(filled_cfg, frames=1, validity=0.0)
    cond[:, :3] = 0.5  # one flat colour, known on every other column only
    cond[:, filled_cfg.out_channels, ..., ::2] = 1.0
    with torch.no_grad():
        velocity = model(x, t, cond)
    sigma = (t / 1000.0)[:, None, :, None, None]
    clean = x[:, :3] - sigma * velocity[:, :3]
    torch.testing.assert_close(clean, torch.full_like(clean, 0.5), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="anchor_gate_fill"):
        dataclasses.replace(PLAIN, anchor_gate_fill=4)


REFERENCE = dataclasses.replace(GATED, anchor_gate_channels=3, anchor_gate_reference=True)


def _clean_colour(model: CausalDiT, x, t, cond) -> torch.Tensor:
    with torch.no_grad():
        velocity = model(x, t, cond)
    sigma = (t / 1000.0)[:, None, :, None, None]
    return x[:, :3] - sigma * velocity[:, :3]


def test_reference_channel_reaches_only_the_gate():
    """β = 0 is the colour gate exactly, whatever the provenance says; the trunk never reads it."""
    colour = dataclasses.replace(REFERENCE, anchor_gate_reference=False)
    assert REFERENCE.condition_channels == colour.condition_channels + 1
    assert REFERENCE.in_channels == colour.in_channels
    torch.manual_seed(0)
    model = CausalDiT(REFERENCE).eval()
    plain = CausalDiT(colour).eval()
    report = load_compatible(model, plain.state_dict())
    assert report.missing == ["head.gate_reference"] and float(model.head.gate_reference.detach()) == 0.0
    x, t, cond = _inputs(REFERENCE, validity=1.0)
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, cond), plain(x, t, cond[:, :-1]))
        flipped = cond.clone()
        flipped[:, -1] = 1.0 - (cond[:, -1] > 0).float()
        torch.testing.assert_close(model(x, t, flipped), model(x, t, cond))
        model.head.gate_reference.fill_(5.0)
        # With β ≠ 0 only the gated colour depends on the provenance, never the depth.
        torch.testing.assert_close(model(x, t, flipped)[:, 3:], model(x, t, cond)[:, 3:])
        assert not torch.allclose(model(x, t, flipped)[:, :3], model(x, t, cond)[:, :3])


def test_reference_offset_opens_the_gate_on_reference_pixels_only():
    torch.manual_seed(0)
    model = CausalDiT(REFERENCE).eval()
    closed = CausalDiT(REFERENCE).eval()
    closed.load_state_dict(model.state_dict())
    with torch.no_grad():
        for net in (model, closed):
            net.head.gate.bias.fill_(-30.0)  # the network's own gate shut
        model.head.gate_reference.fill_(60.0)  # the reference forces it open
    x, t, cond = _inputs(REFERENCE, frames=1, validity=1.0)
    reference = torch.zeros_like(cond[:, -1])
    reference[..., : REFERENCE.width // 2] = 1.0  # left half observed, right half generated
    cond[:, -1] = reference
    clean = _clean_colour(model, x, t, cond)
    left, right = (..., slice(None, REFERENCE.width // 2)), (..., slice(REFERENCE.width // 2, None))
    torch.testing.assert_close(clean[left], cond[:, :3][left], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(clean[right], _clean_colour(closed, x, t, cond)[right], rtol=1e-4, atol=1e-4)


def test_reference_passthrough_copies_the_reference_whatever_beta_says():
    """β → ∞: reference pixels take the anchor exactly; generated pixels and depth are untouched."""
    torch.manual_seed(0)
    model = CausalDiT(REFERENCE).eval()
    with torch.no_grad():
        model.head.gate.bias.fill_(-30.0)  # even a shut gate and β = 0 cannot stop it
    x, t, cond = _inputs(REFERENCE, frames=1, validity=1.0)
    reference = torch.zeros_like(cond[:, -1])
    reference[..., : REFERENCE.width // 2] = 1.0
    cond[:, -1] = reference
    with torch.no_grad():
        learned, passed = model(x, t, cond), model(x, t, cond, reference_passthrough=True)
    sigma = (t / 1000.0)[:, None, :, None, None]
    clean = x[:, :3] - sigma * passed[:, :3]
    left, right = (..., slice(None, REFERENCE.width // 2)), (..., slice(REFERENCE.width // 2, None))
    torch.testing.assert_close(clean[left], cond[:, :3][left], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(learned[:, :3][left], passed[:, :3][left])
    torch.testing.assert_close(passed[:, :3][right], learned[:, :3][right])
    torch.testing.assert_close(passed[:, 3:], learned[:, 3:])
    assert torch.isfinite(passed).all()
    allowed = torch.ones_like(reference[:, None], dtype=torch.bool)
    allowed[..., : REFERENCE.width // 4] = False  # e.g. a hand's box
    with torch.no_grad():
        limited = model(x, t, cond, reference_passthrough=allowed)
    quarter, rest = (..., slice(None, REFERENCE.width // 4)), (..., slice(REFERENCE.width // 4, None))
    torch.testing.assert_close(limited[:, :3][quarter], learned[:, :3][quarter])
    torch.testing.assert_close(limited[:, :3][rest], passed[:, :3][rest])


def test_reference_gaps_are_the_holes_between_reference_pixels():
    """Gaps between reference pixels are copied; a wide hole's rim and generated pixels are not."""
    validity = torch.zeros(2, 1, 1, 1, 12)
    reference = torch.zeros_like(validity)
    validity[0, ..., [0, 2, 4, 6, 8]] = 1.0  # image 0: reference 0, 2, 4; generated 6, 8
    reference[0, ..., [0, 2, 4]] = 1.0
    validity[1, ..., :4] = reference[1, ..., :4] = 1.0  # image 1: a reference wall, then a wide hole
    copied = reference_with_gaps(reference, validity, sweeps=2)[:, 0, 0, 0]
    assert copied[0, :5].all()  # the splat and its gaps
    assert not copied[0, 5:].any()  # the hole beside generated pixels, the generated ones, beyond
    assert copied[1, :4].all() and not copied[1, 4:].any()  # the wall is not grown into the hole
    gap = torch.zeros(1, 1, 1, 1, 12)
    gap[..., [0, 1, 7, 8]] = 1.0  # a five-pixel gap is wider than the closing
    assert not reference_with_gaps(gap, gap, sweeps=2)[0, 0, 0, 0, 2:7].any()
    gap[..., 6] = 1.0  # four pixels close
    assert reference_with_gaps(gap, gap, sweeps=2)[0, 0, 0, 0, :9].all()


def test_reference_passthrough_copies_the_filled_anchor_into_the_splat_gaps():
    filled = dataclasses.replace(REFERENCE, anchor_gate_fill=4)
    torch.manual_seed(0)
    model = CausalDiT(filled).eval()
    with torch.no_grad():
        model.head.gate.bias.fill_(-30.0)
    x, t, cond = _inputs(filled, frames=1, validity=0.0)
    cond[:, :3] = 0.25  # one flat surface...
    cond[:, filled.out_channels, ..., ::2] = 1.0  # ...splatted into every other column
    cond[:, -1] = cond[:, filled.out_channels]  # all of it from the reference
    with torch.no_grad():
        passed = model(x, t, cond, reference_passthrough=True)
    sigma = (t / 1000.0)[:, None, :, None, None]
    clean = x[:, :3] - sigma * passed[:, :3]
    torch.testing.assert_close(clean, torch.full_like(clean, 0.25), rtol=1e-4, atol=1e-4)


def test_reference_provenance_needs_a_pixel_space_gate():
    with pytest.raises(ValueError, match="anchor_gate_reference"):
        dataclasses.replace(PLAIN, anchor_gate_reference=True)
    assert CONFIGS["tiny64-colour-gate-ref"].anchor_gate_reference
