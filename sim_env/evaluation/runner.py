"""`genworld eval`: roll worlds along evaluation trajectories next to a MuJoCo shadow.

Protocol per (variant, trajectory, episode): a `MujocoWorld` is reset on the held-out seed and
its first frame is the reference of the world under test. Every step the same action goes to
both; the engine's step gives its collision flag, then — for navigation — the engine camera is
teleported (`set_pose`) to the pose the world under test reached, so the ground truth is always
rendered at exactly the evaluated pose (hand actions move the simulated hands; the camera stays).
With ``pose_source="engine"`` the roles swap for navigation: the engine moves (its physics
decides collisions) and every world under test is teleported (`set_pose`) to the engine's new
pose and generates its frame there, so every variant is scored on exactly the same views.
Collision agreement is then not measured (no world decides a collision).
Variants: the model (``model``), the model without memory pool and global point cloud
(``window``), reprojection only (``reprojection``) and, on hand trajectories, the model with
its hand condition zeroed (``no_hands``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bridge.engines.mujoco_world import MujocoWorld
from bridge.types import Observation
from bridge.viz import colorize_depth, side_by_side, upscale, write_video
from sim_env.checkpoints import DEFAULT_CHECKPOINT
from sim_env.conditioning import hand_skeleton_map
from sim_env.evaluation.baselines import AGENT, ReprojectionWorld
from sim_env.evaluation.metrics import (
    collision_agreement,
    depth_absrel,
    dilate,
    memory_symmetry,
    psnr,
    ssim,
)
from sim_env.evaluation.trajectories import TRAJECTORY_NAMES, Trajectory, make_trajectory
from sim_env.memory_rules import memory_rule_options, memory_rules_of
from sim_env.reference_scan import render_scan

log = logging.getLogger(__name__)

VARIANTS = ("model", "window", "reprojection", "no_hands")
POSE_SOURCES = ("world", "engine")
HORIZONS = (1, 8, 32, 128)
FRAME_METRICS = ("psnr", "ssim", "depth_absrel")
HAND_MASK_RADIUS_PX = 1
VIDEO_SCALE = 4
# Episode e of a run with seed offset S resets the engine with seed S + e; trajectory k of that
# episode draws its actions from (S + e)·TRAJECTORY_SEED_STRIDE + k.
TRAJECTORY_SEED_STRIDE = 16


@dataclass
class EpisodeTrace:
    """Per-step results of one (variant, trajectory, episode)."""

    metrics: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in FRAME_METRICS})
    hand_psnr: list[float] = field(default_factory=list)
    collided: list[bool] = field(default_factory=list)
    engine_collided: list[bool] = field(default_factory=list)
    nav_step: list[bool] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    poses: list[np.ndarray] = field(default_factory=list)
    video: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


@dataclass(frozen=True)
class EvalSettings:
    """What `run_evaluation` measures.

    Attributes:
        checkpoint: model checkpoint (``default`` = the shipped one, None = random weights).
        episodes: held-out episodes per trajectory.
        horizon: steps per episode.
        seed_offset: first engine seed (keep it away from the training seeds).
        device: torch device of the world model.
        denoising_steps: sampler steps per frame.
        variants: which variants to run.
        trajectories: which trajectories to run.
        memory_capacity: voxels of the point-cloud memories (runtime default when None).
        video_dir: write side-by-side videos here (None: no videos).
        pose_source: ``world`` (each world moves itself; the engine shadows it) or ``engine``
            (the engine moves; each world is teleported to the engine's pose).
        reference_collisions: model worlds also read the pinned reference's depth in their
            collision rule (`GenerativeRuntime`); None = the runtime's default.
        pinned_margin: priority of the pinned reference in the model worlds' memory z-test
            (`GenerativeRuntime`); None = the runtime's default.
        footprint_occlusion: model worlds' memory voxels hide what lies behind their projected
            squares (`GenerativeRuntime`); None = the runtime's default.
        reference_passthrough: model worlds copy the pinned reference wherever it lands
            (`GenerativeRuntime`); None = the runtime's default.
        reference_surfels: model worlds' passthrough also copies the reference drawn as surfels
            (`GenerativeRuntime`); None = the runtime's default.
        carve_free_space: model worlds keep generated points in the reference's empty space
            out of their memory (`GenerativeRuntime`); None = the runtime's default.
        background_free: model worlds' reference pixels that saw the background make their whole
            rays free space (`GenerativeRuntime`); None = the runtime's default.
        sample_footprints: with footprint occlusion, model worlds' reference voxels also hide
            the pixels between their views' samples (`GenerativeRuntime`); None = the runtime's default.
        reference_views: every world under test (the baselines too) starts from the engine's
            reference and a sweep of this many views in all (`sim_env.reference_sweep`); 1, the
            default protocol, gives the reference frame only.
        reference_positions: the sweep is rendered at this many positions, the start and those
            `sim_env.reference_scan` chooses: reference_views · reference_positions views in all.
    """

    checkpoint: str | None
    episodes: int
    horizon: int
    seed_offset: int
    device: str = "cpu"
    denoising_steps: int = 4
    variants: tuple[str, ...] = VARIANTS
    trajectories: tuple[str, ...] = TRAJECTORY_NAMES
    memory_capacity: int | None = None
    video_dir: str | None = None
    pose_source: str = "world"
    reference_collisions: bool | None = None
    pinned_margin: float | None = None
    footprint_occlusion: bool | None = None
    reference_passthrough: bool | None = None
    reference_surfels: bool | None = None
    carve_free_space: bool | None = None
    background_free: bool | None = None
    sample_footprints: bool | None = None
    reference_views: int = 1
    reference_positions: int = 1

    def __post_init__(self) -> None:
        if self.reference_views < 1:
            raise ValueError(f"reference_views must be positive, got {self.reference_views}")
        if self.reference_positions < 1:
            raise ValueError(f"reference_positions must be positive, got {self.reference_positions}")
        if self.pose_source not in POSE_SOURCES:
            raise ValueError(f"pose_source must be one of {POSE_SOURCES}, got {self.pose_source!r}")
        if self.episodes < 1 or self.horizon < 1:
            raise ValueError(f"episodes and horizon must be positive, got {self.episodes}, {self.horizon}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise ValueError(f"variants: unknown {bad}; choose from {list(VARIANTS)}")
        bad = [t for t in self.trajectories if t not in TRAJECTORY_NAMES]
        if bad:
            raise ValueError(f"trajectories: unknown {bad}; choose from {list(TRAJECTORY_NAMES)}")


def resolve_checkpoint(checkpoint: str | None) -> str | None:
    """``default`` → the shipped tiny64 weights; anything else unchanged."""
    if checkpoint == "default":
        if not DEFAULT_CHECKPOINT.exists():
            raise FileNotFoundError(
                f"checkpoint: no shipped weights at {DEFAULT_CHECKPOINT} "
                "(scripts/gpu_train_default.sh trains them)"
            )
        return str(DEFAULT_CHECKPOINT)
    return checkpoint


def _open_world(variant: str, settings: EvalSettings) -> Any:
    """The world under test for ``variant`` (model variants share one checkpoint)."""
    from sim_env.generative_world import GenerativeWorld

    extra = {} if settings.memory_capacity is None else {"memory_capacity": settings.memory_capacity}
    checkpoint = resolve_checkpoint(settings.checkpoint)
    common = {
        "checkpoint": checkpoint,
        "device": settings.device,
        "denoising_steps": settings.denoising_steps,
    }
    common |= memory_rule_options(settings)
    views = {"reference_views": settings.reference_views * settings.reference_positions}
    if variant == "model":
        return GenerativeWorld(**common, **views, **extra)
    if variant == "window":
        return GenerativeWorld(**common, memory_mode="window", **views, **extra)
    if variant == "no_hands":
        return GenerativeWorld(**common, condition_hands=False, **views, **extra)
    # only for the frame size of the checkpoint's config
    probe = GenerativeWorld(checkpoint=checkpoint, device=settings.device, **extra)
    return ReprojectionWorld(probe.height, probe.width, **views, **extra)


def hand_region(obs: Observation) -> np.ndarray | None:
    """(H, W) bool mask around the ground-truth hand skeleton, or None without hands in view."""
    if obs.hand_keypoints is None:
        return None
    h, w = obs.rgb.shape[:2]
    skeleton = hand_skeleton_map(
        torch.as_tensor(obs.hand_keypoints)[None],
        torch.ones(1, dtype=torch.bool),
        torch.as_tensor(obs.K)[None],
        h,
        w,
    )[0].numpy()
    mask = dilate(skeleton > 0, HAND_MASK_RADIUS_PX)
    return mask if mask.any() else None


def _video_frame(gen: Observation, gt: Observation) -> np.ndarray:
    panels = [gen.rgb, gt.rgb, colorize_depth(gen.depth), colorize_depth(gt.depth)]
    return upscale(side_by_side(panels, gap=1), VIDEO_SCALE)


def run_episode(
    world: Any,
    engine: MujocoWorld,
    trajectory: Trajectory,
    seed: int,
    horizon: int,
    keep_video: bool,
    follow_engine: bool = False,
    reference_views: int = 1,
    reference_positions: int = 1,
) -> EpisodeTrace:
    """Roll ``world`` and the engine shadow for ``horizon`` steps from the engine's frame at ``seed``.

    ``follow_engine``: navigation steps teleport the world to the engine's pose instead of
    letting it move itself (the ``engine`` pose source). ``reference_views``: the world also
    gets the engine's sweep around its first frame, at ``reference_positions`` positions
    (`sim_env.reference_scan`; the engine is put back where it was).
    """
    trace = EpisodeTrace()
    gt = engine.reset(seed=seed, options={"scene": trajectory.scene})[AGENT]
    views = [gt, *render_scan(engine, AGENT, gt, reference_views, reference_positions)]
    gen = world.reset(seed=seed, options={"reference": {AGENT: views}})[AGENT]
    trace.frames.append(gen.rgb)
    trace.poses.append(gen.pose)
    for _ in range(horizon):
        action = trajectory.act(gt)
        engine_obs = engine.step({AGENT: action})[AGENT]
        nav = action.kind != "hand"
        follow = follow_engine and nav
        start = time.perf_counter()
        gen = world.set_pose(AGENT, engine_obs.pose) if follow else world.step({AGENT: action})[AGENT]
        trace.seconds += time.perf_counter() - start
        trace.steps += 1
        gt = engine.set_pose(AGENT, gen.pose) if nav and not follow else engine_obs
        trace.metrics["psnr"].append(psnr(gen.rgb, gt.rgb))
        trace.metrics["ssim"].append(ssim(gen.rgb, gt.rgb))
        trace.metrics["depth_absrel"].append(depth_absrel(gen.depth, gt.depth))
        region = hand_region(gt)
        trace.hand_psnr.append(psnr(gen.rgb, gt.rgb, region) if region is not None else float("nan"))
        if not follow:  # a teleported world decides no collision
            trace.collided.append(bool(gen.collided))
            trace.engine_collided.append(bool(engine_obs.collided))
            trace.nav_step.append(nav)
        trace.frames.append(gen.rgb)
        trace.poses.append(gen.pose)
        if keep_video:
            trace.video.append(_video_frame(gen, gt))
    return trace


def _displacement(trace: EpisodeTrace, step: int) -> float:
    """Metres between the camera centre at ``step`` and at the start of the episode."""
    return float(np.linalg.norm(trace.poses[step][:3, 3] - trace.poses[0][:3, 3]))


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _nanmedian(values: Sequence[float]) -> float:
    finite = _finite(values)
    return float(np.median(finite)) if finite else float("nan")


def _nanmean(values: Sequence[float]) -> float:
    finite = _finite(values)
    return float(np.mean(finite)) if finite else float("nan")


def _nanstderr(values: Sequence[float]) -> float:
    """Standard error of the mean over episodes (sample deviation / √n); NaN under two values."""
    finite = _finite(values)
    return float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else float("nan")


def summarize(
    traces: dict[str, list[EpisodeTrace]],
    references: dict[str, list[np.ndarray]],
    trajectories: dict[str, list[Trajectory]],
    horizon: int,
) -> dict[str, Any]:
    """Metrics of one variant from its traces per trajectory (see docs/model.md for definitions)."""
    horizons = [h for h in HORIZONS if h <= horizon]
    out: dict[str, Any] = {
        "by_horizon": {},
        "mean_up_to": {},
        "median_by_horizon": {},
        "stderr_by_horizon": {},
        "by_trajectory": {},
        "curves": {},
        "curves_stderr": {},
    }
    frame_trajs = [t for t in traces if t != "hand_motion"] or list(traces)
    for metric in FRAME_METRICS:
        rows = [tr.metrics[metric] for t in frame_trajs for tr in traces[t]]
        out["curves"][metric] = [_nanmean([r[s] for r in rows]) for s in range(horizon)]
        out["by_horizon"][metric] = {str(h): out["curves"][metric][h - 1] for h in horizons}
        out["mean_up_to"][metric] = {str(h): _nanmean([v for r in rows for v in r[:h]]) for h in horizons}
        # The median over episodes: one frame a baseline copies exactly scores the PSNR cap
        # (100 dB) and can carry a mean on its own; the median shows whether it does.
        out["median_by_horizon"][metric] = {str(h): _nanmedian([r[h - 1] for r in rows]) for h in horizons}
        # Episodes differ far more than runs do: the standard error says which gaps are real.
        out["curves_stderr"][metric] = [_nanstderr([r[s] for r in rows]) for s in range(horizon)]
        out["stderr_by_horizon"][metric] = {str(h): out["curves_stderr"][metric][h - 1] for h in horizons}
    for name, runs in traces.items():
        out["by_trajectory"][name] = {
            metric: {str(h): _nanmean([tr.metrics[metric][h - 1] for tr in runs]) for h in horizons}
            for metric in FRAME_METRICS
        }
        # How far the world's camera is from its start: in the default pose source each world
        # moves itself, so a world its own collision rule holds back is scored on other views.
        out["by_trajectory"][name]["displacement_m"] = {
            str(h): _nanmean([_displacement(tr, h) for tr in runs]) for h in horizons
        }
        out["by_trajectory"][name]["episodes"] = {
            metric: {str(h): [tr.metrics[metric][h - 1] for tr in runs] for h in horizons}
            for metric in ("psnr", "ssim")
        }
    if "loop" in traces:
        closure_psnr, closure_ssim, pose_err, symmetry = [], [], [], []
        for trace, reference, traj in zip(
            traces["loop"], references["loop"], trajectories["loop"], strict=True
        ):
            back = traj.return_step or horizon
            closure_psnr.append(psnr(trace.frames[back], reference))
            closure_ssim.append(ssim(trace.frames[back], reference))
            pose_err.append(_displacement(trace, back))
            symmetry.append(memory_symmetry(trace.frames[: back + 1]))
        out["loop_closure"] = {
            "psnr": _nanmean(closure_psnr),
            "ssim": _nanmean(closure_ssim),
            "pose_error_m": _nanmean(pose_err),
            # Per episode, in seed order: paired comparisons between runs need them.
            "episodes": {"psnr": closure_psnr, "ssim": closure_ssim},
        }
        out["memory_symmetry"] = _nanmean(symmetry)
    flags = [
        (c, e)
        for runs in traces.values()
        for tr in runs
        for c, e, nav in zip(tr.collided, tr.engine_collided, tr.nav_step, strict=True)
        if nav
    ]
    if flags:
        out["collision_agreement"] = collision_agreement([c for c, _ in flags], [e for _, e in flags])
        out["engine_collisions"] = int(sum(e for _, e in flags))
        out["world_collisions"] = int(sum(c for c, _ in flags))  # with the above: misses or false stops
    if "hand_motion" in traces:
        hand_rows = [tr.hand_psnr for tr in traces["hand_motion"]]
        out["hand_region_psnr"] = _nanmean([v for r in hand_rows for v in r])
        out["curves"]["hand_region_psnr"] = [_nanmean([r[s] for r in hand_rows]) for s in range(horizon)]
    out["curves_cover"] = sorted(frame_trajs)
    steps = sum(tr.steps for runs in traces.values() for tr in runs)
    seconds = sum(tr.seconds for runs in traces.values() for tr in runs)
    out["steps_per_s"] = steps / max(seconds, 1e-9)
    return out


def run_evaluation(settings: EvalSettings) -> dict[str, Any]:
    """Run every variant along every trajectory for every episode; returns the report dict."""
    report: dict[str, Any] = {
        "checkpoint": settings.checkpoint,
        "episodes": settings.episodes,
        "horizon": settings.horizon,
        "seed_offset": settings.seed_offset,
        "denoising_steps": settings.denoising_steps,
        "device": settings.device,
        "pose_source": settings.pose_source,
        "reference_views": settings.reference_views,
        "reference_positions": settings.reference_positions,
        "horizons": [h for h in HORIZONS if h <= settings.horizon],
        "variants": {},
    }
    video_dir = Path(settings.video_dir) if settings.video_dir else None
    if video_dir is not None:
        video_dir.mkdir(parents=True, exist_ok=True)
    engine: MujocoWorld | None = None
    gt_symmetry: list[float] = []
    jobs = [
        (v, t)
        for v in settings.variants
        for t in settings.trajectories
        if v != "no_hands" or t == "hand_motion"
    ]
    total = len(jobs) * settings.episodes
    bar = tqdm(total=total, desc="eval", unit="episode", dynamic_ncols=True)
    try:
        for variant in settings.variants:
            world = _open_world(variant, settings)
            if engine is None:
                engine = MujocoWorld("rooms", world.height, world.width)
                report["resolution"] = [world.height, world.width]
            if hasattr(world, "pinned_margin") and "pinned_margin" not in report:  # a model world
                report |= memory_rules_of(world)
            traces: dict[str, list[EpisodeTrace]] = {}
            refs: dict[str, list[np.ndarray]] = {}
            trajs: dict[str, list[Trajectory]] = {}
            for k, name in enumerate(settings.trajectories):
                if variant == "no_hands" and name != "hand_motion":
                    continue
                for e in range(settings.episodes):
                    seed = settings.seed_offset + e
                    traj = make_trajectory(name, settings.horizon, seed * TRAJECTORY_SEED_STRIDE + k)
                    trace = run_episode(
                        world,
                        engine,
                        traj,
                        seed,
                        settings.horizon,
                        video_dir is not None,
                        follow_engine=settings.pose_source == "engine",
                        reference_views=settings.reference_views,
                        reference_positions=settings.reference_positions,
                    )
                    traces.setdefault(name, []).append(trace)
                    refs.setdefault(name, []).append(trace.frames[0])
                    trajs.setdefault(name, []).append(traj)
                    if video_dir is not None:
                        write_video(video_dir / f"{variant}_{name}_ep{e:03d}.mp4", trace.video)
                    if name == "loop" and variant == settings.variants[0]:
                        gt_symmetry.append(_ground_truth_symmetry(engine, trace, traj))
                    bar.update(1)
            report["variants"][variant] = summarize(traces, refs, trajs, settings.horizon)
            log.info("%s: %s", variant, _headline(report["variants"][variant]))
    finally:
        bar.close()
        if engine is not None:
            engine.close()
    if gt_symmetry:
        report["ground_truth"] = {"memory_symmetry": _nanmean(gt_symmetry)}
    return report


def _ground_truth_symmetry(engine: MujocoWorld, trace: EpisodeTrace, traj: Trajectory) -> float:
    """Memory Symmetry of the engine's own frames along the evaluated poses (the ceiling)."""
    back = traj.return_step or (len(trace.poses) - 1)
    frames = [engine.set_pose(AGENT, pose).rgb for pose in trace.poses[: back + 1]]
    return memory_symmetry(frames)


def _headline(summary: dict[str, Any]) -> str:
    parts = [f"{m}@{h}={v:.3f}" for m in ("psnr", "ssim") for h, v in summary["by_horizon"][m].items()]
    if "loop_closure" in summary:
        parts.append(f"loop_psnr={summary['loop_closure']['psnr']:.2f}")
    parts.append(f"steps/s={summary['steps_per_s']:.1f}")
    return " ".join(parts)
