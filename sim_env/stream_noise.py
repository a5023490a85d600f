"""Counter-based Gaussian noise per stream: batch-invariant and free of generator objects.

Every stream's noise is a pure function of (stream seed, draw counter, element index), computed
by batched integer ops on the device (lowbias32 integer hash, C. Wellons, then Box-Muller). So a
stream draws the same noise alone or inside any batch, without a Python loop over per-stream
``torch.Generator`` objects (N kernel launches per step, and generators a CUDA graph cannot own).
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF
_HASH_MUL_1 = 0x7FEB352D
_HASH_MUL_2 = 0x846CA68B
_UNIFORM_BITS = 24  # mantissa bits of float32 uniforms drawn from one 32-bit hash
_TWO_PI = 6.283185307179586
# Stream i of an episode seeded s draws its noise from s·STREAM_SEED_STRIDE + i.
STREAM_SEED_STRIDE = 1 << 16


def episode_stream_seeds(seed: int, count: int) -> list[int]:
    """Noise seeds of ``count`` streams of one episode: distinct per stream, disjoint across episodes."""
    return [int(seed) * STREAM_SEED_STRIDE + i for i in range(count)]


def hash32(x: torch.Tensor) -> torch.Tensor:
    """Bijective 32-bit integer hash of the low 32 bits of int64 ``x`` (result in [0, 2^32))."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * _HASH_MUL_1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _HASH_MUL_2) & _MASK32
    return x ^ (x >> 16)


def stream_keys(seeds: torch.Tensor) -> torch.Tensor:
    """(N,) int64 noise keys of (N,) int64 seeds, mixing in the seed's high 32 bits."""
    return hash32(hash32(seeds) ^ ((seeds >> 32) & _MASK32))


def _unit_uniform(bits: torch.Tensor) -> torch.Tensor:
    """Uniform float32 in (0, 1) from 32-bit hashes (open interval: safe for log)."""
    return ((bits >> (32 - _UNIFORM_BITS)).to(torch.float32) + 0.5) * (2.0**-_UNIFORM_BITS)


class StreamNoise:
    """Per-stream keys and draw counters, and the element hashes of one draw's shape.

    Args:
        num_streams: N.
        shape: shape of one stream's draw (e.g. (F, C, H, W)).
        device: where the state lives.
    """

    def __init__(self, num_streams: int, shape: tuple[int, ...], device: torch.device) -> None:
        self.shape = shape
        self.key = torch.zeros(num_streams, dtype=torch.int64, device=device)
        self.counter = torch.zeros(num_streams, dtype=torch.int64, device=device)
        elements = torch.arange(math.prod(shape), dtype=torch.int64, device=device)
        self._element_hash = (hash32(2 * elements + 1), hash32(2 * elements + 2))

    def draw(self) -> torch.Tensor:
        """(N, *shape) standard normal noise; advances every stream's counter (no host sync)."""
        step_key = hash32(self.key ^ hash32(self.counter))[:, None]  # (N, 1)
        even, odd = self._element_hash
        u1 = _unit_uniform(hash32(hash32(step_key ^ even) + step_key))
        u2 = _unit_uniform(hash32(hash32(step_key ^ odd) + step_key))
        noise = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(_TWO_PI * u2)
        self.counter += 1
        return noise.reshape(self.key.shape[0], *self.shape)
