"""A reference sweep: the engine's views all around the start pose, given to the world at reset.

One reference frame shows the generative world a 70° wedge of the room. When the agent turns
away from it, the memory has nothing to copy, and the 1.27 M-parameter model draws the room's
average colours (docs/model.md, the demo). InSpatio-WorldFM (§2.1) gives its frame model
"multi-view consistent observations or panoramic observations", 360° scene constraints, before
the online stage starts. With an engine at hand there is an exact version of that. The camera
turns on the spot about the world's up axis (+Z) in V equal yaw steps, and the engine renders
each view. The views' RGB-D is pinned into the point-cloud memory beside the reference frame
(`sim_env.memory.writer`). The reference is view 0; the other V − 1 views are the sweep.

The sweep is rendered with the engine's ``set_pose``, which passes no time, and the camera is
put back afterwards. So an engine that goes on as the episode's ground truth (the eval, the
shadow) continues exactly as it would have without the sweep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from bridge.types import HAND_KEYPOINTS, NUM_HANDS, InvalidArgumentError, Observation, World

# Views of a full turn; 8 × 45° overlaps the 70° field of view by 25° per pair.
FULL_SWEEP_VIEWS = 8


def sweep_poses(pose: ArrayLike, views: int) -> NDArray[np.float64]:
    """(views, 4, 4) camera-to-world poses: ``pose`` turned by k·360°/views about world +Z, in place.

    View 0 is ``pose`` itself. Turning about the world's vertical keeps the camera's pitch and roll
    relative to the horizon, as a person looking around would.
    """
    if views < 1:
        raise InvalidArgumentError(f"reference views must be positive, got {views}")
    base = np.asarray(pose, dtype=np.float64)
    if base.shape != (4, 4):
        raise InvalidArgumentError(f"pose must be (4, 4), got {base.shape}")
    out = np.repeat(base[None], views, axis=0)
    for k in range(1, views):
        angle = 2.0 * math.pi * k / views
        c, s = math.cos(angle), math.sin(angle)
        yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        out[k, :3, :3] = yaw @ base[:3, :3]
    return out


def render_sweep(engine: World, agent_id: str, reference: Observation, views: int) -> list[Observation]:
    """The sweep around ``reference`` (the agent's frame at reset): views 1 … V − 1 of `sweep_poses`.

    ``engine`` must support ``set_pose``. The agent is put back at the reference pose afterwards.
    """
    poses = sweep_poses(reference.pose, views)
    try:
        return [engine.set_pose(agent_id, pose) for pose in poses[1:]]
    finally:
        if views > 1:
            engine.set_pose(agent_id, reference.pose)


def as_views(given: Observation | Sequence[Observation], field: str) -> list[Observation]:
    """An agent's reference views, [reference, *sweep], from one Observation or a list of them."""
    views = [given] if isinstance(given, Observation) else list(given)
    if not views or not all(isinstance(v, Observation) for v in views):
        raise InvalidArgumentError(f"{field} must be an Observation or a list of them")
    return views


@dataclass(frozen=True)
class ReferenceViews:
    """Reference views of N streams as tensors, V' per stream: a sweep, or the reference and its sweep.

    Attributes:
        rgb: (N, V', H, W, 3) uint8.
        depth: (N, V', H, W) planar metres, +inf where nothing was hit.
        K: (N, V', 3, 3) intrinsics.
        pose: (N, V', 4, 4) camera-to-world poses.
        hands: (N, V', 2, 21, 3) camera-frame hand keypoints (NaN where none), or None.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    K: torch.Tensor
    pose: torch.Tensor
    hands: torch.Tensor | None = None

    @property
    def count(self) -> int:
        """V', the sweep views per stream."""
        return self.depth.shape[1]

    @classmethod
    def from_observations(cls, per_stream: Sequence[Sequence[Observation]]) -> ReferenceViews:
        """Stacks each stream's sweep (the same number of views for every stream)."""
        counts = {len(views) for views in per_stream}
        if len(counts) != 1:
            raise InvalidArgumentError(
                f"every stream needs the same number of sweep views, got {sorted(counts)}"
            )

        def stack(name: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([np.stack([getattr(o, name) for o in v]) for v in per_stream]))

        nan = np.full((NUM_HANDS, HAND_KEYPOINTS, 3), np.nan, dtype=np.float32)
        has_hands = any(o.hand_keypoints is not None for views in per_stream for o in views)
        hands = None
        if has_hands:
            hands = torch.as_tensor(
                np.stack(
                    [
                        np.stack([nan if o.hand_keypoints is None else o.hand_keypoints for o in views])
                        for views in per_stream
                    ]
                )
            )
        return cls(stack("rgb"), stack("depth"), stack("K"), stack("pose"), hands)

    def after_first(self) -> ReferenceViews | None:
        """The views after the first (the sweep of a reference and its sweep), or None when only one."""
        if self.count == 1:
            return None
        hands = None if self.hands is None else self.hands[:, 1:]
        return ReferenceViews(self.rgb[:, 1:], self.depth[:, 1:], self.K[:, 1:], self.pose[:, 1:], hands)

    def to(self, device: torch.device | str) -> ReferenceViews:
        """The views on ``device``."""
        tensors = (self.rgb, self.depth, self.K, self.pose, self.hands)
        return ReferenceViews(*(None if t is None else t.to(device) for t in tensors))

    def checked(self, streams: int, height: int, width: int, max_views: int) -> ReferenceViews:
        """Self, after checking the shapes against a runtime's; names the offending field."""
        expected = {
            "rgb": (streams, self.count, height, width, 3),
            "depth": (streams, self.count, height, width),
            "K": (streams, self.count, 3, 3),
            "pose": (streams, self.count, 4, 4),
        }
        if self.hands is not None:
            expected["hands"] = (streams, self.count, NUM_HANDS, HAND_KEYPOINTS, 3)
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise InvalidArgumentError(f"sweep.{name} must be {shape}, got {got}")
        if self.count > max_views:
            raise InvalidArgumentError(
                f"sweep has {self.count} views per stream; this runtime has room for {max_views} "
                "(GenerativeRuntime(reference_views=...) counts the reference too)"
            )
        return self

    def view(
        self, index: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(rgb, depth, K, pose, hands) of sweep view ``index`` for every stream."""
        hands = None if self.hands is None else self.hands[:, index]
        return self.rgb[:, index], self.depth[:, index], self.K[:, index], self.pose[:, index], hands


__all__ = ["FULL_SWEEP_VIEWS", "ReferenceViews", "as_views", "render_sweep", "sweep_poses"]
