"""Records trajectories from any World into a crash-safe, resumable dataset directory.

Layout (format `genworld-trajectories`, version 1; docs/dataset.md has the full table)::

    OUT/manifest.json                 format + version, creation args, world handshake,
                                      resolution, agent ids, finished episodes
    OUT/episodes/ep_000000/           one finished episode (T = steps, A = agents)
        rgb.npy          uint8   (T+1, A, H, W, 3)   raw; rgb.npy.zst when rgb_codec="zstd"
        depth.npy        float32 (T+1, A, H, W)      planar metres, +inf = no hit
        pose.npy         float64 (T+1, A, 4, 4)      camera-to-world, OpenCV camera axes
        K.npy            float64 (T+1, A, 3, 3)      intrinsics in pixels
        frame_id.npy     int64   (T+1, A)
        sim_time.npy     float64 (T+1, A)            seconds since reset
        collided.npy     bool    (T+1, A)            the motion into frame t was blocked
        actions.npy      float32 (T+1, A, 22)        the action that led INTO frame t
        hand_keypoints.npy float32 (T+1, A, 2, 21, 3)  only when the world reports hands
        meta.json        seed, scene, policy, world spec + handshake, resolution, agents,
                         steps, fields, timing

Action rows (`encode_action`): [kind, key, nav x6, hand x14] with kind 0 = none (row 0,
nothing led into the reset frame), 1 = key, 2 = continuous nav, 3 = hand; key is -1 unless
kind is 1; for keys the nav columns hold the key's equivalent continuous nav vector.

Crash safety: an episode is written into `episodes/.tmp-ep_XXXXXX-<pid>/`, fsynced and
renamed to its final name in one `os.rename`; the manifest is rewritten through a temp
file + `os.replace` after every finished episode. Readers trust only the manifest, so a
SIGKILL loses at most the episodes in flight. Re-running with the same OUT verifies that
the arguments match, deletes whatever the manifest does not list (temp dirs, an episode
renamed just before the kill) and records the missing episodes. Episode i always uses
seed `seed + i`, so any number of workers produces identical arrays.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bridge.episode_writer import TMP_PREFIX, EpisodeWriter, atomic_write_json, field_specs, fsync_path
from bridge.policies import POLICY_NAMES, make_policy
from bridge.trajectory_format import (
    EPISODES_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    META_NAME,
    episode_name,
    read_manifest,
)
from bridge.types import World, WorldInfo
from bridge.worlds import make_world

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
RGB_CODECS = ("raw", "zstd")
PR_SET_PDEATHSIG = 1  # linux/prctl.h

# Arguments that define what a dataset contains; a resume must repeat them exactly.
# `episodes` and `workers` may change between runs (extend a dataset, use more cores).
IDENTITY_ARGS = ("world", "scene", "steps", "policy", "resolution", "seed", "num_agents", "rgb_codec")

WorldSpec = str | Callable[..., World]
# A finished episode as the parent sees it: its manifest entry and the world's handshake.
_EpisodeOutcome = tuple[dict[str, Any], dict[str, Any]]
# What the manifest lists per finished episode.
ENTRY_KEYS = ("name", "index", "seed", "frames", "fields")


class DatasetMismatchError(ValueError):
    """OUT already holds a dataset recorded with different arguments."""


@dataclass(frozen=True)
class RecordSummary:
    """What one `record` call did."""

    out: str
    episodes_recorded: int
    episodes_skipped: int
    frames: int
    seconds: float
    frames_per_second: float
    bytes_on_disk: int
    resolution: tuple[int, int]
    agent_ids: tuple[str, ...]


@dataclass(frozen=True)
class _EpisodeJob:
    index: int
    seed: int
    scene: str
    steps: int
    policy: str
    world_spec: str
    rgb_codec: str
    episodes_dir: str


def _info_dict(info: WorldInfo) -> dict[str, Any]:
    """The handshake as JSON, for the manifest and meta.json."""
    d = asdict(info)
    d["capabilities"] = list(info.capabilities)
    d["agent_ids"] = list(info.agent_ids)
    d["extra"] = {k: v for k, v in dict(info.extra).items() if isinstance(v, (str, int, float, bool))}
    return d


def _record_episode(world: World, info: WorldInfo, job: _EpisodeJob) -> _EpisodeOutcome:
    """Runs one episode and atomically publishes it as episodes/ep_XXXXXX."""
    start = time.perf_counter()
    name = episode_name(job.index)
    episodes_dir = Path(job.episodes_dir)
    tmp = episodes_dir / f"{TMP_PREFIX}{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    obs = world.reset(seed=job.seed, options={"scene": job.scene})
    agent_ids = tuple(info.agent_ids)
    first = obs[agent_ids[0]] if agent_ids and agent_ids[0] in obs else None
    if set(obs) != set(agent_ids) or first is None or first.rgb.shape[:2] != (info.height, info.width):
        raise RuntimeError(
            f"world {job.world_spec!r} handshake says agents {list(agent_ids)} at {info.height}x{info.width} "
            f"but reset returned agents {list(obs)}" + (f" at {first.height}x{first.width}" if first else "")
        )
    policy = make_policy(job.policy, job.scene, agent_ids, np.random.default_rng(job.seed))
    frames = job.steps + 1
    writer = EpisodeWriter(tmp, field_specs(first, len(agent_ids), frames))
    writer.write(0, agent_ids, obs, None)
    reset_s = time.perf_counter() - start
    for t in range(1, frames):
        actions = policy.act(obs)
        obs = world.step(actions)
        writer.write(t, agent_ids, obs, actions)
    steps_s = time.perf_counter() - start - reset_s
    fields = tuple(writer.arrays)
    writer.finish(job.rgb_codec)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "index": job.index,
        "name": name,
        "seed": job.seed,
        "scene": job.scene,
        "policy": job.policy,
        "world": job.world_spec,
        "world_info": _info_dict(info),
        "resolution": [info.height, info.width],
        "agent_ids": list(agent_ids),
        "steps": job.steps,
        "frames": frames,
        "fields": list(fields),
        "rgb_codec": job.rgb_codec,
        "timing": {"reset_s": reset_s, "steps_s": steps_s, "frames_per_s": frames / max(steps_s, 1e-9)},
    }
    atomic_write_json(tmp / META_NAME, meta)  # written last: its presence marks a complete episode
    final = episodes_dir / name
    os.rename(tmp, final)
    fsync_path(episodes_dir)
    return {k: meta[k] for k in ENTRY_KEYS}, meta["world_info"]


# --------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _open_world(world: WorldSpec, engine_kwargs: Mapping[str, Any]) -> tuple[World, WorldInfo]:
    instance = world(**engine_kwargs) if callable(world) else make_world(world, **engine_kwargs)
    return instance, instance.handshake()


def _die_with_parent(parent_pid: int) -> None:
    """Makes the kernel SIGKILL this worker when the recorder dies (Linux).

    Otherwise a `kill -9`'d recorder leaves workers that finish their episode and rename
    it into OUT while a resumed run may be writing there.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans finish one episode, resume drops it
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker_init(world: WorldSpec, engine_kwargs: dict[str, Any], parent_pid: int) -> None:
    """Process initializer: each spawned worker owns one world for all its episodes.

    A failure is kept and re-raised by the worker's first job, so the parent gets the
    world's own error message instead of a bare "process pool is broken".
    """
    _die_with_parent(parent_pid)
    try:
        instance, info = _open_world(world, engine_kwargs)
    except Exception as exc:
        _WORKER["error"] = exc
        return
    _WORKER.update(world=instance, info=info)
    multiprocessing.util.Finalize(instance, instance.close, exitpriority=10)


def _worker_run(job: _EpisodeJob) -> _EpisodeOutcome:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _record_episode(_WORKER["world"], _WORKER["info"], job)


def _run_jobs(
    world: WorldSpec, engine_kwargs: dict[str, Any], jobs: list[_EpisodeJob], workers: int
) -> Iterator[_EpisodeOutcome]:
    """Yields results as episodes finish, in-process for one worker, else in spawned processes."""
    if not jobs:
        return
    if workers == 1:
        instance, info = _open_world(world, engine_kwargs)
        try:
            for job in jobs:
                yield _record_episode(instance, info, job)
        finally:
            instance.close()
        return
    # spawn, not fork: renderers (EGL/OSMesa contexts) and gRPC channels do not survive fork.
    # An executor rather than multiprocessing.Pool: a worker that dies (a renderer segfault)
    # fails the run with BrokenProcessPool instead of hanging it.
    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(world, engine_kwargs, os.getpid()),
    )
    try:
        for future in as_completed([executor.submit(_worker_run, job) for job in jobs]):
            yield future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- dataset dir
class _Manifest:
    """OUT/manifest.json: the single source of truth for which episodes exist.

    Only the parent process writes it, always whole, through a temp file + os.replace,
    so a reader sees either the old or the new list, never a torn one.
    """

    def __init__(self, out: Path, args: dict[str, Any]) -> None:
        self.path = out / MANIFEST_NAME
        # A manifest without finished episodes protects nothing (say, a run that failed to
        # reach its world); new arguments simply start over.
        existing = read_manifest(out) if self.path.exists() else None
        if existing and existing["episodes"]:
            self.data = existing
            old = self.data.get("args", {})
            diffs = [
                f"{k}: dataset has {old.get(k)!r}, this run asks for {args[k]!r}"
                for k in IDENTITY_ARGS
                if old.get(k) != args[k]
            ]
            if diffs:
                raise DatasetMismatchError(
                    f"{out} was recorded with different arguments; resume needs the same ones "
                    "(or pick a new --out):\n  " + "\n  ".join(diffs)
                )
            old["episodes"] = max(args["episodes"], old.get("episodes", 0))
        else:
            self.data = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "created": time.time(),
                "args": args,
                "world_info": None,
                "resolution": None,
                "agent_ids": None,
                "episodes": [],
            }

    @property
    def done(self) -> set[int]:
        return {e["index"] for e in self.data["episodes"]}

    def commit(
        self, entry: dict[str, Any] | None = None, world_info: Mapping[str, Any] | None = None
    ) -> None:
        """Adds a finished episode (if given) and rewrites the manifest atomically."""
        if entry is not None and world_info is not None:
            self._pin_world(world_info)
            self.data["episodes"].append(entry)
            self.data["episodes"].sort(key=lambda e: e["index"])
        self.data["updated"] = time.time()
        atomic_write_json(self.path, self.data)

    def _pin_world(self, info: Mapping[str, Any]) -> None:
        """The first episode fixes resolution and agents; later ones must agree."""
        resolution, agents = [info["height"], info["width"]], list(info["agent_ids"])
        if self.data["resolution"] is None:
            requested = self.data["args"]["resolution"]
            if resolution != requested:
                log.warning(
                    "the world renders %dx%d, not the requested %dx%d (a server fixes its own "
                    "resolution); recording what it says",
                    *resolution,
                    *requested,
                )
            self.data.update(world_info=dict(info), resolution=resolution, agent_ids=agents)
        elif self.data["resolution"] != resolution or self.data["agent_ids"] != agents:
            raise DatasetMismatchError(
                f"{self.path.parent} holds {self.data['resolution']} frames of agents "
                f"{self.data['agent_ids']}, but the world now reports {resolution} and {agents}"
            )


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Holds OUT/.lock so two recorders never write one dataset; the kernel frees it on SIGKILL."""
    with open(out / LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(f"another recorder is writing {out}") from exc
        yield


def _remove_debris(out: Path, listed: set[str]) -> None:
    """Deletes temp files and unlisted episode dirs that a killed run left behind.

    An episode exists only once the manifest lists it; a directory renamed just before a
    SIGKILL, without its manifest entry, was still in flight and is recorded again.
    """
    for path in sorted(out.glob(f"{TMP_PREFIX}*")):
        path.unlink()
    for path in sorted((out / EPISODES_DIR).iterdir()):
        if path.name not in listed:
            log.info("removing %s, left unfinished by an interrupted run", path.name)
            shutil.rmtree(path, ignore_errors=True)


def _spec_name(world: WorldSpec) -> str:
    return world if isinstance(world, str) else f"{world.__module__}:{world.__qualname__}"


def record(
    world: WorldSpec,
    scene: str,
    episodes: int,
    steps: int,
    policy: str,
    out: str | os.PathLike[str],
    resolution: tuple[int, int] = (64, 64),
    workers: int = 1,
    seed: int = 0,
    num_agents: int = 1,
    rgb_codec: str = "raw",
) -> RecordSummary:
    """Records `episodes` episodes of `steps` steps into `out`, resuming what is there.

    Args:
        world: `mujoco`, `grpc://HOST:PORT`, or a picklable callable taking the engine
            kwargs (scene, height, width, num_agents) and returning a World.
        scene: scene name, passed to the engine and to every `reset`.
        episodes: total episodes the dataset should hold (episode i uses seed `seed + i`).
        steps: steps per episode; each episode stores steps + 1 frames.
        policy: `random`, `spiral`, `loop` or `keys` (see `bridge.policies`).
        out: dataset directory; created if needed, resumed if it holds this dataset.
        resolution: (height, width) asked of the engine; remote servers fix their own and
            the manifest records what the handshake reports.
        workers: processes recording in parallel, each with its own world.
        seed: base seed.
        num_agents: cameras per world.
        rgb_codec: `raw` (memory-mappable) or `zstd` (smaller, decoded per episode).

    Returns:
        Counts, throughput and size of this run.

    Raises:
        DatasetMismatchError: `out` holds a dataset recorded with other arguments.
    """
    if policy not in POLICY_NAMES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICY_NAMES)}")
    if rgb_codec not in RGB_CODECS:
        raise ValueError(f"rgb_codec must be one of {RGB_CODECS}, got {rgb_codec!r}")
    if episodes < 0 or steps < 1 or workers < 1 or num_agents < 1:
        raise ValueError("need episodes >= 0, steps >= 1, workers >= 1 and num_agents >= 1")
    height, width = (int(v) for v in resolution)
    out = Path(out)
    episodes_dir = out / EPISODES_DIR
    episodes_dir.mkdir(parents=True, exist_ok=True)
    spec = _spec_name(world)
    args = {
        "world": spec,
        "scene": scene,
        "episodes": episodes,
        "steps": steps,
        "policy": policy,
        "resolution": [height, width],
        "seed": seed,
        "num_agents": num_agents,
        "rgb_codec": rgb_codec,
    }
    start = time.perf_counter()
    frames = 0
    with _exclusive(out):
        manifest = _Manifest(out, args)
        _remove_debris(out, {e["name"] for e in manifest.data["episodes"]})
        manifest.commit()
        jobs = [
            _EpisodeJob(i, seed + i, scene, steps, policy, spec, rgb_codec, str(episodes_dir))
            for i in range(episodes)
            if i not in manifest.done
        ]
        engine_kwargs = {"scene": scene, "height": height, "width": width, "num_agents": num_agents}
        with tqdm(total=episodes, initial=episodes - len(jobs), desc="record", unit="ep") as bar:
            for entry, world_info in _run_jobs(world, engine_kwargs, jobs, workers):
                manifest.commit(entry, world_info)
                frames += entry["frames"] * len(world_info["agent_ids"])
                bar.update(1)
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    summary = RecordSummary(
        out=str(out),
        episodes_recorded=len(jobs),
        episodes_skipped=episodes - len(jobs),
        frames=frames,
        seconds=seconds,
        frames_per_second=frames / max(seconds, 1e-9),
        bytes_on_disk=size,
        resolution=tuple(manifest.data["resolution"] or (height, width)),
        agent_ids=tuple(manifest.data["agent_ids"] or ()),
    )
    log.info(
        "recorded %d episodes (%d already done) to %s: %d frames in %.1f s (%.1f frames/s), %.1f MiB on disk",
        *(summary.episodes_recorded, summary.episodes_skipped, out, frames, seconds),
        *(summary.frames_per_second, size / 2**20),
    )
    return summary
