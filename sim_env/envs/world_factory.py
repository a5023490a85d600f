"""World spec → backend: `world="generative" | "mujoco" | "grpc://HOST:PORT"`, and checkpoints.

`checkpoint="default"` means the shipped `tiny64` weights in `sim_env/weights/`; until they
ship (issue 6) the generative world runs with seeded random weights and says so loudly.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from bridge.types import InvalidArgumentError
from bridge.worlds import make_world
from sim_env.checkpoints import DEFAULT_CHECKPOINT
from sim_env.envs.backends import GenerativeBackend, HostWorldBackend
from sim_env.envs.config import EnvConfig

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "tiny64"


def resolve_checkpoint(checkpoint: str | None) -> str | None:
    """The checkpoint path to load, or None for random weights (with a warning for "default")."""
    if checkpoint is None:
        return None
    if checkpoint == "default":
        if DEFAULT_CHECKPOINT.exists():
            return str(DEFAULT_CHECKPOINT)
        warnings.warn(
            f"GenWorld: no shipped model at {DEFAULT_CHECKPOINT} yet - the generative world runs with "
            "RANDOM weights (frames are noise-like; geometry, rewards and APIs are real)",
            UserWarning,
            stacklevel=3,
        )
        return None
    if not Path(checkpoint).exists():
        raise InvalidArgumentError(f"checkpoint {checkpoint!r} does not exist")
    return str(checkpoint)


def uses_random_weights(checkpoint: str | None) -> bool:
    """True when ``checkpoint`` resolves to random weights."""
    return checkpoint is None or (checkpoint == "default" and not DEFAULT_CHECKPOINT.exists())


def build_backend(
    cfg: EnvConfig, num_worlds: int, agents_per_world: int, seed: int = 0
) -> GenerativeBackend | HostWorldBackend:
    """The backend for ``cfg.world`` with B = ``num_worlds`` worlds of A = ``agents_per_world`` agents."""
    device = torch.device(cfg.device)
    if cfg.is_generative:
        from sim_env.runtime import GenerativeRuntime

        runtime = GenerativeRuntime(
            checkpoint=resolve_checkpoint(cfg.checkpoint),
            config=DEFAULT_CONFIG,
            device=cfg.device,
            num_worlds=num_worlds,
            agents_per_world=agents_per_world,
            denoising_steps=cfg.denoising_steps,
            seed=seed,
            reference_views=int(cfg.reference_views) * int(cfg.reference_positions),
            footprint_occlusion=cfg.footprint_occlusion,
            sample_footprints=cfg.sample_footprints,
        )
        if (runtime.height, runtime.width) != cfg.resolution:
            raise InvalidArgumentError(
                f"resolution {cfg.resolution} does not match the generative model's "
                f"{(runtime.height, runtime.width)}; pass resolution={(runtime.height, runtime.width)}"
            )
        return GenerativeBackend(runtime, cfg.scene, int(cfg.reference_positions))
    height, width = cfg.resolution
    if cfg.world == "mujoco":
        worlds = [
            make_world("mujoco", scene=cfg.scene, height=height, width=width, num_agents=agents_per_world)
            for _ in range(num_worlds)
        ]
    else:
        worlds = [make_world(cfg.world) for _ in range(num_worlds)]
    backend = HostWorldBackend(worlds, device)
    if backend.agents_per_world != agents_per_world:
        backend.close()
        raise InvalidArgumentError(
            f"world {cfg.world!r} serves {backend.agents_per_world} agents, the env needs {agents_per_world}"
        )
    return backend
