"""Fixed-shape ST-cache: constant memory, bounded RoPE positions, window roll, pool admission, reset."""

import torch

from sim_env.model import DROP, CausalDiT, STCache
from tests.sim_env.micro_configs import NANO

STEPS = 2000


def _tensors(cache):
    return [cache.keys, cache.values, cache.valid, cache.active, cache.poses, cache.positions, cache.cos]


def _pose(x):
    p = torch.eye(4).repeat(2, 1, 1, 1)
    p[..., 0, 3] = x
    return p


class RoundRobin:
    """Admits every leaving frame into the next memory slot (a stand-in for pool_policy)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, slot_k, slot_v, pose, cache):
        index = torch.full((cache.batch_size,), self.calls % cache.memory.frames, dtype=torch.long)
        self.calls += 1
        return index


def test_layout_is_derived_from_config():
    cache = STCache(NANO, batch_size=2)
    tpf = NANO.tokens_per_frame
    assert tpf == 4 and cache.num_slots == 1 + 2 + 2 + 1
    assert cache.keys.shape == (1, 2, 6 * tpf, 2, 16)
    assert (cache.anchor.start, cache.memory.start, cache.window.start, cache.chunk.start) == (0, 1, 3, 5)
    assert cache.valid[:, 5].all() and not cache.valid[:, :5].any()  # only the chunk counts at first


def test_memory_constant_and_positions_bounded_over_2000_steps():
    torch.manual_seed(0)
    model = CausalDiT(NANO).eval()
    cache = STCache(NANO, batch_size=2)
    ptrs = [t.data_ptr() for t in _tensors(cache)]
    shapes = [t.shape for t in _tensors(cache)]
    positions = cache.positions.clone()
    nbytes = cache.memory_bytes()
    x = torch.randn(2, NANO.out_channels, 1, 8, 8)
    t = torch.zeros(2, 1)
    policy = RoundRobin()
    with torch.no_grad():
        model(x, t, cache=cache)
        cache.commit_anchor(_pose(0.0))
        for step in range(STEPS):
            v = model(x, t, cache=cache)
            cache.advance(_pose(float(step)), admit=policy)
    assert torch.isfinite(v).all()
    assert [t.data_ptr() for t in _tensors(cache)] == ptrs
    assert [t.shape for t in _tensors(cache)] == shapes
    assert cache.memory_bytes() == nbytes
    assert torch.equal(cache.positions, positions)
    assert 0 <= int(cache.positions[:, 0].min()) and int(cache.positions[:, 0].max()) < cache.num_slots
    assert cache.valid.all()  # anchor, full pool and full window after the rollout
    assert policy.calls == STEPS


def test_window_roll_and_pool_admission_move_frames():
    cache = STCache(NANO, batch_size=2)
    fk = cache.frame_keys()
    chunk = cache.chunk.start
    for step in range(3):
        fk[:, :, chunk] = float(step + 1)  # stand-in for the chunk written by a forward pass
        cache.advance(_pose(float(step + 1)), admit=RoundRobin() if step == 2 else (lambda *a: None))
    w = cache.window.start
    # window holds the last two chunks, oldest first; its poses moved with it
    assert torch.all(fk[:, :, w] == 2) and torch.all(fk[:, :, w + 1] == 3)
    assert torch.equal(cache.poses[:, w, 0, 3], torch.tensor([2.0, 2.0]))
    # step 3 offered frame 1 (leaving the window) to the pool: it went into memory slot 0
    m = cache.memory.start
    assert torch.all(fk[:, :, m] == 1) and cache.valid[:, m].all() and not cache.valid[:, m + 1].any()


def test_drop_index_leaves_world_untouched():
    cache = STCache(NANO, batch_size=2)
    k = torch.ones(1, 2, 4, 2, 16)
    cache.write_memory(torch.tensor([1, DROP]), k, k, _pose(5.0)[:, 0])
    m = cache.memory.start
    assert cache.valid[0, m + 1] and not cache.valid[1, m : m + 2].any()
    assert torch.all(cache.frame_keys()[:, 0, m + 1] == 1) and torch.all(cache.frame_keys()[:, 1] == 0)


def test_advance_admission_per_world_matches_write_memory():
    """The roll's row-copy admission equals `write_memory`: one world admits the frame, one drops it."""
    torch.manual_seed(0)
    caches = [STCache(NANO, batch_size=2) for _ in range(2)]
    for cache in caches:
        torch.manual_seed(1)
        cache.keys.copy_(torch.randn_like(cache.keys))
        cache.values.copy_(torch.randn_like(cache.values))
        cache.valid[:] = True
        cache.poses[..., 0, 3] = torch.arange(cache.num_slots, dtype=torch.float32)
    rolled, reference = caches
    w = rolled.window.start
    index = torch.tensor([1, DROP])
    rolled.advance(_pose(9.0), admit=lambda *a: index)
    leaving = reference.frame_keys()[:, :, w].clone(), reference.frame_values()[:, :, w].clone()
    reference.write_memory(index, *leaving, reference.poses[:, w].clone())
    reference.advance(_pose(9.0), admit=lambda *a: None)
    for got, want in zip(_tensors(rolled), _tensors(reference), strict=True):
        assert torch.equal(got, want)
    m = rolled.memory.start
    assert torch.equal(rolled.frame_keys()[:, 0, m + 1], leaving[0][:, 0])  # world 0 admitted it
    assert not torch.equal(rolled.frame_keys()[:, 1, m + 1], leaving[0][:, 1])  # world 1 dropped it


def test_attention_bias_and_reset_per_world():
    cache = STCache(NANO, batch_size=2)
    cache.commit_anchor(_pose(0.0))
    bias = cache.attention_bias(torch.float32)
    assert bias.shape == (2, 1, 1, cache.num_slots * 4)
    assert (bias[:, 0, 0, :4] == 0).all() and torch.isinf(bias[:, 0, 0, 4:20]).all()
    cache.reset(torch.tensor([True, False]))
    assert not cache.valid[0, 0] and cache.valid[1, 0] and cache.valid[:, cache.chunk.start].all()


def test_batch_invariance_of_cached_forward():
    torch.manual_seed(0)
    model = CausalDiT(NANO).eval()
    x = torch.randn(4, NANO.out_channels, 1, 8, 8)
    t = torch.full((4, 1), 400.0)
    with torch.no_grad():
        batched = STCache(NANO, batch_size=4)
        alone = STCache(NANO, batch_size=1)
        for _ in range(3):
            vb = model(x, t, cache=batched)
            va = model(x[1:2], t[1:2], cache=alone)
            batched.advance(torch.eye(4).repeat(4, 1, 1, 1))
            alone.advance(torch.eye(4).repeat(1, 1, 1, 1))
    assert torch.allclose(vb[1:2], va, atol=1e-5)
