"""What one ST-cache roll costs (`STCache.advance`): with pool admission eager or compiled, and without.

The roll moves the chunk into the window and offers the frames leaving it to the memory pool.
The runtime runs it beside the next step's conditioning (`sim_env.cache_roll`), so it costs the
step only what it takes from the GPU there; this times it alone on a full cache:

    python -m sim_env.perf.roll_cost --config wan2.1-1.3b

Median ms over ``--repeats`` rolls after warm-up, each fed fresh random camera poses so the
admission sees new views (admits, prunes and drops as in a rollout).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from sim_env.conditioning import PoolAdmission
from sim_env.memory.pool_policy import MemoryPoolPolicy
from sim_env.model.config import get_config
from sim_env.model.st_cache import AdmitPolicy, STCache, attention_mirror, drop_policy


def random_chunk_poses(batch: int, frames: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, frames, 4, 4) camera-to-world poses: random rotations, centres in a 3 m cube."""
    pose = torch.eye(4).repeat(batch, frames, 1, 1)
    pose[..., :3, :3] = torch.linalg.qr(torch.randn(batch, frames, 3, 3, generator=generator)).Q
    pose[..., :3, 3] = 3 * torch.rand(batch, frames, 3, generator=generator)
    return pose


def time_rolls(cache: STCache, admit: AdmitPolicy, warmup: int, repeats: int) -> float:
    """Median ms of ``cache.advance`` with ``admit``."""
    gen = torch.Generator().manual_seed(0)
    device = cache.keys.device
    poses = [
        random_chunk_poses(cache.batch_size, cache.chunk.frames, gen).to(device)
        for _ in range(warmup + repeats)
    ]
    cuda = device.type == "cuda"
    times = []
    for i, pose in enumerate(poses):
        if cuda:
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        cache.advance(pose, admit)
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(1e3 * (time.perf_counter() - began))
    return statistics.median(times)


def roll_costs(
    config: str, device: torch.device, worlds: int = 1, warmup: int = 5, repeats: int = 30
) -> dict[str, float]:
    """{variant: median ms} for the roll without admission, with eager and with compiled admission."""
    cfg = get_config(config)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    padded, zero_key = attention_mirror(cfg, device, dtype)
    compiled_mirror = device.type == "cuda"

    def full_cache() -> STCache:
        cache = STCache(cfg, worlds, device, dtype, padded, zero_key, compile_mirror=compiled_mirror)
        gen = torch.Generator(device=device).manual_seed(1)
        cache.keys.normal_(generator=gen)
        cache.values.normal_(generator=gen)
        cache.valid[:] = True
        cache.refresh_attention()
        return cache

    policy = MemoryPoolPolicy(max(cfg.memory_frames, 1))
    variants: dict[str, AdmitPolicy] = {"no admission": drop_policy}
    if cfg.memory_frames:
        variants["admission, eager"] = PoolAdmission(policy)
        variants["admission, compiled"] = PoolAdmission(policy, compile_policy=True)
    return {name: time_rolls(full_cache(), admit, warmup, repeats) for name, admit in variants.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m sim_env.perf.roll_cost", description=__doc__)
    parser.add_argument("--config", default="wan2.1-1.3b")
    parser.add_argument("--worlds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    costs = roll_costs(args.config, torch.device(args.device), args.worlds, repeats=args.repeats)
    print(f"| {args.config} cache roll, {args.worlds} world(s) | ms |")
    print("|---|---:|")
    for name, ms in costs.items():
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
