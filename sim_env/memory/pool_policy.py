"""Memory-pool policy for the DiT's fixed-shape ST-cache (InSpatio-World §3.2.1, WorldScape §2.4).

The ST-cache keeps a bounded pool of past K/V entries between the sink anchor and the
local window. Each entry is tagged with the camera that produced it, and three decisions
are made from those poses alone (pure functions over batched tensors, static shapes,
masks for empty slots, no host synchronisation):

- Selection (view-guided): the entries attended to for a target view are the top-k by
  S(i, j) = v_i . v_j - alpha * ||t_i - t_j||, v the unit viewing direction (the OpenCV
  camera's +z axis in the world) and t the camera centre. Aligned views close by are the
  likeliest to show the same content.
- Admission (MDL-style deduplication): WorldScape frames the pool as a description of the
  scene that should carry as little mutual information between entries as possible, and
  greedily asks of each entry leaving the local window how "surprising" it is given the
  pool: if the pool already reconstructs it well, storing it again only costs budget.
  We measure reconstructibility by the same view score: an entry is admitted only if its
  best match in the pool scores below `dedup_threshold` (a near-duplicate viewpoint
  sees near-duplicate content). The paper scores with key cosine similarity; poses give
  the same gate without reading K/V, and keep the decision independent of the model.
- Pruning (farthest-point sampling over poses): when an admitted entry finds the pool
  full, FPS with d(i, j) = ||t_i - t_j|| + lambda * ||v_i - v_j||, seeded at the candidate
  (it already passed the novelty gate), keeps the `budget` most spread-out viewpoints;
  the one entry FPS leaves out is the most redundant and its slot is reused.
"""

from __future__ import annotations

import torch

DEFAULT_ALPHA = 0.5  # score per metre of camera distance vs. one unit of direction cosine
# Admit when the best pool match scores below this: with alpha = 0.5 a view must turn by
# more than ~26 degrees or move more than ~0.2 m from every pool entry.
DEFAULT_DEDUP_THRESHOLD = 0.9
DEFAULT_ROTATION_WEIGHT = 1.0  # lambda in the FPS distance: metres per unit of ||v_i - v_j||
NEG_INF = float("-inf")


def camera_centre_and_direction(poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera centres t (..., 3) and unit viewing directions v (..., 3) of c2w poses (..., 4, 4)."""
    v = poses[..., :3, 2]
    return poses[..., :3, 3], v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-12)


def view_score(query_pose: torch.Tensor, entry_poses: torch.Tensor, alpha: float) -> torch.Tensor:
    """S(q, j) = v_q . v_j - alpha ||t_q - t_j||; query (B, 4, 4), entries (B, P, 4, 4) -> (B, P)."""
    tq, vq = camera_centre_and_direction(query_pose)
    te, ve = camera_centre_and_direction(entry_poses)
    return (ve * vq[:, None]).sum(-1) - alpha * torch.linalg.vector_norm(te - tq[:, None], dim=-1)


def pose_distance(a: torch.Tensor, b: torch.Tensor, rotation_weight: float) -> torch.Tensor:
    """FPS distance d = ||t_a - t_b|| + lambda ||v_a - v_b||, broadcasting over leading dims."""
    ta, va = camera_centre_and_direction(a)
    tb, vb = camera_centre_and_direction(b)
    return torch.linalg.vector_norm(ta - tb, dim=-1) + rotation_weight * torch.linalg.vector_norm(
        va - vb, dim=-1
    )


def select_top_k(
    entry_poses: torch.Tensor, entry_valid: torch.Tensor, target_pose: torch.Tensor, k: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best entries by view score: (indices (B, k), mask (B, k), scores (B, k)), best first.

    Empty slots score -inf and come last with mask False (when fewer than k are valid).
    """
    score = view_score(target_pose, entry_poses, alpha).masked_fill(~entry_valid, NEG_INF)
    top, idx = torch.topk(score, k, dim=1)
    return idx, torch.gather(entry_valid, 1, idx), top


def farthest_point_keep(
    poses: torch.Tensor, valid: torch.Tensor, n: int, rotation_weight: float, seed: torch.Tensor | None = None
) -> torch.Tensor:
    """Farthest-point sampling over poses: a (B, P) keep mask with min(n, #valid) True per row.

    Args:
        poses: (B, P, 4, 4) camera-to-world.
        valid: (B, P) bool, empty slots are never kept.
        n: how many to keep (a Python int: the loop length is static).
        rotation_weight: lambda in the pose distance.
        seed: (B,) index of the first pick; default the first valid slot.
    """
    B, P = valid.shape
    dist = pose_distance(poses[:, :, None], poses[:, None, :], rotation_weight)  # (B, P, P)
    current = valid.long().argmax(dim=1) if seed is None else seed
    keep = torch.zeros_like(valid)
    # Distance of every slot to the kept set; -inf for empty or kept slots (never picked).
    to_set = torch.where(valid, torch.full_like(dist[:, 0], float("inf")), NEG_INF)
    for _ in range(min(n, P)):
        # `current` is a fresh valid slot unless every valid slot is already kept.
        fresh = to_set.gather(1, current[:, None]) > NEG_INF
        keep.scatter_(1, current[:, None], keep.gather(1, current[:, None]) | fresh)
        d = torch.gather(dist, 1, current[:, None, None].expand(B, 1, P))[:, 0]
        to_set = torch.minimum(to_set, d).masked_fill(keep | ~valid, NEG_INF)
        current = to_set.argmax(dim=1)
    return keep & valid


class MemoryPoolPolicy:
    """Selection, admission and pruning for a memory pool of `budget` slots per world.

    Args:
        budget: pool slots (entry tensors have this length along dim 1).
        alpha: distance penalty of the view score, per metre.
        dedup_threshold: admit a candidate only if its best pool score is below this.
        rotation_weight: lambda of the FPS pose distance.
    """

    def __init__(
        self,
        budget: int,
        alpha: float = DEFAULT_ALPHA,
        dedup_threshold: float = DEFAULT_DEDUP_THRESHOLD,
        rotation_weight: float = DEFAULT_ROTATION_WEIGHT,
    ) -> None:
        if budget < 1:
            raise ValueError(f"budget must be positive, got {budget}")
        self.budget, self.alpha = int(budget), float(alpha)
        self.dedup_threshold, self.rotation_weight = float(dedup_threshold), float(rotation_weight)

    def select(
        self, entry_poses: torch.Tensor, entry_valid: torch.Tensor, target_pose: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k entries for a target view: (indices (B, k), mask (B, k)), best first."""
        idx, mask, _ = select_top_k(entry_poses, entry_valid, target_pose, k, self.alpha)
        return idx, mask

    def novelty(
        self, entry_poses: torch.Tensor, entry_valid: torch.Tensor, candidate_pose: torch.Tensor
    ) -> torch.Tensor:
        """(B,) best view score of the candidate against the pool (-inf for an empty pool)."""
        score = view_score(candidate_pose, entry_poses, self.alpha).masked_fill(~entry_valid, NEG_INF)
        return score.max(dim=1).values

    def admit(
        self, entry_poses: torch.Tensor, entry_valid: torch.Tensor, candidate_pose: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decides whether an entry leaving the local window enters the pool, and where.

        Args:
            entry_poses: (B, budget, 4, 4) poses of the pool slots.
            entry_valid: (B, budget) bool, occupied slots.
            candidate_pose: (B, 4, 4) pose of the leaving entry.

        Returns:
            slot: (B,) int64 slot to write (the first empty one, or the slot FPS prunes when
                full); meaningful only where admitted.
            admitted: (B,) bool, the candidate passed the dedup gate (FPS is seeded at the
                candidate, so an admitted one always survives pruning).
        """
        B, P = entry_valid.shape
        novel = self.novelty(entry_poses, entry_valid, candidate_pose) < self.dedup_threshold
        full = entry_valid.all(dim=1)
        first_empty = (~entry_valid).long().argmax(dim=1)
        # Full pool: FPS over pool + candidate (candidate at index P, the seed) keeps P;
        # the pool slot left out is the most redundant one.
        poses = torch.cat([entry_poses, candidate_pose[:, None]], dim=1)
        valid = torch.cat([entry_valid, torch.ones_like(entry_valid[:, :1])], dim=1)
        seed = torch.full((B,), P, dtype=torch.long, device=entry_valid.device)
        keep = farthest_point_keep(poses, valid, P, self.rotation_weight, seed)
        dropped = (~keep[:, :P]).long().argmax(dim=1)
        slot = torch.where(full, dropped, first_empty)
        return slot, novel

    def prune(
        self, entry_poses: torch.Tensor, entry_valid: torch.Tensor, n: int | None = None
    ) -> torch.Tensor:
        """(B, P) keep mask of at most `n` (default: budget) spread-out valid entries (FPS)."""
        return farthest_point_keep(
            entry_poses, entry_valid, self.budget if n is None else n, self.rotation_weight
        )
