"""Other spots' voxels in the gaps of the start's own views are left empty (`sim_env.memory.primary_gaps`)."""

from __future__ import annotations

import torch

from sim_env.memory.primary_gaps import PRIMARY_GAP_RADIUS, primary_gaps


def _level(rows: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pin levels from characters: '2' primary, '1' another spot's pin, '0' unpinned, '.' empty."""
    level = torch.tensor([[0.0 if c == "." else float(c) for c in row] for row in rows])[None]
    valid = torch.tensor([[c != "." for c in row] for row in rows])[None]
    return level, valid


def test_a_narrow_gap_is_hidden_and_a_wider_region_stays() -> None:
    r = PRIMARY_GAP_RADIUS
    level = torch.full((1, 30, 30), 2.0)
    level[0, 2:8, 3] = 1.0  # a one-pixel gap
    level[0, 2:8, 6 : 6 + r] = 1.0  # the widest gap the radius closes all of
    level[0, 10 : 10 + 2 * r + 1, 10 : 10 + 2 * r + 1] = 1.0  # a patch of another spot's content
    valid = torch.ones_like(level, dtype=torch.bool)
    hidden = primary_gaps(level, valid)[0]
    assert hidden[2:8, 3].all() and hidden[2:8, 6 : 6 + r].all()
    # Wider than 2·r on both axes: no pixel of it has the primary within r on both sides.
    assert not hidden[10 : 10 + 2 * r + 1, 10 : 10 + 2 * r + 1].any()
    assert not hidden[level[0] > 1.5].any()


def test_only_other_spots_pins_are_hidden_and_the_image_edge_encloses() -> None:
    level, valid = _level(
        [
            "1220222.22222",
            "2222222222221",
        ]
    )
    hidden = primary_gaps(level, valid)[0]
    assert hidden[0, 0] and hidden[1, 12]  # at the edge, the inner side is enough
    assert not hidden[0, 3] and not hidden[0, 7]  # generated voxels and empty pixels are the model's


def test_one_spot_memories_have_nothing_to_hide() -> None:
    level, valid = _level(["1111", "1.11", "1101"])
    assert not primary_gaps(level, valid).any()
