"""`genworld demo`: the default env on the CPU, a scripted agent, ground truth beside it.

Runs `GenWorld/Navigate-v0` with the shipped model (random weights if its file is missing — the
demo says so) and ``shadow="mujoco"``: every step the MuJoCo engine renders the same pose, so the
video shows generated | ground truth | generated depth, and the console prints each step's
fidelity (PSNR, depth error) and the env's steps per second.

The demo walks from goal to goal through the house, into rooms the start never saw, so it gives
the world the engine's scan from `DEMO_REFERENCE_POSITIONS` spots with footprint occlusion
(`sim_env.reference_scan`), and its reference voxels hide what lies between their samples
(`sim_env.memory.sample_spacing`). The envs keep one spot: the scan costs loop closure, which a
demo does not measure and the envs' adoption rule does (docs/model.md). ``--reference-positions 1
--no-footprint-occlusion --no-sample-footprints`` runs the envs' own defaults.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bridge.viz import colorize_depth, side_by_side, upscale, write_video
from sim_env.reference_sweep import FULL_SWEEP_VIEWS

log = logging.getLogger(__name__)

VIDEO_SCALE = 4
VIDEO_FPS = 10
DEPTH_RANGE_M = (0.3, 12.0)
KEY_FORWARD, KEY_YAW_LEFT, KEY_YAW_RIGHT = 1, 5, 6
# The navigator turns until the goal is within this bearing, then walks.
HEADING_TOLERANCE_RAD = math.radians(15.0)
# Turns away for this many steps after a blocked move,
UNBLOCK_TURN_STEPS = 4
# then walks this many steps on the new heading before facing the goal again (a wall between the
# agent and its goal would otherwise stop it at the same spot every time).
DETOUR_STEPS = 8
# The demo's scan (module docstring): on the 72 held-out test episodes (H100) it raised PSNR@32 by
# 2.6 dB and SSIM@32 by 0.06 over the envs' one spot, and the demo's own PSNR from 20.2 to 22.7 dB.
DEMO_REFERENCE_POSITIONS = 4
DEMO_FOOTPRINT_OCCLUSION = True
# Its reference voxels also hide what lies between their samples (sim_env.memory.sample_spacing): on
# the CPU validation seeds PSNR@32 +0.19 and @128 +0.22 dB, loop closure unchanged (docs/model.md).
DEMO_SAMPLE_FOOTPRINTS = True


@dataclass
class GoalNavigator:
    """A scripted point-goal agent: face the goal, walk; when blocked, turn away and walk a detour."""

    rng: np.random.Generator
    turning: int = 0
    detour: int = 0
    turn_key: int = KEY_YAW_LEFT

    def act(self, obs: dict[str, np.ndarray], collided: bool) -> int:
        """Next key from the goal vector (forward, right, distance) in the heading frame."""
        if collided and self.turning == 0:
            self.turning, self.detour = UNBLOCK_TURN_STEPS, 0
            self.turn_key = int(self.rng.choice([KEY_YAW_LEFT, KEY_YAW_RIGHT]))
        if self.turning > 0:
            self.turning -= 1
            if self.turning > 0:
                return self.turn_key
            self.detour = DETOUR_STEPS
        if self.detour > 0:
            self.detour -= 1
            return KEY_FORWARD
        forward, right, _ = (float(v) for v in obs["goal"])
        bearing = math.atan2(right, forward)  # positive: goal to the right
        if abs(bearing) <= HEADING_TOLERANCE_RAD:
            return KEY_FORWARD
        return KEY_YAW_RIGHT if bearing > 0 else KEY_YAW_LEFT


def run_demo(
    out: str | Path = "demo.mp4",
    steps: int = 200,
    seed: int = 0,
    world: str = "generative",
    denoising_steps: int = 4,
    resolution: tuple[int, int] = (64, 64),
    reference_views: int = FULL_SWEEP_VIEWS,
    reference_positions: int = DEMO_REFERENCE_POSITIONS,
    footprint_occlusion: bool = DEMO_FOOTPRINT_OCCLUSION,
    sample_footprints: bool = DEMO_SAMPLE_FOOTPRINTS,
) -> dict[str, float]:
    """Runs the demo and writes the video.

    ``reference_views``, ``reference_positions``, ``footprint_occlusion`` and ``sample_footprints``
    are the env's keywords (generative world only); the demo's scan is the default (module docstring).

    Returns:
        steps, steps_per_s (env steps incl. generation, excluding the shadow's rendering),
        mean_psnr, mean_depth_error, episodes, video path.
    """
    import gymnasium as gym

    import sim_env  # noqa: F401 - registers the ids
    from sim_env.envs.world_factory import DEFAULT_CHECKPOINT, uses_random_weights

    if world == "generative":
        if uses_random_weights("default"):
            print(
                "GenWorld demo - NOTE: no trained model has shipped yet "
                f"({DEFAULT_CHECKPOINT} is missing), so the generated panel comes from RANDOM weights. "
                "Poses, rewards, ground truth and timings are real."
            )
        else:
            occlusion = ", footprint occlusion on" if footprint_occlusion else ""
            if footprint_occlusion and sample_footprints:
                occlusion += " (also between the references' samples)"
            print(
                f"GenWorld demo - generative world with the shipped model {DEFAULT_CHECKPOINT}, given "
                f"{reference_views} views of the engine at each of {reference_positions} spot(s) at reset"
                + occlusion
            )
    env = gym.make(
        "GenWorld/Navigate-v0",
        world=world,
        device="cpu",
        shadow="mujoco",
        denoising_steps=denoising_steps,
        resolution=resolution,
        **(
            {
                "reference_views": reference_views,
                "reference_positions": reference_positions,
                "footprint_occlusion": footprint_occlusion,
                "sample_footprints": sample_footprints,
            }
            if world == "generative"
            else {}
        ),
    )
    agent = GoalNavigator(np.random.default_rng(seed))
    frames: list[np.ndarray] = []
    psnrs, depth_errors, episodes, env_seconds = [], [], 1, 0.0
    try:
        obs, info = env.reset(seed=seed)
        collided = False
        for step in tqdm(range(steps), desc="demo", unit="step"):
            start = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, collided))
            env_seconds += time.perf_counter() - start - info.get("shadow_seconds", 0.0)
            collided = bool(info["collided"])
            psnrs.append(info["psnr"])
            depth_errors.append(info["depth_error"])
            tqdm.write(
                f"step {step:4d}: PSNR {info['psnr']:6.2f} dB, depth error {info['depth_error']:6.3f} m, "
                f"goal {info['distance']:5.2f} m, reward {reward:+.3f}"
            )
            panels = [obs["rgb"], info["gt_rgb"], colorize_depth(obs["depth"][..., 0], *DEPTH_RANGE_M)]
            frames.append(upscale(side_by_side(panels), VIDEO_SCALE))
            if terminated or truncated:
                obs, info = env.reset()
                episodes += 1
                collided = False
    finally:
        env.close()
    path = write_video(out, frames, fps=VIDEO_FPS)
    finite = [p for p in psnrs if math.isfinite(p)]
    summary = {
        "steps": steps,
        "steps_per_s": steps / max(env_seconds, 1e-9),
        "mean_psnr": float(np.mean(finite)) if finite else math.inf,
        "mean_depth_error": float(np.mean(depth_errors)) if depth_errors else 0.0,
        "episodes": episodes,
    }
    print(
        f"{steps} steps of GenWorld/Navigate-v0 (world={world}) at {resolution[0]}x{resolution[1]}: "
        f"{summary['steps_per_s']:.1f} steps/s, mean PSNR {summary['mean_psnr']:.2f} dB, "
        f"mean depth error {summary['mean_depth_error']:.3f} m over {episodes} episode(s). "
        f"Video (generated | ground truth | depth): {path}"
    )
    return {**summary, "video": str(path)}


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `genworld demo` (kept beside the demo so it owns its interface)."""
    from bridge.cli import parse_resolution

    parser.add_argument("--out", default="demo.mp4", help="video path (.mp4 or .gif)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--world", default="generative", help="generative (default), mujoco or grpc://HOST:PORT"
    )
    parser.add_argument("--denoising-steps", type=int, default=4, help="flow-matching steps per frame")
    parser.add_argument(
        "--resolution", type=parse_resolution, default=(64, 64), help="HxW (the generative model fixes it)"
    )
    parser.add_argument(
        "--reference-views",
        type=int,
        default=FULL_SWEEP_VIEWS,
        help="generative world: views of the engine around the start given at reset (1: the start frame)",
    )
    parser.add_argument(
        "--reference-positions",
        type=int,
        default=DEMO_REFERENCE_POSITIONS,
        help="generative world: the sweep is rendered at this many positions (sim_env.reference_scan; "
        f"default {DEMO_REFERENCE_POSITIONS}, the envs' is 1)",
    )
    parser.add_argument(
        "--footprint-occlusion",
        action=argparse.BooleanOptionalAction,
        default=DEMO_FOOTPRINT_OCCLUSION,
        help="generative world: memory voxels hide what lies behind their footprints (default on with "
        "the demo's scan; the envs' default is off, docs/model.md)",
    )
    parser.add_argument(
        "--sample-footprints",
        action=argparse.BooleanOptionalAction,
        default=DEMO_SAMPLE_FOOTPRINTS,
        help="generative world, with footprint occlusion: a reference voxel also hides what lies "
        "between its view's samples (sim_env.memory.sample_spacing)",
    )


def run_demo_from_args(args: argparse.Namespace) -> int:
    """`genworld demo` with parsed arguments; exit status."""
    run_demo(
        out=args.out,
        steps=args.steps,
        seed=args.seed,
        world=args.world,
        denoising_steps=args.denoising_steps,
        resolution=args.resolution,
        reference_views=args.reference_views,
        reference_positions=args.reference_positions,
        footprint_occlusion=args.footprint_occlusion,
        sample_footprints=args.sample_footprints,
    )
    return 0
