"""The anchor the model is given: the memory's splat and the render rules on it (`sim_env.anchor_view`)."""

from __future__ import annotations

import torch

from sim_env.anchor_view import AnchorRules, render_anchor
from sim_env.memory.point_cloud import PointCloudMemory

SIZE = 32
FX = 23.0
K = torch.tensor([[[FX, 0.0, 15.5], [0.0, FX, 15.5], [0.0, 0.0, 1.0]]])
POSE = torch.eye(4)[None]
MARGIN = 4.0


def _memory() -> PointCloudMemory:
    """A reference's far wall (pinned) with a near wall generated in front of it, every 4th pixel."""
    memory = PointCloudMemory(1, 8192, voxel_size=0.05)
    pin = torch.ones(1, SIZE, SIZE, dtype=torch.bool)
    memory.insert(
        torch.full((1, SIZE, SIZE, 3), 50.0), torch.full((1, SIZE, SIZE), 6.0), K, POSE, pin_mask=pin
    )
    near = torch.full((1, SIZE, SIZE), float("inf"))
    near[:, ::4, ::4] = 0.3
    memory.insert(torch.full((1, SIZE, SIZE, 3), 200.0), near, K, POSE)
    return memory


def test_without_rules_the_anchor_is_the_plain_splat() -> None:
    memory = _memory()
    rules = AnchorRules(
        0.0, with_pins=False, reference_depth=False, footprint_occlusion=False, sample_footprints=False
    )
    view = render_anchor(memory, K, POSE, SIZE, SIZE, 1, rules)
    plain = memory.render(K, POSE, SIZE, SIZE)
    assert all(torch.equal(a, b) for a, b in zip(view[:3], plain, strict=True))
    assert view.reference_depth is None


def test_the_collision_rule_reads_the_reference_before_occlusion_hides_it() -> None:
    memory = _memory()
    rules = AnchorRules(
        MARGIN, with_pins=True, reference_depth=True, footprint_occlusion=True, sample_footprints=False
    )
    view = render_anchor(memory, K, POSE, SIZE, SIZE, 1, rules)
    assert bool((view.values[0, :29, :29, 0] == 200.0).all())  # the near wall hides the reference
    assert view.values.shape[-1] == 4  # colour and the pin channel
    shown = torch.isfinite(view.reference_depth)
    assert float(shown.float().mean()) > 0.8 and bool((view.reference_depth[shown] == 6.0).all())
