"""Batched, voxelized, bounded global point cloud: the world model's explicit geometric memory.

InSpatio-World §3.2.2, Spatia §3 and WorldFM §2.4 condition generation on a global point
cloud lifted from reference and generated RGB-D and rendered into the target camera.
Spatia voxelizes it (one aggregated point per cube of side d) to bound storage; here the
bound is hard: each of the B worlds owns `capacity` preallocated slots, and every tensor
keeps its shape and storage for the whole rollout, so insert and render can sit inside a
CUDA-graph-captured step (no `.item()`, no `.cpu()`, no data-dependent shapes).

Insertion (all static shapes): lift the frame to world points, give each a voxel key
(its integer voxel coordinates bit-packed into an int64 - exact, no hash collisions),
sort the stored slots and the new points together by key, reduce every run of equal keys
to one voxel with `scatter_add`, then keep the `capacity` voxels of highest priority
with `topk`.

- Merge rule: running average. A voxel's position and colour are the count-weighted means
  of every point merged into it, with the count capped at MAX_MERGE_WEIGHT so the colour
  keeps adapting when generated content revisits a voxel (an exponential moving average
  once the cap is reached). A memory made ``keep_offsets`` also holds per voxel the offsets to
  the next samples of the points merged into it (`sim_env.memory.sample_spacing`), averaged the
  same way; others skip that work in every insert. Pinned voxels (ground truth) are the
  exception: points inserted later leave a pinned voxel as it is, pinned or not. Several
  reference views (a sweep) see a voxel from different angles and sample its texture at
  different spots; the first view to pin it keeps it, so each view's voxels render back as that
  view showed them.
- Eviction: least recently seen first. A voxel's `last_seen` is the insert step that last
  touched it; among voxels seen at the same step the ones farthest from the inserting
  camera go first (they cover the fewest pixels of nearby views).
"""

from __future__ import annotations

import math

import torch

from sim_env.memory.splat import lift_to_camera, splat

VOXEL_BITS = 21  # per axis; 3 x 21 bits fit an int64 below the sign bit
VOXEL_OFFSET = 1 << (VOXEL_BITS - 1)  # voxel coordinates in [-2^20, 2^20 - 1) are representable
EMPTY_VOXEL = torch.iinfo(torch.int64).max  # sorts after every real key
MAX_MERGE_WEIGHT = 64.0
DEFAULT_VOXEL_SIZE = 0.02  # metres
# Eviction priority = (last_seen + 1) << DIST_BITS | (closeness to the camera in DIST_UNIT steps).
DIST_BITS = 24
DIST_UNIT = 0.01  # metres; distances saturate at 2^24 cm (168 km)
PIN_BIT = 62  # pinned voxels outrank every unpinned one
PIN_CHANNEL = 3  # of a render ``with_pins``: 1 pinned, 2 the primary reference's
OFFSET_CHANNELS = slice(4, 10)  # of a render ``with_offsets``: the voxel's sample offsets, world frame


def checked_pinned_margin(margin: float) -> float:
    """``margin`` as a float; ValueError unless finite and >= 0 (an infinite push drops points)."""
    if not 0.0 <= margin < math.inf:
        raise ValueError(f"pinned_margin must be finite and >= 0, got {margin}")
    return float(margin)


class PointCloudMemory:
    """B independent bounded voxel point clouds on one device.

    Args:
        num_worlds: B.
        capacity: voxels kept per world (fixed storage).
        voxel_size: voxel edge in metres; points in one voxel merge into one.
        device: where the tensors live.
        dtype: floating dtype of positions and colours.
        keep_offsets: hold each voxel's sample offsets (`offsets`).

    Attributes (all preallocated, shapes fixed):
        xyz: (B, capacity, 3) voxel positions (mean of merged points), world frame.
        rgb: (B, capacity, 3) mean colours, in the units inserted (e.g. 0..255).
        offsets: (B, capacity, 6) mean offsets in metres from the points merged to their next
            samples along their views' rows and columns (`sim_env.memory.sample_spacing`; 0: none
            given), or None unless ``keep_offsets``.
        weight: (B, capacity) merged point count, capped at MAX_MERGE_WEIGHT.
        key: (B, capacity) int64 voxel key, EMPTY_VOXEL for empty slots.
        valid: (B, capacity) bool.
        last_seen: (B, capacity) int64 insert step that last touched the voxel.
        step: (B,) int64 inserts done per world.
    """

    def __init__(
        self,
        num_worlds: int,
        capacity: int,
        voxel_size: float = DEFAULT_VOXEL_SIZE,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        keep_offsets: bool = False,
    ) -> None:
        if num_worlds < 1 or capacity < 1 or not voxel_size > 0.0:
            raise ValueError("num_worlds and capacity must be positive and voxel_size > 0")
        self.num_worlds, self.capacity, self.voxel_size = int(num_worlds), int(capacity), float(voxel_size)
        shape = (self.num_worlds, self.capacity)
        kw = {"device": device}
        self.xyz = torch.zeros(*shape, 3, dtype=dtype, **kw)
        self.rgb = torch.zeros(*shape, 3, dtype=dtype, **kw)
        self.offsets = torch.zeros(*shape, 6, dtype=dtype, **kw) if keep_offsets else None
        self.weight = torch.zeros(shape, dtype=dtype, **kw)
        self.key = torch.full(shape, EMPTY_VOXEL, dtype=torch.int64, **kw)
        self.valid = torch.zeros(shape, dtype=torch.bool, **kw)
        self.last_seen = torch.zeros(shape, dtype=torch.int64, **kw)
        self.pinned = torch.zeros(shape, dtype=torch.bool, **kw)
        self.primary = torch.zeros(shape, dtype=torch.bool, **kw)
        self.step = torch.zeros(self.num_worlds, dtype=torch.int64, **kw)

    @property
    def device(self) -> torch.device:
        """The device every tensor lives on."""
        return self.xyz.device

    def count(self) -> torch.Tensor:
        """(B,) occupied voxels per world (a tensor: reading it is the caller's sync)."""
        return self.valid.sum(dim=1)

    def reset(self, world_mask: torch.Tensor | None = None) -> None:
        """Empties the worlds where `world_mask` (B,) is True (all when None), in place."""
        m = (
            torch.ones(self.num_worlds, dtype=torch.bool, device=self.device)
            if world_mask is None
            else world_mask
        )
        self.valid.masked_fill_(m[:, None], False)
        self.key.masked_fill_(m[:, None], EMPTY_VOXEL)
        self.weight.masked_fill_(m[:, None], 0.0)
        if self.offsets is not None:
            self.offsets.masked_fill_(m[:, None, None], 0.0)
        self.last_seen.masked_fill_(m[:, None], 0)
        self.pinned.masked_fill_(m[:, None], False)
        self.primary.masked_fill_(m[:, None], False)
        self.step.masked_fill_(m, 0)

    def voxel_keys(self, xyz: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """Exact int64 voxel keys of points; EMPTY_VOXEL where not `ok` or out of range."""
        ijk = torch.floor(xyz / self.voxel_size)
        inside = ((ijk >= -VOXEL_OFFSET) & (ijk < VOXEL_OFFSET - 1)).all(-1) & ok
        ijk = torch.where(inside[..., None], ijk + VOXEL_OFFSET, 0.0).long()
        key = (ijk[..., 0] << (2 * VOXEL_BITS)) | (ijk[..., 1] << VOXEL_BITS) | ijk[..., 2]
        return torch.where(inside, key, EMPTY_VOXEL)

    def insert_streams(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose_c2w: torch.Tensor,
        agents_per_world: int,
        stream_mask: torch.Tensor | None = None,
        pin_mask: torch.Tensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        primary: bool = False,
        offsets: torch.Tensor | None = None,
    ) -> None:
        """`insert` for N = B·A camera streams (stream ``b·A + a`` is agent a of world b).

        The agents of a world insert one after another (one `insert` per agent slot), so a voxel
        two agents see merges both; arguments are as `insert`'s with N rows, ``stream_mask``
        (N,) choosing the streams that write.
        """
        b, a = self.num_worlds, agents_per_world

        def per_agent(t: torch.Tensor | None, i: int) -> torch.Tensor | None:
            return None if t is None else t.unflatten(0, (b, a))[:, i]

        for i in range(a):
            self.insert(
                per_agent(rgb, i),
                per_agent(depth, i),
                per_agent(K, i),
                per_agent(pose_c2w, i),
                world_mask=per_agent(stream_mask, i),
                pixel_mask=per_agent(pixel_mask, i),
                pin_mask=per_agent(pin_mask, i),
                primary=primary,
                offsets=per_agent(offsets, i),
            )

    def insert(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        K: torch.Tensor,
        pose_c2w: torch.Tensor,
        world_mask: torch.Tensor | None = None,
        pixel_mask: torch.Tensor | None = None,
        pin_mask: torch.Tensor | None = None,
        primary: bool = False,
        offsets: torch.Tensor | None = None,
    ) -> None:
        """Lifts one RGB-D frame per world into its cloud, merging by voxel and evicting if full.

        Args:
            rgb: (B, H, W, 3) colours (any numeric dtype; stored as self.rgb's dtype).
            depth: (B, H, W) planar depth in metres; non-finite or <= 0 pixels are skipped.
            K: (B, 3, 3) intrinsics.
            pose_c2w: (B, 4, 4) camera-to-world poses.
            world_mask: (B,) bool, worlds to update (others keep every slot as it was); None = all.
            pixel_mask: (B, H, W) bool, pixels allowed in (e.g. static scene only); None = all.
            pin_mask: (B, H, W) bool, pixels whose voxels are pinned: never evicted, and later
                points never move or recolour them (ground-truth reference frames); a voxel
                pinned before keeps its own values.
            primary: the pinned voxels this insert makes are the primary reference's (the
                start's own views of a reference scan, `sim_env.reference_scan`); the render's
                pinned channel shows them as 2 (`render`).
            offsets: (B, H, W, 6) world-frame offsets from each pixel's sample to its next ones
                (`sim_env.memory.sample_spacing.sample_offsets`); None = 0. Only for a memory
                made ``keep_offsets``.
        """
        if offsets is not None and self.offsets is None:
            raise ValueError("offsets given to a memory made without keep_offsets")
        B, H, W = depth.shape
        dtype = self.xyz.dtype
        z = depth.to(dtype)
        K, pose = K.to(dtype), pose_c2w.to(dtype)
        ok = torch.isfinite(z) & (z > 0.0)
        if pixel_mask is not None:
            ok &= pixel_mask
        if world_mask is not None:
            ok &= world_mask[:, None, None]
        zs = torch.where(ok, z, 0.0)
        x, y = lift_to_camera(zs, K)
        cam = torch.stack([x, y, zs], dim=-1).reshape(B, H * W, 3)
        new_xyz = cam @ pose[:, :3, :3].transpose(1, 2) + pose[:, None, :3, 3]
        ok = ok.reshape(B, H * W)
        new_key = self.voxel_keys(new_xyz, ok)
        new_ok = new_key != EMPTY_VOXEL

        step = self.step + (1 if world_mask is None else world_mask.long())
        self.step.copy_(step)
        all_key = torch.cat([self.key, new_key], dim=1)
        all_w = torch.cat([self.weight, new_ok.to(dtype)], dim=1)
        all_xyz = torch.cat([self.xyz, new_xyz], dim=1)
        all_rgb = torch.cat([self.rgb, rgb.reshape(B, H * W, -1).to(dtype)], dim=1)
        all_offsets = None
        if self.offsets is not None:
            new = z.new_zeros(B, H * W, 6) if offsets is None else offsets.to(dtype).reshape(B, H * W, 6)
            all_offsets = torch.cat([self.offsets, new], dim=1)
        all_seen = torch.cat([self.last_seen, torch.where(new_ok, step[:, None], 0)], dim=1)
        new_pin = torch.zeros_like(new_ok) if pin_mask is None else pin_mask.reshape(B, H * W) & new_ok
        all_pin = torch.cat([self.pinned, new_pin], dim=1)
        all_primary = torch.cat([self.primary, new_pin & primary], dim=1)
        camera = pose[:, :3, 3]
        self._reduce_and_keep(
            all_key,
            all_w,
            all_xyz,
            all_rgb,
            all_offsets,
            all_seen,
            all_pin,
            all_primary,
            camera,
            world_mask,
            pin_mask is not None,
        )

    def _reduce_and_keep(
        self,
        key: torch.Tensor,
        w: torch.Tensor,
        xyz: torch.Tensor,
        rgb: torch.Tensor,
        offsets: torch.Tensor | None,
        seen: torch.Tensor,
        pin: torch.Tensor,
        primary: torch.Tensor,
        camera_centre: torch.Tensor,
        world_mask: torch.Tensor | None,
        new_pins: bool,
    ) -> None:
        """Merges equal keys (segment sums after a sort), then keeps the top-priority voxels.

        ``new_pins``: the insert pins some of its points (references only, not the step's frames).
        """
        B, M = key.shape
        key, order = torch.sort(key, dim=1, stable=True)
        w, seen = torch.gather(w, 1, order), torch.gather(seen, 1, order)
        pin = torch.gather(pin.long(), 1, order)  # int64: scatter_reduce has no bool amax
        primary = torch.gather(primary.long(), 1, order)
        xyz = torch.gather(xyz, 1, order[..., None].expand(B, M, 3))
        rgb = torch.gather(rgb, 1, order[..., None].expand(B, M, 3))
        first = torch.ones_like(key, dtype=torch.bool)
        first[:, 1:] = key[:, 1:] != key[:, :-1]
        segment = torch.cumsum(first.long(), dim=1) - 1  # run id in [0, M)

        seg_key = torch.full_like(key, EMPTY_VOXEL).scatter_reduce(1, segment, key, "amin")
        seg_pin = torch.zeros_like(pin).scatter_reduce(1, segment, pin, "amax")
        # Unpinned points leave a pinned voxel as it is,
        frozen = torch.gather(seg_pin, 1, segment) > pin
        if new_pins:  # and new pinned points one pinned before (a reference's sweep)
            stored = order < self.capacity  # the first `capacity` columns are the stored slots
            pinned_before = torch.zeros_like(pin).scatter_reduce(1, segment, pin * stored, "amax")
            frozen |= (torch.gather(pinned_before, 1, segment) > 0) & ~stored
        w = torch.where(frozen, 0.0, w)
        seg_primary = torch.zeros_like(primary).scatter_reduce(1, segment, primary * (w > 0), "amax")
        seg_w = torch.zeros_like(w).scatter_add(1, segment, w)
        idx3 = segment[..., None].expand(B, M, 3)
        seg_xyz = torch.zeros_like(xyz).scatter_add(1, idx3, xyz * w[..., None])
        seg_rgb = torch.zeros_like(rgb).scatter_add(1, idx3, rgb * w[..., None])
        seg_seen = torch.zeros_like(seen).scatter_reduce(1, segment, seen, "amax")
        denom = seg_w.clamp_min(torch.finfo(w.dtype).tiny)[..., None]
        seg_xyz, seg_rgb = seg_xyz / denom, seg_rgb / denom
        seg_ok = (seg_key != EMPTY_VOXEL) & (seg_w > 0)

        dist = torch.linalg.vector_norm(seg_xyz - camera_centre[:, None], dim=-1)
        closeness = ((1 << DIST_BITS) - 1) - (dist / DIST_UNIT).clamp(0, (1 << DIST_BITS) - 1).long()
        priority = ((seg_seen + 1) << DIST_BITS) | closeness | (seg_pin << PIN_BIT)
        priority = torch.where(seg_ok, priority, -1)
        keep = torch.topk(priority, self.capacity, dim=1, sorted=False).indices
        kept_ok = torch.gather(seg_ok, 1, keep)
        keep3 = keep[..., None].expand(B, self.capacity, 3)
        # Worlds outside world_mask keep their slots as they were (same order, same values).
        upd = torch.ones_like(kept_ok[:, :1]) if world_mask is None else world_mask[:, None]
        kept_ok = torch.where(upd, kept_ok, self.valid)

        def write(dst: torch.Tensor, src: torch.Tensor, empty: float | int) -> None:
            m = kept_ok if dst.dim() == 2 else kept_ok[..., None]
            u = upd if dst.dim() == 2 else upd[..., None]
            dst.copy_(torch.where(u, torch.where(m, src, empty), dst))

        write(self.key, torch.gather(seg_key, 1, keep), EMPTY_VOXEL)
        write(self.weight, torch.gather(seg_w, 1, keep).clamp_max(MAX_MERGE_WEIGHT), 0.0)
        write(self.xyz, torch.gather(seg_xyz, 1, keep3), 0.0)
        write(self.rgb, torch.gather(seg_rgb, 1, keep3), 0.0)
        if self.offsets is not None and offsets is not None:  # merged as the colour is
            idx6 = segment[..., None].expand(B, M, 6)
            offsets = torch.gather(offsets, 1, order[..., None].expand(B, M, 6)) * w[..., None]
            seg_offsets = torch.zeros_like(offsets).scatter_add(1, idx6, offsets) / denom
            write(
                self.offsets, torch.gather(seg_offsets, 1, keep[..., None].expand(B, self.capacity, 6)), 0.0
            )
        write(self.last_seen, torch.gather(seg_seen, 1, keep), 0)
        write(self.pinned, torch.gather(seg_pin, 1, keep) > 0, False)
        write(self.primary, torch.gather(seg_primary, 1, keep) > 0, False)
        self.valid.copy_(kept_ok)

    def render(
        self,
        K: torch.Tensor,
        pose_c2w: torch.Tensor,
        height: int,
        width: int,
        backend: str = "auto",
        with_pins: bool = False,
        cameras_per_world: int = 1,
        pinned_margin: float = 0.0,
        with_offsets: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Splats each world's cloud into its cameras: (rgb (N,H,W,C), depth (N,H,W), mask (N,H,W)).

        See `splat.splat`; colours are in the inserted units, zero where the mask is False.
        ``with_pins`` adds each voxel's pinned flag as channel `PIN_CHANNEL` (1.0 where the pixel
        shows a pinned reference voxel, 2.0 where that voxel is the primary reference's, `insert`);
        ``with_offsets`` (with pins only) adds its sample offsets as channels `OFFSET_CHANNELS`.
        With ``cameras_per_world`` A, K and pose_c2w hold N = B·A
        cameras, world b's at rows b·A … b·A + A − 1.

        ``pinned_margin`` m > 0 gives the pinned reference priority in the z-test: an unpinned
        voxel hides a pinned one only when it is nearer than 1/(1 + m) of the pinned one's depth.
        The reference is ground truth, while generated depth errs — mostly too near — and a
        slightly-too-near generated surface would otherwise cover the exact reference wherever a
        world comes back to a view it started from. Unpinned voxels are pushed back along their
        camera rays by the factor 1 + m, which leaves their pixel unchanged; the depth returned is
        each winner's true depth.
        """
        checked_pinned_margin(pinned_margin)
        if with_offsets and not with_pins:
            raise ValueError("with_offsets needs with_pins (the offset channels follow the pin channel)")
        if with_offsets and self.offsets is None:
            raise ValueError("with_offsets needs a memory made with keep_offsets")
        dtype = self.xyz.dtype
        prioritise = pinned_margin > 0.0
        pins = with_pins or prioritise
        values = self.rgb
        if pins:  # 1 pinned, 2 the primary reference's
            pin_level = self.pinned.to(dtype) + self.primary.to(dtype)
            values = torch.cat([self.rgb, pin_level[..., None]], dim=-1)
        if with_offsets:
            values = torch.cat([values, self.offsets], dim=-1)
        a = cameras_per_world

        def per_camera(t: torch.Tensor) -> torch.Tensor:
            return t if a == 1 else t.repeat_interleave(a, 0)

        pose = pose_c2w.to(dtype)
        xyz = per_camera(self.xyz)
        if prioritise:
            centre = pose[:, None, :3, 3]
            stretch = torch.where(per_camera(self.pinned), 1.0, 1.0 + pinned_margin)[..., None]
            xyz = centre + stretch.to(dtype) * (xyz - centre)
        rgb, depth, mask = splat(
            xyz, per_camera(values), per_camera(self.valid), K.to(dtype), pose, height, width, backend
        )
        if prioritise:
            depth = torch.where(rgb[..., PIN_CHANNEL] > 0.5, depth, depth / (1.0 + pinned_margin))
            if not with_pins:
                rgb = rgb[..., :-1]
        return rgb, depth, mask
