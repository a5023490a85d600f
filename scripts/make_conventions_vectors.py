"""Writes tests/data/conventions_vectors.json: shared Python/C++ test vectors.

Hand-derived cases (with `"source": "analytic"`) pin the conventions themselves; the
random cases (`"source": "bridge.conventions"`) pin the implementation so that the C++
core must agree with Python to 1e-9. Regenerate only when a convention deliberately
changes, and review the diff of the analytic cases by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bridge import conventions as cv

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "conventions_vectors.json"
SEED = 20261121
RANDOM_CASES = 8


def _m(a) -> list:
    return np.asarray(a, dtype=np.float64).round(15).tolist()


def analytic_cases() -> dict[str, list[dict]]:
    s = math.sqrt(0.5)
    return {
        "quat_to_matrix": [
            {"source": "analytic", "q": [1, 0, 0, 0], "R": _m(np.eye(3))},
            {"source": "analytic", "q": [s, 0, 0, s], "R": [[0, -1, 0], [1, 0, 0], [0, 0, 1]]},
            {"source": "analytic", "q": [0, 1, 0, 0], "R": [[1, 0, 0], [0, -1, 0], [0, 0, -1]]},
        ],
        "axis_angle_to_matrix": [
            {"source": "analytic", "rotvec": [0, 0, math.pi / 2], "R": [[0, -1, 0], [1, 0, 0], [0, 0, 1]]},
            {"source": "analytic", "rotvec": [math.pi / 2, 0, 0], "R": [[1, 0, 0], [0, 0, -1], [0, 1, 0]]},
        ],
        "intrinsics_from_fov": [
            {
                "source": "analytic",
                "width": 640,
                "height": 480,
                "fov_deg": 90.0,
                "axis": "horizontal",
                "K": [[320, 0, 319.5], [0, 320, 239.5], [0, 0, 1]],
            },
            {
                "source": "analytic",
                "width": 64,
                "height": 64,
                "fov_deg": 90.0,
                "axis": "vertical",
                "K": [[32, 0, 31.5], [0, 32, 31.5], [0, 0, 1]],
            },
        ],
        "project": [
            {
                "source": "analytic",
                "K": [[320, 0, 319.5], [0, 320, 239.5], [0, 0, 1]],
                "point_cam": [1.0, -0.5, 2.0],
                "pixel": [479.5, 159.5],
                "depth": 2.0,
            }
        ],
        "ue_location_to_world": [
            {"source": "analytic", "location_cm": [100, 200, 300], "position_m": [1, -2, 3]},
        ],
        "ue_camera_to_pose": [
            {
                # Unreal camera at rest looks along +X_ue; its right (+Y_ue) mirrors to -Y.
                "source": "analytic",
                "location_cm": [0, 0, 0],
                "rotator_deg": [0, 0, 0],
                "pose": [[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]],
            },
            {
                # Yaw 90° turns forward to +Y_ue (world -Y) and right to -X_ue (world -X).
                "source": "analytic",
                "location_cm": [100, 200, 300],
                "rotator_deg": [0, 90, 0],
                "pose": [[-1, 0, 0, 1], [0, 0, -1, -2], [0, -1, 0, 3], [0, 0, 0, 1]],
            },
            {
                # Pitch 90° looks straight up (+Z); the camera's up axis tilts to -X_ue, so
                # OpenCV y (= -up) is +X_ue = world +X; right stays +Y_ue = world -Y.
                "source": "analytic",
                "location_cm": [0, 0, 0],
                "rotator_deg": [90, 0, 0],
                "pose": [[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            },
        ],
    }


def random_cases(rng: np.random.Generator) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {k: [] for k in analytic_cases()}
    out["se3_inverse"] = []
    out["matrix_to_quat"] = []
    src = {"source": "bridge.conventions"}
    for _ in range(RANDOM_CASES):
        q = cv.normalize_quat(rng.normal(size=4))
        R = cv.quat_to_matrix(q)
        out["quat_to_matrix"].append({**src, "q": _m(q), "R": _m(R)})
        out["matrix_to_quat"].append({**src, "R": _m(R), "q": _m(cv.matrix_to_quat(R))})
        rotvec = rng.normal(size=3)
        out["axis_angle_to_matrix"].append(
            {**src, "rotvec": _m(rotvec), "R": _m(cv.axis_angle_to_matrix(rotvec))}
        )
        T = cv.se3(R, rng.normal(size=3) * 5)
        out["se3_inverse"].append({**src, "T": _m(T), "T_inv": _m(cv.se3_inverse(T))})
        w, h = int(rng.integers(16, 1920)), int(rng.integers(16, 1080))
        fov, axis = float(rng.uniform(20, 120)), str(rng.choice(["vertical", "horizontal"]))
        K = cv.intrinsics_from_fov(w, h, fov, axis)
        out["intrinsics_from_fov"].append(
            {**src, "width": w, "height": h, "fov_deg": fov, "axis": axis, "K": _m(K)}
        )
        p = np.append(rng.normal(size=2), rng.uniform(0.2, 20.0))
        pix, depth = cv.project(K, p)
        out["project"].append(
            {**src, "K": _m(K), "point_cam": _m(p), "pixel": _m(pix), "depth": float(depth)}
        )
        loc = rng.normal(size=3) * 1000
        out["ue_location_to_world"].append(
            {**src, "location_cm": _m(loc), "position_m": _m(cv.ue_location_to_world(loc))}
        )
        rot = [float(rng.uniform(-89, 89)), float(rng.uniform(-180, 180)), float(rng.uniform(-180, 180))]
        out["ue_camera_to_pose"].append(
            {**src, "location_cm": _m(loc), "rotator_deg": rot, "pose": _m(cv.ue_camera_to_pose(loc, rot))}
        )
    return out


def main() -> None:
    vectors: dict = {"format": "genworld-conventions-vectors", "version": 1, "atol": 1e-9}
    cases = analytic_cases()
    for key, extra in random_cases(np.random.default_rng(SEED)).items():
        cases.setdefault(key, []).extend(extra)
    vectors.update(cases)
    OUT.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
