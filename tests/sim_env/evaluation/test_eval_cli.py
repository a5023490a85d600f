"""`genworld train` → `genworld eval` through the console entry point, on tiny data."""

from __future__ import annotations

import json

import numpy as np

from sim_env.cli import main
from tests.sim_env.training.tiny_data import MEMORY_CAPACITY


def test_train_then_eval(tiny_data: dict, tmp_path) -> None:
    ckpt = tmp_path / "m.safetensors"
    train = f"train --config {tiny_data['config']} --steps 2 --out {ckpt} --batch-size 2 --span 6"
    train += f" --memory-capacity {MEMORY_CAPACITY} --device cpu"
    rc = main([*train.split(), "--data", str(tiny_data["rooms"]), str(tiny_data["tabletop"])])
    assert rc == 0 and ckpt.exists() and (tmp_path / "m.safetensors.state.pt").exists()
    assert list((tmp_path / "m.safetensors.tb").iterdir())  # TensorBoard events

    report_path = tmp_path / "eval" / "report.json"
    evaluate = f"eval --checkpoint {ckpt} --episodes 1 --horizon 8 --seed-offset 900 --out {report_path}"
    evaluate += f" --video {tmp_path / 'videos'} --device cpu --denoising-steps 1"
    evaluate += f" --trajectories loop,hand_motion --memory-capacity {MEMORY_CAPACITY}"
    rc = main(evaluate.split())
    assert rc == 0
    report = json.loads(report_path.read_text())
    assert report["horizons"] == [1, 8]
    assert set(report["variants"]) == {"model", "window", "reprojection", "no_hands"}
    model = report["variants"]["model"]
    for metric in ("psnr", "ssim", "depth_absrel"):
        assert set(model["by_horizon"][metric]) == {"1", "8"}
        assert len(model["curves"][metric]) == 8
    assert {"psnr", "ssim", "pose_error_m"} <= set(model["loop_closure"])
    closure = model["loop_closure"]
    assert closure["episodes"] == {"psnr": [closure["psnr"]], "ssim": [closure["ssim"]]}  # one episode
    assert 0.0 <= model["memory_symmetry"] <= 1.0
    loop = model["by_trajectory"]["loop"]
    assert len(loop["episodes"]["psnr"]["8"]) == 1 and loop["episodes"]["psnr"]["8"][0] == loop["psnr"]["8"]
    assert set(model["median_by_horizon"]["psnr"]) == {"1", "8"} == set(model["stderr_by_horizon"]["psnr"])
    assert 0.0 <= model["collision_agreement"] <= 1.0
    assert model["hand_region_psnr"] > 0.0
    assert model["steps_per_s"] > 0.0
    assert set(report["variants"]["no_hands"]["by_trajectory"]) == {"hand_motion"}
    # Geometry alone reproduces the start view when the loop returns to it (the pose is exact).
    assert report["variants"]["reprojection"]["loop_closure"]["pose_error_m"] < 1e-6
    displacement = report["variants"]["reprojection"]["by_trajectory"]["loop"]["displacement_m"]
    assert displacement["1"] > 0.0 and displacement["8"] < 1e-6  # moved, then back at the start
    assert 0.0 <= report["ground_truth"]["memory_symmetry"] <= 1.0
    for metric in ("psnr", "ssim", "depth_absrel", "hand_region_psnr"):
        assert (tmp_path / "eval" / f"report_{metric}.png").stat().st_size > 0
    assert len(model["curves"]["hand_region_psnr"]) == 8
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 7


def test_engine_pose_source_scores_every_variant_on_the_engine_path(tmp_path) -> None:
    from bridge.engines.mujoco_world import MujocoWorld
    from sim_env.evaluation.baselines import AGENT
    from sim_env.evaluation.runner import EvalSettings, _open_world, run_episode
    from sim_env.evaluation.trajectories import make_trajectory

    settings = EvalSettings(
        checkpoint=None, episodes=1, horizon=6, seed_offset=901, denoising_steps=1, pose_source="engine"
    )
    engine = MujocoWorld("rooms", 64, 64)
    try:
        poses = {}
        for variant in ("model", "reprojection"):
            world = _open_world(variant, settings)
            traj = make_trajectory("random_walk", 6, 7)
            trace = run_episode(world, engine, traj, 901, 6, False, follow_engine=True)
            poses[variant] = np.stack(trace.poses)
            assert trace.collided == [] and len(trace.metrics["psnr"]) == 6
        # The engine alone decides the path: the same for every variant, and the engine's own.
        traj = make_trajectory("random_walk", 6, 7)
        obs = engine.reset(seed=901, options={"scene": "rooms"})[AGENT]
        engine_poses = [obs.pose]
        for _ in range(6):
            obs = engine.step({AGENT: traj.act(obs)})[AGENT]
            engine_poses.append(obs.pose)
        np.testing.assert_allclose(poses["model"], np.stack(engine_poses), atol=1e-6)
        np.testing.assert_allclose(poses["reprojection"], np.stack(engine_poses), atol=1e-6)
    finally:
        engine.close()
    report_path = tmp_path / "report.json"
    rc = main(
        f"eval --checkpoint random --episodes 1 --horizon 4 --seed-offset 902 --out {report_path} "
        "--device cpu --denoising-steps 1 --trajectories loop --variants model,window "
        "--pose-source engine".split()
    )
    assert rc == 0
    report = json.loads(report_path.read_text())
    assert report["pose_source"] == "engine"
    assert "collision_agreement" not in report["variants"]["model"]


def test_a_reference_sweep_lets_geometry_show_the_view_behind_the_start(tmp_path) -> None:
    """With the engine's sweep, reprojection turned around matches the engine; with one view it cannot."""
    from bridge.engines.mujoco_world import MujocoWorld
    from sim_env.evaluation.baselines import AGENT
    from sim_env.evaluation.metrics import psnr
    from sim_env.evaluation.runner import EvalSettings, _open_world, run_episode
    from sim_env.evaluation.trajectories import make_trajectory
    from sim_env.reference_sweep import sweep_poses

    engine = MujocoWorld("rooms", 64, 64)
    try:
        scores = {}
        for views in (1, 8):
            settings = EvalSettings(
                checkpoint=None, episodes=1, horizon=2, seed_offset=902, reference_views=views
            )
            world = _open_world("reprojection", settings)
            traj = make_trajectory("random_walk", 2, 3)
            trace = run_episode(world, engine, traj, 902, 2, False, reference_views=views)
            start = trace.poses[0]
            behind = sweep_poses(start, 2)[1]
            scores[views] = psnr(world.set_pose(AGENT, behind).rgb, engine.set_pose(AGENT, behind).rgb)
        assert scores[8] > scores[1] + 8.0
    finally:
        engine.close()
