"""`genworld demo`: the default world on the CPU, a scripted agent, a video and figures.

Until the generative model ships (issues 4–6) the demo drives the MuJoCo ground-truth
engine — the world the model will be trained on and measured against — and says so.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bridge.cli import parse_resolution
from bridge.types import Action, Observation
from bridge.viz import colorize_depth, side_by_side, upscale, write_video

log = logging.getLogger(__name__)

# The explorer turns away when the centre of its view is closer than this.
OBSTACLE_DISTANCE_M = 0.6
# How many yaw steps a turn lasts, drawn uniformly per turn.
TURN_STEPS_RANGE = (3, 9)
VIDEO_SCALE = 4
VIDEO_FPS = 10
# Depth colour range per scene family: rooms span metres, the tabletop tens of centimetres.
DEPTH_RANGE_M = {"rooms": (0.3, 12.0), "tabletop": (0.2, 1.5)}
KEY_FORWARD, KEY_YAW_LEFT, KEY_YAW_RIGHT = 1, 5, 6


@dataclass
class Explorer:
    """Walks forward and turns away from walls: enough to show a scene from many views."""

    rng: np.random.Generator
    turning: int = 0
    turn_key: int = KEY_YAW_LEFT

    def act(self, obs: Observation) -> Action:
        """Next key from the current frame's depth straight ahead."""
        h, w = obs.depth.shape
        ahead = float(np.min(obs.depth[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3]))
        if self.turning == 0 and (obs.collided or ahead < OBSTACLE_DISTANCE_M):
            self.turning = int(self.rng.integers(*TURN_STEPS_RANGE))
            self.turn_key = int(self.rng.choice([KEY_YAW_LEFT, KEY_YAW_RIGHT]))
        if self.turning > 0:
            self.turning -= 1
            return Action.from_key(self.turn_key)
        return Action.from_key(KEY_FORWARD)


def run_demo(
    out: str | Path = "demo.mp4",
    steps: int = 200,
    scene: str = "rooms",
    seed: int = 0,
    resolution: tuple[int, int] = (64, 64),
) -> dict[str, float]:
    """Runs the demo and writes a video with RGB | depth panels.

    Returns:
        steps, steps per second (engine step incl. rendering), collisions, video path.
    """
    from bridge.engines.mujoco_world import MujocoWorld

    print(
        "GenWorld demo — the generative world model has not shipped yet, so this run shows the "
        "MuJoCo ground-truth engine it will be trained on and compared against."
    )
    height, width = resolution
    world = MujocoWorld(scene=scene, height=height, width=width)
    explorer = Explorer(np.random.default_rng(seed))
    frames: list[np.ndarray] = []
    collisions = 0
    try:
        obs = world.reset(seed=seed)["agent_0"]
        start = time.perf_counter()
        for _ in tqdm(range(steps), desc="demo", unit="step"):
            obs = world.step({"agent_0": explorer.act(obs)})["agent_0"]
            collisions += int(obs.collided)
            frames.append(
                upscale(
                    side_by_side([obs.rgb, colorize_depth(obs.depth, *DEPTH_RANGE_M[scene])]), VIDEO_SCALE
                )
            )
        elapsed = time.perf_counter() - start
    finally:
        world.close()
    path = write_video(out, frames, fps=VIDEO_FPS)
    summary = {"steps": steps, "steps_per_s": steps / elapsed, "collisions": collisions}
    print(
        f"{steps} steps at {height}x{width} in {elapsed:.1f} s: {summary['steps_per_s']:.1f} steps/s, "
        f"{collisions} blocked moves. Video (RGB | depth): {path}"
    )
    return {**summary, "video": str(path)}


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `genworld demo` (kept beside the demo so it owns its interface)."""
    parser.add_argument("--out", default="demo.mp4", help="video path (.mp4 or .gif)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--scene", default="rooms", choices=["rooms", "tabletop"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=parse_resolution, default=(64, 64), help="HxW")


def run_demo_from_args(args: argparse.Namespace) -> int:
    """`genworld demo` with parsed arguments; exit status."""
    run_demo(out=args.out, steps=args.steps, scene=args.scene, seed=args.seed, resolution=args.resolution)
    return 0
