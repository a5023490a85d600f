"""`genworld bench render`: MuJoCo engine frames per second (RGB + depth per frame).

Each case steps one `MujocoWorld` with a camera that keeps moving (turning while
walking forward; blocked moves still render), so every timed frame includes the nav
integration, the collision sweep, physics where the scene has it, and one RGB + planar
depth render. The figure is the median over `repeats` timed runs after a warm-up, which
keeps one-off costs (scene compile, GL context creation, texture upload) out of it.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from bridge.bench import report
from bridge.engines.mujoco_render import gl_backend
from bridge.engines.mujoco_world import MujocoWorld
from bridge.types import Action

WARMUP_FRAMES = 10
BENCH_SEED = 0
# Walk forward while turning left: the view changes every frame and the agent circles
# inside the room instead of pinning itself against one wall.
MOVING_CAMERA_NAV = (0.6, 0.0, 0.0, 0.5, 0.0, 0.0)


def _time_frames(world: MujocoWorld, frames: int) -> float:
    """Seconds for `frames` steps of the moving camera."""
    action = {"agent_0": Action.from_nav(np.asarray(MOVING_CAMERA_NAV))}
    start = time.perf_counter()
    for _ in range(frames):
        world.step(action)
    return time.perf_counter() - start


def bench_case(scene: str, height: int, width: int, frames: int, repeats: int) -> dict:
    """Median / min / max frames per second of one scene at one resolution."""
    world = MujocoWorld(scene=scene, height=height, width=width)
    try:
        world.reset(seed=BENCH_SEED)
        _time_frames(world, WARMUP_FRAMES)
        fps = [frames / _time_frames(world, frames) for _ in range(repeats)]
    finally:
        world.close()
    return {
        "scene": scene,
        "height": height,
        "width": width,
        "backend": gl_backend(),
        "frames": frames,
        "repeats": repeats,
        "median_fps": statistics.median(fps),
        "min_fps": min(fps),
        "max_fps": max(fps),
    }


def format_table(results: list[dict]) -> str:
    """Markdown table of bench results."""
    header = ["scene", "resolution (HxW)", "MUJOCO_GL", "median fps", "min fps", "max fps"]
    rows = [
        [
            r["scene"],
            f"{r['height']}x{r['width']}",
            r["backend"],
            *(f"{r[key]:.1f}" for key in ("median_fps", "min_fps", "max_fps")),
        ]
        for r in results
    ]
    return report.markdown_table(header, rows, text_columns=3)


def run_render_bench(
    resolutions: list[tuple[int, int]],
    scenes: list[str],
    frames: int,
    repeats: int,
    json_path: str | None,
) -> list[dict]:
    """Benchmarks every (scene, resolution), prints a markdown table, optionally writes JSON.

    Args:
        resolutions: (height, width) pairs.
        scenes: scene families (rooms, tabletop).
        frames: timed frames per run.
        repeats: timed runs per case; the median is reported.
        json_path: where to write the results as JSON, or None.

    Returns:
        One dict per case: scene, height, width, backend, frames, repeats, median_fps,
        min_fps, max_fps.
    """
    if frames < 1 or repeats < 1:
        raise ValueError(f"frames and repeats must be positive, got {frames} and {repeats}")
    results = [bench_case(scene, h, w, frames, repeats) for scene in scenes for h, w in resolutions]
    print(format_table(results))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return results
