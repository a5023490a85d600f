"""Engine-side collision of a camera body (a sphere) against the scene's solid geoms.

The camera is not a MuJoCo body (agents are invisible), so moves are checked with exact
signed distances from the sphere centre to every solid geom, computed from the compiled
model and the current `MjData` (geom poses), vectorised per geom type. Moving objects are
therefore handled as well as static walls. A move is swept in sub-steps no longer than
half the radius, so no wall can be tunnelled through, whatever the step length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import mujoco
import numpy as np
from numpy.typing import ArrayLike, NDArray

# Fraction of the radius a single swept sub-step may advance.
SWEEP_STEP_FRACTION = 0.5
# Tolerance for "not deeper than before" when the start itself is in contact.
PENETRATION_TOLERANCE = 1e-9

_GEOM = mujoco.mjtGeom


class SphereCollider:
    """Signed distances from points to the solid geoms of a model.

    Args:
        model: the compiled model.
        exclude_bodies: bodies whose geoms never block the camera (e.g. hands).
    """

    def __init__(self, model: mujoco.MjModel, exclude_bodies: Iterable[int] = ()) -> None:
        excluded = set(exclude_bodies)
        solid = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
        ids = [g for g in range(model.ngeom) if solid[g] and int(model.geom_bodyid[g]) not in excluded]
        types = model.geom_type
        self._by_type = {
            t: np.array([g for g in ids if types[g] == t], dtype=np.int64)
            for t in (
                _GEOM.mjGEOM_BOX,
                _GEOM.mjGEOM_SPHERE,
                _GEOM.mjGEOM_CYLINDER,
                _GEOM.mjGEOM_CAPSULE,
                _GEOM.mjGEOM_PLANE,
            )
        }
        known = set(np.concatenate(list(self._by_type.values())).tolist())
        # Anything else (meshes, ellipsoids ...) is approximated by its bounding sphere.
        self._other = np.array([g for g in ids if g not in known], dtype=np.int64)
        self._size = model.geom_size.copy()
        self._rbound = model.geom_rbound.copy()

    def distance(self, data: mujoco.MjData, point: ArrayLike) -> float:
        """Smallest signed distance (metres, negative inside) from `point` to any solid geom."""
        p = np.asarray(point, dtype=np.float64)
        best = math.inf
        for geom_type, ids in self._by_type.items():
            if len(ids):
                best = min(best, float(np.min(self._distances(geom_type, ids, data, p))))
        if len(self._other):
            d = np.linalg.norm(data.geom_xpos[self._other] - p, axis=1) - self._rbound[self._other]
            best = min(best, float(np.min(d)))
        return best

    def _distances(self, geom_type: int, ids: NDArray[np.int64], data: mujoco.MjData, p: NDArray) -> NDArray:
        """Signed distances from p to each geom of one type, in each geom's local frame."""
        R = data.geom_xmat[ids].reshape(-1, 3, 3)
        local = np.einsum("nji,nj->ni", R, p - data.geom_xpos[ids])  # R^T (p - c)
        size = self._size[ids]
        if geom_type == _GEOM.mjGEOM_BOX:
            return _box_sdf(np.abs(local) - size)
        if geom_type == _GEOM.mjGEOM_SPHERE:
            return np.linalg.norm(local, axis=1) - size[:, 0]
        if geom_type == _GEOM.mjGEOM_CYLINDER:
            q = np.stack(
                [np.hypot(local[:, 0], local[:, 1]) - size[:, 0], np.abs(local[:, 2]) - size[:, 1]], 1
            )
            return _box_sdf(q)
        if geom_type == _GEOM.mjGEOM_CAPSULE:
            axial = np.clip(local[:, 2], -size[:, 1], size[:, 1])
            return np.linalg.norm(local - np.stack([0 * axial, 0 * axial, axial], 1), axis=1) - size[:, 0]
        return local[:, 2]  # plane: the half-space below its local z = 0

    def sweep_is_free(self, data: mujoco.MjData, start: ArrayLike, end: ArrayLike, radius: float) -> bool:
        """Whether a sphere of `radius` can move in a straight line from start to end.

        A start already in contact (e.g. after a teleport) may still move as long as it
        does not go deeper, so an agent can always back out.
        """
        a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
        length = float(np.linalg.norm(b - a))
        if length == 0.0:
            return True
        allowed = min(radius, self.distance(data, a)) - PENETRATION_TOLERANCE
        steps = max(1, math.ceil(length / (SWEEP_STEP_FRACTION * radius)))
        return all(self.distance(data, a + (b - a) * k / steps) >= allowed for k in range(1, steps + 1))


def _box_sdf(q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed distance of a box given q = |p_local| - half_size (the usual SDF formula)."""
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(np.max(q, axis=1), 0.0)
    return outside + inside
