"""Converts a recorded dataset into TartanAir, RealEstate10K or COLMAP layouts.

Each exporter reads only finished episodes (the manifest) and converts GenWorld's
conventions (world Z up; camera-to-world poses with OpenCV camera axes; K with pixel
centres at integer coordinates) into the target's at this one boundary:

- `tartanair`: OUT/<episode>/<agent>/ with image_left/NNNNNN_left.png,
  depth_left/NNNNNN_left_depth.npy (float32 metres; +inf becomes TARTANAIR_SKY_DEPTH, as
  TartanAir stores sky as a large finite depth) and pose_left.txt, one `tx ty tz qx qy qz qw`
  line per frame in TartanAir's NED convention: the world is NED (our Z-up world is read
  as ENU: x east, y north, z up) and the camera body axes are x forward, y right, z down.
  intrinsics.txt (`fx fy cx cy width height`, OpenCV pixel centres) is an extra, since
  TartanAir ships its one fixed camera in its docs rather than in files.
- `realestate10k`: OUT/<episode>_<agent>.txt (first line an identifier URL, then per frame
  `timestamp_us fx/W fy/H cx' cy' 0 0` + the 3x4 world-to-camera matrix row-major) and
  OUT/<episode>_<agent>/<timestamp_us>.png. RealEstate10K intrinsics are fractions of the
  image extent measured from the image corner (0.5 = the centre), so the principal point
  is written as (cx + 0.5) / W: a centred camera exports exactly 0.5 and the numbers stay
  valid when frames are resized.
- `colmap`: OUT/<episode>/images/<agent>/NNNNNN.png and a text model in
  OUT/<episode>/sparse/0/: cameras.txt (PINHOLE; COLMAP puts pixel centres at +0.5, so
  cx, cy are shifted by half a pixel), images.txt (world-to-camera QW QX QY QZ TX TY TZ
  and an empty 2D-point line), points3D.txt (a colour point cloud back-projected from
  ground-truth depth on a frame/pixel grid and thinned to one point per voxel; tracks are
  empty because images list no 2D points). All agents of an episode share one model,
  since they share one world.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image
from tqdm import tqdm

from bridge.conventions import (
    matrix_to_quat,
    pose_from_quat,
    se3,
    se3_inverse,
    transform_points,
    unproject_depth,
)
from bridge.trajectory_format import load_field, read_manifest

log = logging.getLogger(__name__)

FORMATS = ("tartanair", "realestate10k", "colmap")
# PNG is lossless at any level; 1 is several times faster than the default 6.
PNG_COMPRESS_LEVEL = 1
FRAME_DIGITS = 6

# GenWorld world (read as ENU: x east, y north, z up) -> NED (x north, y east, z down).
ENU_TO_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
# Columns: TartanAir body axes (forward, right, down) in OpenCV camera coordinates.
NED_BODY_TO_CV = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
TARTANAIR_SKY_DEPTH = 10000.0

RE10K_URL_SCHEME = "genworld://"
US_PER_S = 1_000_000
# Used for RealEstate10K timestamps when a world reports no increasing sim_time.
FALLBACK_FRAME_PERIOD_US = 100_000

COLMAP_PIXEL_CENTRE = 0.5
COLMAP_POINTS_FRAME_STRIDE = 10
COLMAP_POINTS_PIXEL_STRIDE = 4
COLMAP_POINTS_VOXEL_M = 0.05


@dataclass(frozen=True)
class _Sequence:
    """One agent's frames in one episode: the unit every format writes."""

    root: Path
    episode: str
    agent: str
    agent_index: int
    frames: int

    def field(self, name: str) -> np.ndarray:
        return load_field(self.root, self.episode, name)[:, self.agent_index]


# --------------------------------------------------------------------------- conventions
def pose_to_tartanair(pose: ArrayLike) -> NDArray[np.float64]:
    """(tx, ty, tz, qx, qy, qz, qw) in TartanAir's NED convention of a camera-to-world pose."""
    ned = se3(ENU_TO_NED, np.zeros(3)) @ np.asarray(pose, dtype=np.float64) @ se3(NED_BODY_TO_CV, np.zeros(3))
    w, x, y, z = matrix_to_quat(ned[:3, :3])
    return np.array([*ned[:3, 3], x, y, z, w])


def tartanair_to_pose(row: ArrayLike) -> NDArray[np.float64]:
    """Inverse of `pose_to_tartanair`: camera-to-world OpenCV pose in GenWorld's world."""
    tx, ty, tz, qx, qy, qz, qw = np.asarray(row, dtype=np.float64)
    ned = pose_from_quat([tx, ty, tz], [qw, qx, qy, qz])
    return se3(ENU_TO_NED.T, np.zeros(3)) @ ned @ se3(NED_BODY_TO_CV.T, np.zeros(3))


def re10k_intrinsics(K: ArrayLike, height: int, width: int) -> NDArray[np.float64]:
    """RealEstate10K (fx, fy, cx, cy) as fractions of the image, from an OpenCV K."""
    K = np.asarray(K, dtype=np.float64)
    return np.array([K[0, 0] / width, K[1, 1] / height, (K[0, 2] + 0.5) / width, (K[1, 2] + 0.5) / height])


def _timestamps_us(sim_time: np.ndarray) -> np.ndarray:
    stamps = np.round(np.asarray(sim_time, dtype=np.float64) * US_PER_S).astype(np.int64)
    if len(stamps) > 1 and not np.all(np.diff(stamps) > 0):
        log.warning("sim_time is not strictly increasing; using %d us per frame", FALLBACK_FRAME_PERIOD_US)
        stamps = np.arange(len(stamps), dtype=np.int64) * FALLBACK_FRAME_PERIOD_US
    return stamps


def _fmt(values: ArrayLike) -> str:
    return " ".join(repr(float(v)) for v in np.ravel(values))


def _save_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, compress_level=PNG_COMPRESS_LEVEL)


# --------------------------------------------------------------------------- formats
def _export_tartanair(seq: _Sequence, out: Path, tick: Callable[[], None]) -> None:
    base = out / seq.episode / seq.agent
    (base / "depth_left").mkdir(parents=True, exist_ok=True)
    rgb, depth, pose, K = seq.field("rgb"), seq.field("depth"), seq.field("pose"), seq.field("K")
    lines = []
    for t in range(seq.frames):
        _save_png(base / "image_left" / f"{t:0{FRAME_DIGITS}d}_left.png", rgb[t])
        d = np.where(np.isfinite(depth[t]), depth[t], TARTANAIR_SKY_DEPTH).astype(np.float32)
        np.save(base / "depth_left" / f"{t:0{FRAME_DIGITS}d}_left_depth.npy", d)
        lines.append(_fmt(pose_to_tartanair(pose[t])))
        tick()
    (base / "pose_left.txt").write_text("\n".join(lines) + "\n")
    h, w = rgb.shape[1:3]
    k = K[0]
    (base / "intrinsics.txt").write_text(
        f"# fx fy cx cy width height\n{_fmt([k[0, 0], k[1, 1], k[0, 2], k[1, 2]])} {w} {h}\n"
    )


def _export_realestate10k(seq: _Sequence, out: Path, tick: Callable[[], None]) -> None:
    name = f"{seq.episode}_{seq.agent}"
    rgb, pose, K = seq.field("rgb"), seq.field("pose"), seq.field("K")
    h, w = rgb.shape[1:3]
    stamps = _timestamps_us(seq.field("sim_time"))
    lines = [f"{RE10K_URL_SCHEME}{seq.root.name}/{seq.episode}/{seq.agent}"]
    for t in range(seq.frames):
        _save_png(out / name / f"{stamps[t]}.png", rgb[t])
        world_to_cam = se3_inverse(pose[t])[:3, :]
        lines.append(f"{stamps[t]} {_fmt(re10k_intrinsics(K[t], h, w))} 0.0 0.0 {_fmt(world_to_cam)}")
        tick()
    (out / f"{name}.txt").write_text("\n".join(lines) + "\n")


class _ColmapModel:
    """Accumulates one episode's cameras, images and points, then writes the text model."""

    def __init__(self) -> None:
        self.cameras: dict[tuple[float, ...], int] = {}
        self.images: list[str] = []
        self.points: list[NDArray[np.float64]] = []
        self.colours: list[NDArray[np.uint8]] = []

    def camera_id(self, K: np.ndarray, height: int, width: int) -> int:
        c = COLMAP_PIXEL_CENTRE
        key = (
            float(width),
            float(height),
            float(K[0, 0]),
            float(K[1, 1]),
            float(K[0, 2] + c),
            float(K[1, 2] + c),
        )
        return self.cameras.setdefault(key, len(self.cameras) + 1)

    def add_image(self, name: str, pose: np.ndarray, camera_id: int) -> None:
        world_to_cam = se3_inverse(pose)
        q = matrix_to_quat(world_to_cam[:3, :3])
        self.images.append(f"{len(self.images) + 1} {_fmt(q)} {_fmt(world_to_cam[:3, 3])} {camera_id} {name}")

    def add_points(self, rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, pose: np.ndarray) -> None:
        s = COLMAP_POINTS_PIXEL_STRIDE
        cam = unproject_depth(K, depth)[::s, ::s].reshape(-1, 3)
        keep = np.isfinite(cam).all(axis=1)
        self.points.append(transform_points(pose, cam[keep]))
        self.colours.append(np.asarray(rgb)[::s, ::s].reshape(-1, 3)[keep])

    def thinned_points(self) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
        """The first point that landed in each voxel, in the order they were added."""
        if not self.points:
            return np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
        points, colours = np.concatenate(self.points), np.concatenate(self.colours)
        voxels = np.floor(points / COLMAP_POINTS_VOXEL_M).astype(np.int64)
        _, first = np.unique(voxels, axis=0, return_index=True)
        first.sort()
        return points[first], colours[first]

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        cameras = [f"{cid} PINHOLE {int(k[0])} {int(k[1])} {_fmt(k[2:])}" for k, cid in self.cameras.items()]
        (directory / "cameras.txt").write_text(
            "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
            f"# Number of cameras: {len(cameras)}\n" + "".join(c + "\n" for c in cameras)
        )
        (directory / "images.txt").write_text(
            "# Image list with two lines of data per image:\n"
            "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
            "#   POINTS2D[] as (X, Y, POINT3D_ID)\n"
            f"# Number of images: {len(self.images)}, mean observations per image: 0\n"
            + "".join(line + "\n\n" for line in self.images)
        )
        points = [
            f"{i} {_fmt(p)} {int(c[0])} {int(c[1])} {int(c[2])} 0.0"
            for i, (p, c) in enumerate(zip(*self.thinned_points(), strict=True), start=1)
        ]
        (directory / "points3D.txt").write_text(
            "# 3D point list with one line of data per point:\n"
            "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
            f"# Number of points: {len(points)}, mean track length: 0\n" + "".join(p + "\n" for p in points)
        )


def _export_colmap_episode(seqs: list[_Sequence], out: Path, tick: Callable[[], None]) -> None:
    base = out / seqs[0].episode
    model = _ColmapModel()
    for seq in seqs:
        rgb, depth, pose, K = seq.field("rgb"), seq.field("depth"), seq.field("pose"), seq.field("K")
        h, w = rgb.shape[1:3]
        for t in range(seq.frames):
            name = f"{seq.agent}/{t:0{FRAME_DIGITS}d}.png"
            _save_png(base / "images" / name, rgb[t])
            model.add_image(name, pose[t], model.camera_id(K[t], h, w))
            if t % COLMAP_POINTS_FRAME_STRIDE == 0:
                model.add_points(rgb[t], depth[t], K[t], pose[t])
            tick()
    model.write(base / "sparse" / "0")


# --------------------------------------------------------------------------- entry point
def _sequences(root: Path, manifest: dict[str, Any]) -> Iterator[list[_Sequence]]:
    """Per finished episode, one _Sequence per agent."""
    agents = manifest.get("agent_ids") or []
    for episode in manifest["episodes"]:
        yield [
            _Sequence(root, episode["name"], agent, a, episode["frames"]) for a, agent in enumerate(agents)
        ]


def export(fmt: str, src: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Writes the finished episodes of the dataset at `src` into `out` in format `fmt`.

    Args:
        fmt: `tartanair`, `realestate10k` or `colmap`.
        src: dataset directory written by `bridge.recorder.record`.
        out: output directory; created, and refused if it already has content (an export
            never mixes with, or silently overwrites, earlier files).

    Returns:
        The output directory.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    root, out = Path(src), Path(out)
    manifest = read_manifest(root)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; export into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    episodes = list(_sequences(root, manifest))
    total = sum(seq.frames for seqs in episodes for seq in seqs)
    with tqdm(total=total, desc=f"export {fmt}", unit="frame") as bar:
        tick = lambda: bar.update(1)  # noqa: E731
        for seqs in episodes:
            if fmt == "colmap":
                _export_colmap_episode(seqs, out, tick)
                continue
            for seq in seqs:
                (_export_tartanair if fmt == "tartanair" else _export_realestate10k)(seq, out, tick)
    log.info("exported %d episodes (%d frames) from %s to %s as %s", len(episodes), total, root, out, fmt)
    return out
