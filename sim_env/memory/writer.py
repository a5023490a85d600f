"""What enters the worlds' point-cloud memory: the runtime's write rules in one place.

- References come from the engine: the reset frame and its sweep (`sim_env.reference_sweep`).
  Their voxels are pinned, hands excepted (`sim_env.memory.reference_pin`), and their depth
  marks the free space that carving protects (`sim_env.memory.free_space`). The reference goes
  in first, then each sweep view adds only
  - pixels away from its hands: the views turn the camera, and the hands with it, so they would
    leave ghost hands all around the start;
  - surface the memory does not hold yet: a second set of voxels on a held surface, sampled at
    other spots of its texture, would z-fight with the first;
  - points outside the exact free space of every view taken from the same spot or an earlier
    one: a surface one view saw edge-on would otherwise round across another view's silhouette
    into space that view saw empty. Views from later spots of a scan do not judge earlier ones:
    seen from elsewhere, the same rounding at a silhouette would cut holes in surfaces the start
    saw exactly;
  - for a view from another spot than the reference's (`sim_env.reference_scan`), points no
    earlier view saw, neither as free space nor as its surface: from elsewhere a view samples a
    surface an earlier view holds at other places, more densely than the held test's surfels can
    tell; its voxels would sit between the earlier view's and z-fight with them where that view
    is seen again. (Views from the reference's own spot share its projection centre and skip
    this test: on the validation seeds it cost the one-spot sweep 0.14 dB of PSNR@32.)

  With these rules the memory renders the reference back at the start pose nearly as it did
  without the sweep (docs/model.md).
- With ``sample_footprints`` each reference voxel also keeps the offsets to its view's next
  samples (`sim_env.memory.sample_spacing`), which size the footprint it occludes with
  (`sim_env.memory.footprint_occlusion`).
- Generated frames enter except where their points lie in a reference's free space (carving).
- In ``window`` mode, the window-only ablation, a world forgets its cloud before every write and
  so holds only its latest frame.
"""

from __future__ import annotations

import torch

from bridge.types import InvalidArgumentError
from sim_env.memory.free_space import ReferenceFreeSpace
from sim_env.memory.point_cloud import PointCloudMemory
from sim_env.memory.reference_pin import memory_capacity_for, reference_fits, reference_pin_mask
from sim_env.memory.reference_surfels import reference_surfels
from sim_env.memory.sample_spacing import sample_offsets
from sim_env.reference_sweep import ReferenceViews

# A sweep pixel within this fraction of the depth of a surface the memory holds shows that surface.
HELD_DEPTH_TOLERANCE = 0.05
# Closes the one-pixel rounding gaps between surfels (as the passthrough's).
HELD_GAP_RADIUS = 2
# Views whose camera centres lie closer than this were taken from the same spot.
SAME_SPOT_M = 1e-3
# A sweep point up to this fraction behind an earlier view's surface lies on that surface.
SEEN_SURFACE_TOLERANCE = 0.05


def same_spot_ends(poses: torch.Tensor, streams: torch.Tensor) -> list[int]:
    """Per view k of (N, V, 4, 4) ``poses``: the end of the run of views after k taken from k's spot.

    A sweep's views share their camera centre; a scan (`sim_env.reference_scan`) lists the sweep of
    each spot in turn. Only the ``streams`` being reset count, and where they disagree the earliest
    end holds. Read once per reset, on the host.
    """
    centres = poses[..., :3, 3]
    same = (centres[:, 1:] - centres[:, :-1]).norm(dim=-1) < SAME_SPOT_M  # (N, V - 1)
    same = (same | ~streams[:, None]).all(dim=0).tolist()
    ends, end = [0] * poses.shape[1], poses.shape[1]
    for k in range(poses.shape[1] - 1, -1, -1):
        if k < len(same) and not same[k]:
            end = k + 1
        ends[k] = end
    return ends


class MemoryWriter:
    """The point-cloud memory of B worlds (N = B·A streams) and the rules of every write into it.

    Args:
        num_worlds: B.
        agents_per_world: A; stream ``b·A + a`` writes into world b.
        height: rows of the frames written.
        width: columns of the frames written.
        voxel_size: voxel edge of the memory in metres.
        reference_views: V, the most reference views per stream a reset writes (the reference and
            its sweep); carving tests against all of them.
        capacity: voxels per world; None = room for the references pinned at most half full
            (`memory_capacity_for`).
        window_only: forget a world's cloud before each write (the window-only ablation).
        pin_references: pin the references' voxels; None = when they fill at most half of the
            memory (`reference_fits`; tiny64: 4,096 of 16,384), so generated content always keeps
            room. wan2.1-1.3b's 832×480 references would fill it and are not pinned.
        carve_free_space: keep generated points in a reference's free space out.
        background_free: a reference pixel that saw the background (+inf depth) makes its whole
            ray free space, for carving and for the sweep's tests (`ReferenceFreeSpace`).
        sample_footprints: store each reference voxel's offsets to its next samples in the memory.
        device: where the memory lives.
    """

    def __init__(
        self,
        num_worlds: int,
        agents_per_world: int,
        height: int,
        width: int,
        voxel_size: float,
        reference_views: int = 1,
        capacity: int | None = None,
        window_only: bool = False,
        pin_references: bool | None = None,
        carve_free_space: bool = True,
        background_free: bool = False,
        sample_footprints: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if reference_views < 1:
            raise InvalidArgumentError(f"reference_views must be positive, got {reference_views}")
        b, a, v = int(num_worlds), int(agents_per_world), int(reference_views)
        reference_pixels = v * a * height * width
        capacity = memory_capacity_for(reference_pixels) if capacity is None else int(capacity)
        offsets = bool(sample_footprints)  # the memory keeps sample offsets only for them
        self.memory = PointCloudMemory(b, capacity, voxel_size, device=device, keep_offsets=offsets)
        fits = reference_fits(reference_pixels, capacity)
        self.pin_references = fits if pin_references is None else bool(pin_references)
        self.agents_per_world, self.reference_views = a, v
        self.window_only, self.carve_free_space = bool(window_only), bool(carve_free_space)
        self.background_free, self.sample_footprints = bool(background_free), bool(sample_footprints)
        open_rays = {"views": v, "background_free": self.background_free}
        self.free_space = ReferenceFreeSpace(b, a, height, width, device, **open_rays)
        # The references' free space without the edge guard, for the sweep's exact points.
        self.seen_empty = ReferenceFreeSpace(b, a, height, width, device, edge_guard=False, **open_rays)
        # What the references saw at all, free space and surface, for the sweep's later views.
        self.seen = ReferenceFreeSpace(
            b,
            a,
            height,
            width,
            device,
            tolerance=-SEEN_SURFACE_TOLERANCE,
            edge_guard=False,
            edge_reach=True,
            **open_rays,
        )

    def write_references(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose: torch.Tensor,
        hands: torch.Tensor | None,
        streams: torch.Tensor,
        sweep: ReferenceViews | None = None,
    ) -> None:
        """Start the worlds of ``streams`` (N,) bool over from their references.

        Args:
            rgb: (N, H, W, 3) reference colours.
            depth: (N, H, W) planar depth in metres.
            K: (N, 3, 3) intrinsics.
            pose: (N, 4, 4) camera-to-world poses.
            hands: (N, 2, 21, 3) camera-frame hand keypoints the references show (NaN: none), or None.
            streams: the streams being reset (all agents of the worlds being reset).
            sweep: the references' sweep views, or None.
        """
        a = self.agents_per_world
        worlds = streams.unflatten(0, (-1, a)).any(dim=1)
        self.memory.reset(worlds)
        views = [(rgb, depth, K, pose, hands)]
        if sweep is not None:  # rows outside ``streams`` may hold anything; keep their poses invertible
            identity = torch.eye(4, dtype=pose.dtype, device=pose.device)
            for i in range(sweep.count):
                v_rgb, v_depth, v_K, v_pose, v_hands = sweep.view(i)
                v_pose = torch.where(streams[:, None, None], v_pose.to(pose), identity)
                views.append((v_rgb, v_depth.to(depth), v_K.to(K), v_pose, v_hands))
        # Reading the spots syncs the host; a reset without a sweep has one view and needs none.
        poses = torch.stack([v[3] for v in views], dim=1)
        spot_ends = [1] if sweep is None else same_spot_ends(poses, streams)
        spaces = (self.free_space,) if sweep is None else (self.free_space, self.seen_empty)
        if spot_ends[0] < len(views):  # views from other spots: they test what earlier views saw
            spaces += (self.seen,)
        for space in spaces:
            space.set_references(
                torch.stack([v[1] for v in views], dim=1),
                torch.stack([v[2] for v in views], dim=1),
                torch.stack([v[3] for v in views], dim=1),
                streams,
            )
        height, width = depth.shape[1:]
        for index, (v_rgb, v_depth, v_K, v_pose, v_hands) in enumerate(views):
            away_from_hands = reference_pin_mask(v_hands, v_K, height, width)
            pin = away_from_hands if self.pin_references else None
            allowed = None
            if index > 0:  # the sweep's hands stay out, what earlier views hold or saw, and free space
                allowed = away_from_hands & ~self._held(v_depth, v_K, v_pose)
                allowed &= self.seen_empty.keep_mask(v_depth, v_K, v_pose, views=spot_ends[index])
                if index >= spot_ends[0]:
                    allowed &= self.seen.keep_mask(v_depth, v_K, v_pose, views=index)
            # With views from other spots, the start's own are the primary reference (gaps in it are
            # the model's to fill, not the other spots' to show through: `primary_gaps`).
            primary = index < spot_ends[0] < len(views)
            offsets = sample_offsets(v_depth, v_K, v_pose) if self.sample_footprints else None
            memory_args = (a, streams, pin, allowed, primary, offsets)
            self.memory.insert_streams(v_rgb, v_depth, v_K, v_pose, *memory_args)

    def _held(self, depth: torch.Tensor, K: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """(N, H, W) bool: pixels of a view whose surface the memory already holds.

        The memory is rendered into the view, its voxels drawn as surfels of their projected
        size so that the splat has no gaps; a pixel is held when a surfel lies at its depth,
        within `HELD_DEPTH_TOLERANCE`. Such a pixel would add a second voxel on the same surface,
        sampled at another spot of its texture, that z-fights with the first wherever either is
        drawn.
        """
        _n, h, w = depth.shape
        render, r_depth, r_mask = self.memory.render(
            K.float(), pose.float(), h, w, with_pins=True, cameras_per_world=self.agents_per_world
        )
        pinned = render[..., -1] > 0.5
        fx = K[:, 0, 0].float()
        shown, picked = reference_surfels(
            r_depth[..., None],
            r_depth,
            r_mask,
            pinned,
            fx,
            self.memory.voxel_size,
            0.0,
            gap_radius=HELD_GAP_RADIUS,
        )
        d = depth.to(r_depth)
        return shown & ((picked[..., 0] - d).abs() <= HELD_DEPTH_TOLERANCE * d)

    def write_generated(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose: torch.Tensor,
        mask: torch.Tensor | None,
        hands: torch.Tensor,
        hands_active: torch.Tensor,
    ) -> torch.Tensor | None:
        """Insert the streams' generated RGB-D; returns the (N, H, W) pixels let in (None: no carving).

        Args:
            rgb: (N, H, W, 3) generated colours.
            depth: (N, H, W) their depth.
            K: (N, 3, 3) intrinsics.
            pose: (N, 4, 4) camera-to-world poses.
            mask: (N,) bool, the streams that write (None: all).
            hands: (N, 2, 21, 3) camera-frame keypoints of the streams' hands now.
            hands_active: (N,) bool, the streams that have hands (their pixels are never carved).
        """
        if self.window_only:
            a = self.agents_per_world
            self.memory.reset(None if mask is None else mask.unflatten(0, (-1, a)).any(dim=1))
        keep = None
        if self.carve_free_space:
            keep = self.free_space.keep_mask(depth, K, pose, hands, hands_active)
        self.memory.insert_streams(rgb, depth, K, pose, self.agents_per_world, mask, None, keep)
        return keep
