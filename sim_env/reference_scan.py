"""A reference scan: the engine's sweep from several positions, given to the world at reset.

A sweep from the start (`sim_env.reference_sweep`) shows the world one room, seen from one spot.
Once the agent walks on, two things go wrong that the 1.27 M-parameter model cannot fix
(docs/model.md, the demo): a room none of the views saw is drawn as the average of the colours
it knows, and a wall the start saw only from afar leaves gaps through which the surfaces behind
it show. InSpatio-WorldFM (§2.1) builds its scene constraints from multi-view observations of
the whole scene, not from one viewpoint. With an engine at hand the world can be given those.

Where to look from, knowing nothing of the scene but what the views so far show: every view's
horizon row says how far the camera could walk in each of its directions before meeting a
surface. A point on such a ray, short of the surface, is free space an agent could stand in. Of
these candidates the next position is the one farthest from every position so far (farthest-point
sampling): the first positions spread through the room, and a ray through a doorway leads into
the next room. Each position gets the full sweep of V views, at the start's height and
orientation. Nothing is random, so a scene always gets the same scan.

Like the sweep, the scan uses only the engine's ``set_pose``, which passes no time, and puts the
camera back at the start afterwards.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from bridge.types import InvalidArgumentError, Observation, World
from sim_env.reference_sweep import sweep_poses

# A candidate position keeps this far short of the surface its ray hit: about the collision
# rule's 0.3 m plus a body, so views from it are views an agent could have.
SCAN_CLEARANCE_M = 0.6
# ... and lies at most this far along its ray.
SCAN_MAX_STEP_M = 4.0
# A position nearer than this to one already scanned sees little the scan has not.
SCAN_MIN_SEPARATION_M = 1.0
# Rays per view along its horizon row; 7 rays 10° apart span a 70° view.
SCAN_RAYS_PER_VIEW = 7
# Horizon rows this far either side of the ray are read too: the nearest of them counts, so a
# ray grazing the top of a low box does not walk through it.
SCAN_HORIZON_BAND_PX = 2


def horizon_candidates(view: Observation) -> NDArray[np.float64]:
    """(k, 3) world points where an agent could stand, along the horizontal rays of ``view``.

    Each ray leaves the camera level with the ground through one column of the view's horizon
    row; its point stops `SCAN_CLEARANCE_M` short of the surface the view shows there, and at
    most `SCAN_MAX_STEP_M` out. Rays with less room than the clearance give no point, nor do rays
    that hit nothing: they leave the scene (a doorway to the outside), where a view would show
    nothing. A view looking straight up or down has no horizon row and gives none.
    """
    depth = np.asarray(view.depth, dtype=np.float64)
    K, pose = np.asarray(view.K, dtype=np.float64), np.asarray(view.pose, dtype=np.float64)
    h, w = depth.shape
    rot, origin = pose[:3, :3], pose[:3, 3]
    points = []
    for u in np.linspace(0, w - 1, SCAN_RAYS_PER_VIEW):
        x = (u - K[0, 2]) / K[0, 0]
        # The camera ray (x, y, 1) is level where its world Z component vanishes.
        if abs(rot[2, 1]) < 1e-6:
            continue
        y = -(rot[2, 0] * x + rot[2, 2]) / rot[2, 1]
        row = K[1, 2] + K[1, 1] * y
        if not 0 <= row <= h - 1:
            continue
        r, col = round(float(row)), round(float(u))
        band = depth[max(0, r - SCAN_HORIZON_BAND_PX) : r + SCAN_HORIZON_BAND_PX + 1, col]
        direction = rot @ np.array([x, y, 1.0])  # world, level; |direction| per metre of depth
        length = float(np.linalg.norm(direction))
        nearest = float(band.min())
        if not math.isfinite(nearest):
            continue
        reach = min(nearest * length - SCAN_CLEARANCE_M, SCAN_MAX_STEP_M)
        if reach <= 0.0:
            continue
        points.append(origin + direction / length * reach)
    return np.asarray(points, dtype=np.float64).reshape(-1, 3)


def farthest_candidate(candidates: NDArray[np.float64], positions: NDArray[np.float64]) -> int | None:
    """Index of the candidate farthest (horizontally) from every position, or None when all are near."""
    if len(candidates) == 0:
        return None
    gaps = np.linalg.norm(candidates[:, None, :2] - positions[None, :, :2], axis=-1).min(axis=1)
    best = int(np.argmax(gaps))
    return best if gaps[best] >= SCAN_MIN_SEPARATION_M else None


def views_per_position(views: int, positions: int) -> int:
    """The sweep views per spot when ``views`` reference views are a scan of ``positions`` spots."""
    if positions < 1 or views % positions:
        raise InvalidArgumentError(
            f"reference_positions must divide the {views} reference views, got {positions}"
        )
    return views // positions


def render_scan(
    engine: World, agent_id: str, reference: Observation, views: int, positions: int
) -> list[Observation]:
    """Views 1 … P·V − 1 of the scan: the sweep around ``reference``, then sweeps at P − 1 positions.

    Each position is chosen from the views rendered so far (`horizon_candidates`,
    `farthest_candidate`). When no candidate is far enough from the positions so far (a small
    room), the scan stops early and the remaining views repeat the start's sweep, so every
    stream still gets P·V views; a repeated view adds nothing to the memory (its surface is held).

    ``engine`` must support ``set_pose``. The agent is put back at the reference pose afterwards.
    """
    if positions < 1:
        raise InvalidArgumentError(f"reference positions must be positive, got {positions}")
    start_poses = sweep_poses(reference.pose, views)
    out: list[Observation] = []
    try:
        out.extend(engine.set_pose(agent_id, pose) for pose in start_poses[1:])
        chosen = reference.pose[None, :3, 3].astype(np.float64)
        candidates = np.concatenate([horizon_candidates(v) for v in [reference, *out]])
        for _ in range(positions - 1):
            best = farthest_candidate(candidates, chosen)
            if best is None:
                out.extend(engine.set_pose(agent_id, pose) for pose in start_poses)
                continue
            at = np.array(reference.pose, dtype=np.float64)
            at[:3, 3] = candidates[best]
            chosen = np.concatenate([chosen, candidates[best][None]])
            new = [engine.set_pose(agent_id, pose) for pose in sweep_poses(at, views)]
            out.extend(new)
            candidates = np.concatenate([candidates, *(horizon_candidates(v) for v in new)])
    finally:
        if views * positions > 1:
            engine.set_pose(agent_id, reference.pose)
    return out


__all__ = ["farthest_candidate", "horizon_candidates", "render_scan", "views_per_position"]
