"""`genworld train` → `genworld eval` through the console entry point, on tiny data."""

from __future__ import annotations

import json

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
    assert 0.0 <= model["memory_symmetry"] <= 1.0
    assert 0.0 <= model["collision_agreement"] <= 1.0
    assert model["hand_region_psnr"] > 0.0
    assert model["steps_per_s"] > 0.0
    assert set(report["variants"]["no_hands"]["by_trajectory"]) == {"hand_motion"}
    # Geometry alone reproduces the start view when the loop returns to it (the pose is exact).
    assert report["variants"]["reprojection"]["loop_closure"]["pose_error_m"] < 1e-6
    assert 0.0 <= report["ground_truth"]["memory_symmetry"] <= 1.0
    for metric in ("psnr", "ssim", "depth_absrel", "hand_region_psnr"):
        assert (tmp_path / "eval" / f"report_{metric}.png").stat().st_size > 0
    assert len(model["curves"]["hand_region_psnr"]) == 8
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 7
