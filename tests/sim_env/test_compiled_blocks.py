"""`torch.compile` of the DiT blocks: one graph for every block, same outputs as eager (CPU).

Each block gets its own layer views of the ST-cache (`STCache.layer`), so nothing per-layer is
a Python constant in the block's code; a regression here (say, an integer layer index again)
recompiles once per block and torch gives up after 8.
"""

from __future__ import annotations

import dataclasses

import torch
import torch._dynamo
from torch._dynamo.utils import counters

from sim_env.model.config import CONFIGS
from sim_env.model.dit import CausalDiT
from sim_env.model.st_cache import STCache

CONFIG = dataclasses.replace(CONFIGS["tiny16-test"], num_layers=3, memory_frames=1, window_frames=1)


def test_one_compiled_graph_serves_every_block_and_matches_eager() -> None:
    torch.manual_seed(0)
    eager = CausalDiT(CONFIG).eval()
    compiled = CausalDiT(CONFIG).eval()
    compiled.load_state_dict(eager.state_dict())
    for block in compiled.blocks:
        block.compile(dynamic=False)
    gen = torch.Generator().manual_seed(1)
    cfg = CONFIG
    x = torch.randn(2, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width, generator=gen)
    t = torch.rand(2, cfg.chunk_frames, generator=gen) * 1000
    cond = torch.randn(2, cfg.condition_channels, cfg.chunk_frames, cfg.height, cfg.width, generator=gen)
    plucker = torch.randn(2, cfg.chunk_frames, *cfg.grid, 6, generator=gen)
    caches = [STCache(cfg, 2, zero_key_attention=True) for _ in range(2)]
    for cache in caches:
        cache.valid[0, : cache.chunk.start] = True  # world 0 has history, world 1 only the chunk
        cache.keys.normal_(generator=torch.Generator().manual_seed(2))
        cache.values.normal_(generator=torch.Generator().manual_seed(3))
        cache.refresh_attention()
    torch._dynamo.reset()
    counters.clear()
    with torch.no_grad():
        expected = eager(x, t, cond, plucker, caches[0])
        got = compiled(x, t, cond, plucker, caches[1])
        again = compiled(x, t, cond, plucker, caches[1])
    assert counters["stats"]["unique_graphs"] == 1  # three blocks, one graph, no recompiles
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(caches[1].keys, caches[0].keys)  # the chunk K/V went into the cache
