"""The free space a reference frame saw: generated geometry there contradicts ground truth.

A reference frame comes from the engine. Along each of its pixel rays, space is empty up to the
surface it measured. A generated frame whose depth puts a surface inside that empty space is
wrong there, and generated depth errs mostly near (docs/model.md). Inserted into the memory,
such a surface would cover the reference from then on: a world that comes back to where it
started finds its own drift in front of the ground truth, and the collision rule meets walls
that are not there. Volumetric fusion meets the same problem and solves it with space carving:
a surface observed at depth d empties the ray in front of it. `ReferenceFreeSpace` keeps the
generated pixels whose points fall in a reference's empty space out of the memory.

Two guards keep the test on the safe side. The reference depth is min-pooled over a 3×3
neighbourhood, so the edge of a thin foreground object, which may look up the background pixel
beside it, is never carved. A point counts as inside the empty space only when it is nearer
than ``1 - tolerance`` of that depth. Hands move, so space a reference saw empty may hold a hand
now: pixels near a stream's current hands are never carved (the box of
`sim_env.memory.reference_pin`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim_env.memory.reference_pin import hand_free_mask
from sim_env.memory.splat import lift_to_camera
from sim_env.stream_rows import commit_rows

DEFAULT_CARVE_TOLERANCE = 0.1


class ReferenceFreeSpace:
    """The reference cameras of N = B·A streams, and the test of points against their free space.

    Stream ``b·A + a`` is agent a of world b; the agents of a world share its memory, so a
    stream's points are tested against all A·V references of its world (V views per stream:
    the reset frame and its sweep, `sim_env.reference_sweep`).

    Args:
        num_worlds: B.
        agents_per_world: A.
        height: reference rows.
        width: reference columns.
        device: where the state lives.
        tolerance: a point is in a reference's free space when nearer than (1 − tolerance) of
            the (min-pooled) reference depth along its ray. A negative tolerance t takes in the
            reference's surface too, to −t behind it: what the reference saw at all.
        views: V, reference views per stream.
        edge_guard: min-pool the reference depth over 3×3 (above). Off for ground-truth points, whose
            edges are exact: a surface another view saw edge-on then cannot round across the
            silhouette into space this reference saw empty.
        edge_reach: max-pool the reference depth over 3×3 instead: beside a silhouette the
            reference's far side counts too. For "what did the reference see": a background point
            next to a foreground edge rounds to the foreground's pixel in one view and to the
            background's in another, and the reference saw it either way.
        background_free: a reference pixel of depth +inf saw the background through an opening
            (its ray hit nothing), so its whole ray is free space; otherwise +inf is unknown, as
            NaN and depth <= 0 always are.
    """

    def __init__(
        self,
        num_worlds: int,
        agents_per_world: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        tolerance: float = DEFAULT_CARVE_TOLERANCE,
        views: int = 1,
        edge_guard: bool = True,
        edge_reach: bool = False,
        background_free: bool = False,
    ) -> None:
        if not -1.0 < tolerance < 1.0:
            raise ValueError(f"tolerance must be in (-1, 1), got {tolerance}")
        if views < 1:
            raise ValueError(f"views must be positive, got {views}")
        self.num_worlds, self.agents_per_world = int(num_worlds), int(agents_per_world)
        n, v = self.num_worlds * self.agents_per_world, int(views)
        self.height, self.width, self.tolerance, self.views = int(height), int(width), float(tolerance), v
        if edge_guard and edge_reach:
            raise ValueError("edge_guard and edge_reach pool the reference depth in opposite ways; pick one")
        self.edge_guard, self.edge_reach = bool(edge_guard), bool(edge_reach)
        self.background_free = bool(background_free)
        # Depth below which a point on a reference pixel's ray is empty space; 0 = nothing known.
        self.limit = torch.zeros(n, v, height, width, device=device)
        self.K = torch.eye(3, device=device).repeat(n, v, 1, 1)
        self.world_to_camera = torch.eye(4, device=device).repeat(n, v, 1, 1)

    def set_references(
        self,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose_c2w: torch.Tensor,
        streams: torch.Tensor | None = None,
    ) -> None:
        """Remember the reference cameras of ``streams`` (N,) bool (None: all).

        Args:
            depth: (N, H, W) planar reference depth in metres, or (N, V', H, W) for V' <= V
                views (views beyond V' know nothing); non-finite or <= 0 is unknown.
            K: (N, 3, 3) intrinsics, or (N, V', 3, 3).
            pose_c2w: (N, 4, 4) camera-to-world poses, or (N, V', 4, 4).
            streams: which rows take the new references.
        """
        if depth.dim() == 3:
            depth, K, pose_c2w = depth[:, None], K[:, None], pose_c2w[:, None]
        n, given, h, w = depth.shape
        if given > self.views:
            raise ValueError(f"{given} reference views given, room for {self.views}")
        d = depth.to(self.limit.device, torch.float32).reshape(n * given, h, w)
        known = torch.isfinite(d) & (d > 0.0)
        if self.background_free:  # +inf: the ray hit nothing, free all the way
            known |= d == float("inf")
        d = torch.where(known, d, 0.0)
        # Min-pool over known pixels only: unknown pixels (0) must not pull a neighbour to 0.
        known_max = torch.where(d > 0.0, d, float("inf"))
        pooled = known_max
        if self.edge_guard:
            pooled = -F.max_pool2d(-known_max[:, None], 3, stride=1, padding=1)[:, 0]
        elif self.edge_reach:  # the farthest known neighbour (unknown pixels are 0 in d and never win)
            pooled = F.max_pool2d(d[:, None], 3, stride=1, padding=1)[:, 0]
        # Unknown pixels pool to +inf too; the `d > 0` below keeps only background rays infinite.
        limit = torch.where(torch.isfinite(pooled), pooled * (1.0 - self.tolerance), float("inf"))
        limit = torch.where(d > 0.0, limit, 0.0).reshape(n, given, h, w)
        missing = self.views - given
        limit = torch.cat([limit, limit.new_zeros(n, missing, h, w)], dim=1)
        K = torch.cat([K.to(self.K), self.K.new_zeros(n, missing, 3, 3)], dim=1)
        pose = pose_c2w.to(self.K)
        world_to_camera = torch.cat([torch.linalg.inv(pose), pose.new_zeros(n, missing, 4, 4)], dim=1)
        commit_rows(self.limit, limit, streams)
        commit_rows(self.K, K, streams)
        commit_rows(self.world_to_camera, world_to_camera, streams)

    def keep_mask(
        self,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose_c2w: torch.Tensor,
        hand_keypoints: torch.Tensor | None = None,
        hands_present: torch.Tensor | None = None,
        views: int | None = None,
    ) -> torch.Tensor:
        """(N, H, W) bool: the pixels of the frames that may enter the memory.

        Args:
            depth: (N, H, W) planar depth of the frames (non-finite pixels are kept; the
                memory skips them anyway).
            K: (N, 3, 3) intrinsics of the frames.
            pose_c2w: (N, 4, 4) their camera-to-world poses.
            hand_keypoints: (N, 2, 21, 3) camera-frame keypoints of each stream's hands now
                (NaN where a stream has none), whose pixels are never carved; None: no hands.
            hands_present: (N,) bool, the streams whose ``hand_keypoints`` count (None: all).
            views: test against the first this many reference views of each stream (None: all).
        """
        n, h, w = depth.shape
        dev, b, a = self.limit.device, self.num_worlds, self.agents_per_world
        z = depth.to(dev, torch.float32)
        K, pose = K.to(dev, torch.float32), pose_c2w.to(dev, torch.float32)
        zs = torch.where(torch.isfinite(z) & (z > 0.0), z, 0.0)
        x, y = lift_to_camera(zs, K)
        cam = torch.stack([x, y, zs, torch.ones_like(zs)], dim=-1).reshape(n, h * w, 4)
        world = cam @ pose.transpose(1, 2)  # (N, HW, 4)
        world = world.reshape(b, a * h * w, 4)  # every point of world b, for its references
        carved = torch.zeros(b, a * h * w, dtype=torch.bool, device=dev)
        for r in range(a):
            ref = torch.arange(b, device=dev) * a + r
            for view in range(self.views if views is None else min(views, self.views)):
                carved |= self._inside(world, ref, view)
        carved = carved.reshape(n, h, w) & (zs > 0.0)
        if hand_keypoints is not None:
            carved &= hand_free_mask(hand_keypoints, hands_present, K, h, w)
        return ~carved

    def _inside(self, world: torch.Tensor, ref: torch.Tensor, view: int) -> torch.Tensor:
        """(B, P) bool: points (B, P, 4) in the free space of reference stream ``ref[b]``'s view."""
        rh, rw = self.limit.shape[2:]
        cam = world @ self.world_to_camera[ref, view].transpose(1, 2)
        K = self.K[ref, view]
        zc = cam[..., 2]
        zdiv = torch.where(zc > 0.0, zc, 1.0)
        u = torch.round(K[:, None, 0, 0] * cam[..., 0] / zdiv + K[:, None, 0, 2])
        v = torch.round(K[:, None, 1, 1] * cam[..., 1] / zdiv + K[:, None, 1, 2])
        seen = (zc > 0.0) & (u >= 0) & (u < rw) & (v >= 0) & (v < rh)
        index = torch.where(seen, v * rw + u, 0.0).long()
        limit = torch.gather(self.limit[ref, view].reshape(len(ref), rh * rw), 1, index)
        return seen & (zc < limit)


__all__ = ["DEFAULT_CARVE_TOLERANCE", "ReferenceFreeSpace"]
