"""MemoryPoolPolicy: view-guided selection, MDL-style dedup and farthest-point pruning."""

from __future__ import annotations

import math

import numpy as np
import torch

from bridge.conventions import look_at
from sim_env.memory import MemoryPoolPolicy
from sim_env.memory.pool_policy import view_score


def _pose(x: float, y: float, yaw_deg: float) -> np.ndarray:
    yaw = math.radians(yaw_deg)
    return look_at([x, y, 1.0], [x + math.cos(yaw), y + math.sin(yaw), 1.0])


def _poses(*specs: tuple[float, float, float]) -> torch.Tensor:
    return torch.as_tensor(np.stack([_pose(*s) for s in specs]))[None]  # (1, P, 4, 4)


def test_view_score_formula():
    a, b = _poses((0, 0, 0))[:, 0], _poses((0, 2, 90))
    # v_a . v_b = 0 (perpendicular), ||t_a - t_b|| = 2.
    torch.testing.assert_close(view_score(a, b, alpha=0.5), torch.tensor([[-1.0]], dtype=torch.float64))


def test_select_prefers_nearby_views_facing_the_same_way():
    policy = MemoryPoolPolicy(budget=6, alpha=0.5)
    entries = _poses(
        (5.0, 0.0, 0.0),  # 0: same direction, far
        (0.2, 0.0, 5.0),  # 1: near, almost the same direction  <- best
        (0.0, 0.3, 180.0),  # 2: near, facing away
        (0.5, 0.5, 20.0),  # 3: near-ish, similar direction       <- second
        (0.1, 0.0, 0.0),  # 4: best of all, but an empty slot
        (9.0, 9.0, 0.0),  # 5: far
    )
    valid = torch.tensor([[True, True, True, True, False, True]])
    target = _poses((0.0, 0.0, 0.0))[:, 0]
    idx, mask = policy.select(entries, valid, target, k=2)
    assert idx.tolist() == [[1, 3]] and mask.all()
    # More requested than valid: the empty slot comes last, masked.
    idx, mask = policy.select(entries, valid, target, k=6)
    assert idx[0, -1].item() == 4 and mask.tolist() == [[True] * 5 + [False]]


def test_admit_rejects_duplicate_and_admits_novel():
    policy = MemoryPoolPolicy(budget=4, alpha=0.5, dedup_threshold=0.9)
    entries = torch.cat([_poses((0, 0, 0), (2, 0, 0)), _poses((0, 0, 0), (0, 0, 0))], dim=1)
    valid = torch.tensor([[True, True, False, False]])
    dup = _poses((0.01, 0.0, 1.0))[:, 0]
    slot, admitted = policy.admit(entries, valid, dup)
    assert not admitted.item()
    novel_turn = _poses((0.0, 0.0, 90.0))[:, 0]
    novel_move = _poses((1.0, 0.0, 0.0))[:, 0]
    for candidate in (novel_turn, novel_move):
        slot, admitted = policy.admit(entries, valid, candidate)
        assert admitted.item() and slot.item() == 2  # the first empty slot
    # Empty pool: anything is novel.
    slot, admitted = policy.admit(entries, torch.zeros_like(valid), dup)
    assert admitted.item() and slot.item() == 0


def test_admit_into_full_pool_replaces_most_redundant():
    policy = MemoryPoolPolicy(budget=4)
    # Entries 1 and 2 nearly coincide: one of them is the redundant one.
    entries = _poses((0, 0, 0), (3, 0, 0), (3.05, 0, 0), (0, 3, 90))
    valid = torch.ones(1, 4, dtype=torch.bool)
    slot, admitted = policy.admit(entries, valid, _poses((-3, -3, 180))[:, 0])
    assert admitted.item() and slot.item() in (1, 2)


def test_prune_keeps_spread_out_poses_within_budget():
    policy = MemoryPoolPolicy(budget=4)
    corners = [(0, 0, 0), (10, 0, 0), (0, 10, 0), (10, 10, 0)]
    cluster = [(0.1, 0.0, 0.0), (0.0, 0.1, 0.0), (10.1, 10.0, 0.0), (9.9, 10.0, 0.0), (5, 5, 0)]
    entries = _poses(*(corners + cluster))
    valid = torch.ones(1, len(corners) + len(cluster), dtype=torch.bool)
    valid[0, -1] = False  # the centre is empty: never kept
    keep = policy.prune(entries, valid)
    assert int(keep.sum()) == 4
    # One kept pose per corner cluster.
    kept_t = entries[0, keep[0], :2, 3]
    corner_t = torch.tensor(corners, dtype=torch.float64)[:, :2]
    assert (torch.cdist(corner_t, kept_t).min(dim=1).values < 0.2).all()
    # Fewer valid than the budget: keep exactly the valid ones.
    few = torch.zeros_like(valid)
    few[0, [1, 5]] = True
    assert torch.equal(policy.prune(entries, few), few)


def test_pool_never_exceeds_budget_over_a_trajectory():
    budget = 5
    policy = MemoryPoolPolicy(budget=budget)
    B = 3
    poses = torch.eye(4, dtype=torch.float64).expand(B, budget, 4, 4).clone()
    valid = torch.zeros(B, budget, dtype=torch.bool)
    admitted_total = torch.zeros(B, dtype=torch.long)
    for step in range(60):
        cand = torch.as_tensor(np.stack([_pose(0.1 * step * (b + 1), 0.0, 7.0 * step) for b in range(B)]))
        slot, admitted = policy.admit(poses, valid, cand)
        rows = torch.arange(B)
        poses[rows[admitted], slot[admitted]] = cand[admitted]
        valid[rows[admitted], slot[admitted]] = True
        admitted_total += admitted.long()
        assert (valid.sum(dim=1) <= budget).all()
    assert (valid.sum(dim=1) == budget).all() and (admitted_total > budget).all()
