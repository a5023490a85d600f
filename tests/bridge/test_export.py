"""Exporters: each layout parses back to the recorded images, depth, poses and intrinsics."""

import numpy as np
import pytest
from PIL import Image

from bridge.conventions import project, quat_to_matrix, se3, se3_inverse, transform_points
from bridge.export import (
    COLMAP_POINTS_VOXEL_M,
    ENU_TO_NED,
    TARTANAIR_SKY_DEPTH,
    export,
    tartanair_to_pose,
)
from bridge.recorder import record
from bridge.trajectory_format import load_field

EPISODES, STEPS, AGENTS = 2, 11, 2
FRAMES = STEPS + 1
H, W = 12, 16
SEQUENCES = [(f"ep_{e:06d}", f"agent_{a}", a) for e in range(EPISODES) for a in range(AGENTS)]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ds"
    record(
        world="mujoco",
        scene="rooms",
        episodes=EPISODES,
        steps=STEPS,
        policy="random",
        out=out,
        resolution=(H, W),
        seed=2,
        num_agents=AGENTS,
    )
    return out


def _recorded(src, episode, agent_index, field):
    return np.asarray(load_field(src, episode, field)[:, agent_index])


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_tartanair_round_trips_images_depth_and_ned_poses(src, tmp_path):
    out = export("tartanair", src, tmp_path / "tartan")
    for episode, agent, a in SEQUENCES:
        base = out / episode / agent
        rgb, depth, pose = (_recorded(src, episode, a, f) for f in ("rgb", "depth", "pose"))
        rows = np.loadtxt(base / "pose_left.txt")
        assert rows.shape == (FRAMES, 7)
        for t in range(FRAMES):
            np.testing.assert_array_equal(_png(base / "image_left" / f"{t:06d}_left.png"), rgb[t])
            d = np.load(base / "depth_left" / f"{t:06d}_left_depth.npy")
            assert d.dtype == np.float32 and np.isfinite(d).all()
            np.testing.assert_array_equal(d, np.where(np.isfinite(depth[t]), depth[t], TARTANAIR_SKY_DEPTH))
            np.testing.assert_allclose(tartanair_to_pose(rows[t]), pose[t], atol=1e-9)
            # Independently of the inverse: NED position, and body axes forward/right/down.
            tx, ty, tz, qx, qy, qz, qw = rows[t]
            R_ned = quat_to_matrix([qw, qx, qy, qz])
            np.testing.assert_allclose([tx, ty, tz], ENU_TO_NED @ pose[t][:3, 3], atol=1e-9)
            np.testing.assert_allclose(
                [tx, ty, tz], [pose[t][1, 3], pose[t][0, 3], -pose[t][2, 3]], atol=1e-9
            )
            for body_axis, cv_axis in ((0, 2), (1, 0), (2, 1)):  # forward=z_cv, right=x_cv, down=y_cv
                np.testing.assert_allclose(R_ned[:, body_axis], ENU_TO_NED @ pose[t][:3, cv_axis], atol=1e-9)
        fx, fy, cx, cy, width, height = np.loadtxt(base / "intrinsics.txt")
        K = _recorded(src, episode, a, "K")[0]
        np.testing.assert_allclose([fx, fy, cx, cy], [K[0, 0], K[1, 1], K[0, 2], K[1, 2]])
        assert (width, height) == (W, H)


def test_realestate10k_lines_hold_normalised_intrinsics_and_world_to_camera(src, tmp_path):
    out = export("realestate10k", src, tmp_path / "re10k")
    for episode, agent, a in SEQUENCES:
        lines = (out / f"{episode}_{agent}.txt").read_text().splitlines()
        assert lines[0].startswith("genworld://") and episode in lines[0]
        rows = [line.split() for line in lines[1:]]
        assert len(rows) == FRAMES and all(len(r) == 19 for r in rows)
        stamps = [int(r[0]) for r in rows]
        assert stamps == sorted(set(stamps))
        sim_time = _recorded(src, episode, a, "sim_time")
        np.testing.assert_array_equal(stamps, np.round(sim_time * 1e6).astype(int))
        K, pose, rgb = (_recorded(src, episode, a, f) for f in ("K", "pose", "rgb"))
        for t, row in enumerate(rows):
            fx, fy, cx, cy, d0, d1 = (float(v) for v in row[1:7])
            assert (d0, d1) == (0.0, 0.0)
            assert fx * W == pytest.approx(K[t][0, 0]) and fy * H == pytest.approx(K[t][1, 1])
            # Fractions of the image from its corner: OpenCV pixel centre cx sits at cx + 0.5.
            assert cx * W - 0.5 == pytest.approx(K[t][0, 2]) and cy * H - 0.5 == pytest.approx(K[t][1, 2])
            assert (cx, cy) == pytest.approx((0.5, 0.5))  # MujocoWorld's camera is centred
            world_to_cam = np.vstack([np.array(row[7:], dtype=float).reshape(3, 4), [0, 0, 0, 1]])
            np.testing.assert_allclose(se3_inverse(world_to_cam), pose[t], atol=1e-9)
            np.testing.assert_array_equal(_png(out / f"{episode}_{agent}" / f"{stamps[t]}.png"), rgb[t])


def _parse_colmap(sparse):
    cameras = {}
    for line in (sparse / "cameras.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        cid, model, width, height, *params = line.split()
        assert model == "PINHOLE"
        cameras[int(cid)] = (int(width), int(height), [float(p) for p in params])
    body = [line for line in (sparse / "images.txt").read_text().splitlines() if not line.startswith("#")]
    images, ids = {}, set()
    for header, points in zip(body[0::2], body[1::2], strict=True):
        assert points == ""  # no 2D observations
        iid, qw, qx, qy, qz, tx, ty, tz, cid, name = header.split()
        ids.add(int(iid))
        images[name] = (np.array([qw, qx, qy, qz], float), np.array([tx, ty, tz], float), int(cid))
    assert len(ids) == len(images)
    points = np.array(
        [
            line.split()[1:8]
            for line in (sparse / "points3D.txt").read_text().splitlines()
            if not line.startswith("#")
        ],
        dtype=float,
    )
    return cameras, images, points


def test_colmap_model_inverts_back_to_the_recorded_cameras(src, tmp_path):
    out = export("colmap", src, tmp_path / "colmap")
    for e in range(EPISODES):
        episode = f"ep_{e:06d}"
        cameras, images, points = _parse_colmap(out / episode / "sparse" / "0")
        assert len(images) == AGENTS * FRAMES
        for a in range(AGENTS):
            pose, K, rgb = (_recorded(src, episode, a, f) for f in ("pose", "K", "rgb"))
            for t in range(FRAMES):
                name = f"agent_{a}/{t:06d}.png"
                q, tvec, cid = images[name]
                camera_to_world = se3_inverse(se3(quat_to_matrix(q), tvec))
                np.testing.assert_allclose(camera_to_world, pose[t], atol=1e-9)
                width, height, (fx, fy, cx, cy) = cameras[cid]
                assert (width, height) == (W, H)
                np.testing.assert_allclose(
                    [fx, fy, cx - 0.5, cy - 0.5], [K[t][0, 0], K[t][1, 1], K[t][0, 2], K[t][1, 2]]
                )
                np.testing.assert_array_equal(_png(out / episode / "images" / name), rgb[t])
        _check_points_lie_on_recorded_depth(src, episode, points)


def _check_points_lie_on_recorded_depth(src, episode, points):
    """Back-projected points seen by frame 0 (a sampled frame) sit on its depth map."""
    assert len(points) > 0 and np.isfinite(points).all()
    assert ((points[:, 3:6] >= 0) & (points[:, 3:6] <= 255)).all()
    pose, K, depth = (_recorded(src, episode, 0, f)[0] for f in ("pose", "K", "depth"))
    uv, z = project(K, transform_points(se3_inverse(pose), points[:, :3]))
    u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    on_surface = np.abs(depth[v[inside], u[inside]] - z[inside]) < 2 * COLMAP_POINTS_VOXEL_M
    assert on_surface.sum() >= 0.5 * inside.sum() > 0


def test_export_refuses_a_non_empty_output_and_unknown_formats(src, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        export("colmap", src, tmp_path / "busy")
    with pytest.raises(ValueError, match="unknown export format"):
        export("kitti", src, tmp_path / "kitti")
