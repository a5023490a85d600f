"""Issue 7's speed table in one run: real time at 832×480, batched RL throughput, DiT efficiency.

`main()` measures, on one CUDA device and in this order:

1. the bf16 matrix-product ceiling of this GPU right now (`sim_env.perf.ceiling`);
2. attention kernels at the ``wan2.1-1.3b`` cache shape: SDPA with the ST-cache's additive mask
   versus the padded mask-free form (`sim_env.model.st_cache`) per backend; the fastest
   backend for the padded form is preferred for everything below;
3. one cached DiT pass of ``wan2.1-1.3b`` (CUDA graph): the masked reference path versus the
   padded fast path on the same cache contents and inputs (ms, achieved TFLOP/s against the
   ceiling, and the PSNR of fast vs reference outputs);
4. ``wan2.1-1.3b``, 12-frame chunks, 4 steps + cache pass, TAEHV decode: generated frames/s
   sustained over ``--wan-frames`` frames (CUDA-graph replays), with the eager phase split;
5. the 1-latent-frame chunk mode (``wan2.1-1.3b-chunk1``): action-to-frame latency p50/p99,
   each step timed from a host-side action to its 4 decoded frames on the device;
6. ``tiny64`` with ``--tiny-worlds`` worlds: env-steps/s (float32 and bfloat16);
7. the three RL tiers on ``tiny64`` (`sim_env.bench_rl`).

Weights are random (speed does not depend on their values). Prints markdown tables and writes
every figure to ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from sim_env.bench_rl import bench_tiers
from sim_env.bench_speed_report import DIT_PATHS, TINY, WAN, WAN_CHUNK1, print_report
from sim_env.bench_world import _reset, bench_one, graphed_step, measure_phases
from sim_env.checkpoints import load_world_model
from sim_env.model.config import get_config
from sim_env.model.dit import remove_zero_keys
from sim_env.model.st_cache import INVALID_KEY_SCORE, MASK_CHANNELS, STCache
from sim_env.perf.ceiling import matmul_ceiling_tflops
from sim_env.perf.flops import attention_flops, dit_forward_flops, step_flops
from sim_env.runtime import GenerativeRuntime
from sim_env.runtime_speed import SpeedOptions, speed_up_model

log = logging.getLogger(__name__)

DENOISING_STEPS = 4
NAV_SCALE = 0.25
KERNEL_REPEATS = 10
BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}
SECTIONS = ("wan", "latency", "tiny", "tiers")
INVALID_FRACTION = 0.3  # of the key slots, in the kernel and DiT comparisons


# ---------------------------------------------------------------------------- helpers
def graph_replay_ms(fn: Callable[[], object], repeats: int = KERNEL_REPEATS) -> float:
    """Median ms of a CUDA-graph replay of ``fn`` (warmed up on a side stream first)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


@contextlib.contextmanager
def preferred_backend(name: str | None) -> Iterator[None]:
    """Run SDPA with backend ``name`` tried first (then flash, cuDNN, efficient, math); None = default."""
    if name is None:
        yield
        return
    order = [BACKENDS[name], *(b for b in BACKENDS.values() if b != BACKENDS[name]), SDPBackend.MATH]
    with sdpa_kernel(order, set_priority=True):
        yield


def _psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR (dB) of ``test`` against ``reference`` over the reference's peak-to-peak range."""
    ref = reference.float()
    mse = (test.float() - ref).pow(2).mean().item()
    peak = (ref.max() - ref.min()).item()
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def _navs(count: int, n: int, seed: int, device: torch.device | str) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (NAV_SCALE * (2 * torch.rand(n, 6, generator=gen, dtype=torch.float64) - 1)).to(device)
        for _ in range(count)
    ]


# ---------------------------------------------------------------------------- sections
def attention_kernels(device: torch.device) -> list[dict[str, Any]]:
    """Time and TFLOP/s of one layer's cached attention at the wan2.1-1.3b shape, per form and backend."""
    cfg = get_config(WAN)
    heads, d = cfg.num_heads, cfg.head_dim
    lq, lk = cfg.chunk_frames * cfg.tokens_per_frame, cfg.cache_frames * cfg.tokens_per_frame
    gen = torch.Generator(device=device).manual_seed(0)
    q, k, v = (
        torch.randn(1, heads, length, d, device=device, dtype=torch.bfloat16, generator=gen)
        for length in (lq, lk, lk)
    )
    valid = torch.arange(lk, device=device) >= int(INVALID_FRACTION * lk)
    bias = torch.zeros(1, 1, 1, lk, device=device, dtype=torch.bfloat16).masked_fill_(~valid, float("-inf"))
    qp = F.pad(q, (0, MASK_CHANNELS))
    qp[..., d] = 1.0
    kp, vp = F.pad(k, (0, MASK_CHANNELS)), F.pad(v, (0, MASK_CHANNELS))
    kp[..., d] = torch.where(valid, 0.0, INVALID_KEY_SCORE).to(kp.dtype)
    forms: dict[str, Callable[[], torch.Tensor]] = {
        "masked (additive bias)": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias),
        "padded (mask-free, d+8)": lambda: F.scaled_dot_product_attention(qp, kp, vp, scale=d**-0.5),
        "no mask (upper bound)": lambda: F.scaled_dot_product_attention(q, k, v),
    }
    flops = attention_flops(lq, lk, cfg.dim)
    rows = []
    reference = forms["masked (additive bias)"]()
    for form, fn in forms.items():
        for backend in (None, *BACKENDS):
            row: dict[str, Any] = {"form": form, "backend": backend or "default"}
            try:
                with preferred_backend(None) if backend is None else sdpa_kernel([BACKENDS[backend]]):
                    out = fn()
                    row["ms"] = graph_replay_ms(fn)
                row["tflops"] = flops / row["ms"] / 1e9
                if form.startswith("padded"):
                    row["max_abs_err_vs_masked"] = (
                        (out[..., :d].float() - reference.float()).abs().max().item()
                    )
            except RuntimeError as exc:  # backend does not take this form
                row["error"] = str(exc).splitlines()[0][:160]
            rows.append(row)
    return rows + zero_key_rows(q, k, v, valid, reference, flops)


def zero_key_rows(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    valid: torch.Tensor,
    reference: torch.Tensor,
    flops: int,
) -> list[dict[str, Any]]:
    """Kernel-table rows of the zero-key + LSE-correction form (flash and cuDNN ops that return the LSE)."""
    k0, v0 = (torch.where(valid[:, None], t, 0.0) for t in (k, v))
    invalid = (~valid).sum().float()  # on the device: a host int would be copied inside the graph
    ops = {
        "flash": lambda: torch.ops.aten._scaled_dot_product_flash_attention(q, k0, v0, 0.0, False, False)[:2],
        "cudnn": lambda: torch.ops.aten._scaled_dot_product_cudnn_attention(
            q, k0, v0, None, True, 0.0, False, False
        )[:2],
    }
    rows = []
    for backend, op in ops.items():
        row: dict[str, Any] = {"form": "zero keys + LSE correction (d)", "backend": backend}

        def corrected(op: Callable[[], tuple[torch.Tensor, torch.Tensor]] = op) -> torch.Tensor:
            return remove_zero_keys(*op(), invalid)

        try:
            out = corrected()
            row["ms"] = graph_replay_ms(corrected)
            row["tflops"] = flops / row["ms"] / 1e9
            row["max_abs_err_vs_masked"] = (out.float() - reference.float()).abs().max().item()
        except (RuntimeError, TypeError, AttributeError) as exc:  # op missing or shape not taken
            row["error"] = str(exc).splitlines()[0][:160]
        rows.append(row)
    return rows


def best_padded_backend(rows: Sequence[dict[str, Any]]) -> str | None:
    """The fastest named backend for the padded form (None if none ran)."""
    timed = [r for r in rows if r["form"].startswith("padded") and r["backend"] != "default" and "ms" in r]
    return min(timed, key=lambda r: r["ms"])["backend"] if timed else None


@torch.no_grad()
def dit_pass(runtime: GenerativeRuntime, ceiling: float) -> dict[str, Any]:
    """One cached DiT pass (graph replay): masked reference, padded and zero-key paths, same inputs.

    With an FP8 runtime the same zero-key pass also runs on a bf16 copy of the weights (the
    runtime's random weights come from its seed): time, speed-up and PSNR of FP8 against bf16.
    """
    cfg, device, n = runtime.config, runtime.device, runtime.num_streams
    gen = torch.Generator(device=device).manual_seed(3)
    shape = (n, cfg.out_channels, cfg.chunk_frames, cfg.height, cfg.width)
    x = torch.randn(shape, device=device, generator=gen).to(runtime.dtype)
    cond = torch.randn((n, cfg.condition_channels, *shape[2:]), device=device, generator=gen)
    t = torch.full((n, cfg.chunk_frames), 500.0, device=device)
    plucker = torch.randn(n, cfg.chunk_frames, *cfg.grid, 6, device=device, generator=gen)
    caches = {}
    runtime.flush_cache_roll()
    for name, mirror in DIT_PATHS.items():
        cache = STCache(cfg, n, device=device, dtype=runtime.dtype, **mirror)
        cache.keys.copy_(runtime.cache.keys)
        cache.values.copy_(runtime.cache.values)
        cache.valid.copy_(runtime.cache.valid)
        cache.valid[:, cache.memory.start : cache.memory.stop] = False  # some slots masked out
        cache.refresh_attention()
        caches[name] = cache
    flops = dit_forward_flops(cfg, n, context_tokens=runtime.context_tokens)
    result: dict[str, Any] = {"flops_per_pass": flops, "ceiling_tflops": ceiling, "fp8": runtime.fp8_linears}
    models = {name: runtime.model for name in caches}
    if runtime.fp8_linears:
        bf16 = load_world_model(None, cfg, runtime.seed).to(device, runtime.dtype).eval()
        speed_up_model(bf16, device, runtime.fuse_qkv, compile_blocks=runtime.compile_blocks)
        caches["zero_key_bf16"], models["zero_key_bf16"] = caches["zero_key"], bf16
    outputs = {}
    for name, cache in caches.items():

        def forward(cache: STCache = cache, model: torch.nn.Module = models[name]) -> torch.Tensor:
            return model(x, t, cond, plucker, cache, runtime._context)

        outputs[name] = forward()
        ms = graph_replay_ms(forward)
        tflops = result["flops_per_pass"] / ms / 1e9
        result[name] = {"ms": ms, "tflops": tflops, "fraction_of_ceiling": tflops / ceiling}
    for name in ("padded", "zero_key"):
        result[f"psnr_{name}_vs_reference_db"] = _psnr(outputs[name], outputs["reference"])
        error = (outputs[name].float() - outputs["reference"].float()).abs().max()
        result[f"max_abs_err_{name}"] = error.item()
    if runtime.fp8_linears:
        result["psnr_fp8_vs_bf16_db"] = _psnr(outputs["zero_key"], outputs["zero_key_bf16"])
        result["fp8_speedup"] = result["zero_key_bf16"]["ms"] / result["zero_key"]["ms"]
    del caches, models
    return result


def _wan_runtime(
    config: str,
    device: torch.device,
    compile_blocks: bool = False,
    fp8: bool = False,
    compile_mode: str | None = None,
) -> GenerativeRuntime:
    runtime = GenerativeRuntime(
        config=config,
        device=str(device),
        num_worlds=1,
        denoising_steps=DENOISING_STEPS,
        dtype=torch.bfloat16,
        speed=SpeedOptions(compile_blocks=compile_blocks, fp8_linears=fp8, compile_mode=compile_mode),
    )
    _reset(runtime, seed=0)
    return runtime


def wan_sustained(
    device: torch.device,
    frames: int,
    phase_steps: int,
    ceiling: float,
    compile_blocks: bool = False,
    fp8: bool = False,
    compile_mode: str | None = None,
) -> dict[str, Any]:
    """Frames/s of wan2.1-1.3b (B = 1) over ``frames`` generated frames, phase split, DiT pass."""
    runtime = _wan_runtime(WAN, device, compile_blocks, fp8, compile_mode)
    steps = math.ceil(frames / runtime.video_frames)
    navs = _navs(max(steps, phase_steps, 3), 1, seed=1, device=device)
    step = graphed_step(runtime, navs[:3])  # warms up first
    phases = measure_phases(runtime, navs[:phase_steps]) if phase_steps else {}
    torch.cuda.synchronize()
    start = time.perf_counter()
    for nav in navs[:steps]:
        step(nav)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = steps * runtime.video_frames
    dit_ms = phases.get("denoise", 0.0) + phases.get("cache_pass", 0.0)
    flops = step_flops(runtime.config, 1, DENOISING_STEPS, context_tokens=runtime.context_tokens)
    result = {
        "config": WAN,
        "frames": generated,
        "chunks": steps,
        "frames_per_s": generated / seconds,
        "ms_per_chunk": 1000 * seconds / steps,
        "cache_slots": runtime.config.cache_frames,
        "compile_blocks": compile_blocks,
        "fp8": fp8,
        "compile_mode": compile_mode,
        "phase_ms_eager": phases,
        "dit_tflops_eager_split": flops / dit_ms / 1e9 if dit_ms else None,
        "dit_tflops_whole_step": flops * steps / seconds / 1e12,
    }
    print(f"{WAN} sustained: {result['frames_per_s']:.1f} frames/s, phases {phases}", flush=True)
    del step  # the sustained step's graph pool
    torch.cuda.empty_cache()
    result["dit_pass"] = dit_pass(runtime, ceiling)
    del runtime
    torch.cuda.empty_cache()
    return result


def wan_latency(
    device: torch.device, steps: int, compile_blocks: bool = False, fp8: bool = False
) -> dict[str, Any]:
    """Action-to-frame latency of the 1-latent-frame chunk mode: host action → decoded frames ready."""
    runtime = _wan_runtime(WAN_CHUNK1, device, compile_blocks, fp8)
    step = graphed_step(runtime, _navs(3, 1, seed=2, device=device))
    latencies = []
    for nav in _navs(steps, 1, seed=3, device="cpu"):  # the action arrives on the host
        torch.cuda.synchronize()
        start = time.perf_counter()
        step(nav)
        torch.cuda.synchronize()
        latencies.append(1000 * (time.perf_counter() - start))
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    result = {
        "config": WAN_CHUNK1,
        "video_frames_per_step": runtime.video_frames,
        "steps": steps,
        "fp8": fp8,
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p99": q[98],
        "frames_per_s": runtime.video_frames * 1000 / statistics.mean(latencies),
    }
    del runtime
    torch.cuda.empty_cache()
    return result


def tiny_throughput(
    device: torch.device, worlds: int, steps: int, repeats: int, compile_blocks: bool = False
) -> list[dict[str, Any]]:
    """tiny64 env-steps/s at ``worlds`` worlds, float32 and bfloat16 (CUDA graph)."""
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        r = bench_one(
            TINY,
            worlds,
            DENOISING_STEPS,
            steps,
            repeats,
            device,
            dtype=dtype,
            phase_steps=0,
            compile_blocks=compile_blocks,
        )
        rows.append({**asdict(r), "compile_blocks": compile_blocks})
    torch.cuda.empty_cache()
    return rows


def rl_tiers(
    device: torch.device, worlds: int, steps: int, repeats: int, compile_blocks: bool = False
) -> dict[str, Any]:
    """The three RL tiers on tiny64 (bfloat16 world, graphed step; float32 policy)."""
    runtime = GenerativeRuntime(
        config=TINY,
        device=str(device),
        num_worlds=worlds,
        denoising_steps=DENOISING_STEPS,
        dtype=torch.bfloat16,
        speed=SpeedOptions(compile_blocks=compile_blocks),
    )
    _reset(runtime, seed=0)
    step = graphed_step(runtime, _navs(3, worlds, seed=4, device=device))
    first = step(_navs(1, worlds, seed=5, device=device)[0])
    result = {
        **asdict(bench_tiers(runtime, step, first, steps=steps, repeats=repeats)),
        "compile_blocks": compile_blocks,
    }
    del runtime
    torch.cuda.empty_cache()
    return result


def add_speed_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `genworld bench speed`."""
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument("--wan-frames", type=int, default=1000, help="sustained-run length in video frames")
    parser.add_argument("--phase-steps", type=int, default=3, help="eager steps of the wan phase split")
    parser.add_argument(
        "--latency-steps", type=int, default=100, help="timed steps of the 1-frame chunk mode"
    )
    parser.add_argument("--tiny-worlds", type=int, default=256)
    parser.add_argument("--tiny-steps", type=int, default=30, help="timed steps per repeat (tiny64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["auto", "default", *BACKENDS], default="auto")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated subset of the measured sections (the ceiling and kernel table always run)",
    )
    parser.add_argument(
        "--compile-blocks", action="store_true", help="torch.compile the wan DiT blocks (GenerativeRuntime)"
    )
    parser.add_argument(
        "--compile-tiny", action="store_true", help="torch.compile the tiny64 DiT blocks (tiny and tiers)"
    )
    parser.add_argument(
        "--compile-mode",
        default=None,
        help="torch.compile mode of the wan blocks in the sustained run (e.g. max-autotune-no-cudagraphs)",
    )
    parser.add_argument(
        "--fp8",
        action="store_true",
        help="FP8 dense layers in the wan DiT blocks (SpeedOptions(fp8_linears=True)); "
        "the DiT-pass section then also times bf16 and reports FP8's PSNR against it",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sim_env.bench_speed`: the same as `genworld bench speed`."""
    parser = argparse.ArgumentParser(prog="genworld bench speed", description=__doc__.splitlines()[0])
    add_speed_bench_arguments(parser)
    return run_speed_bench(parser.parse_args(argv))


def run_speed_bench(args: argparse.Namespace) -> int:
    """Run every section, print the table and write the JSON; exit status 2 without CUDA."""
    chosen = [name for name in args.sections.split(",") if name]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise ValueError(f"--sections: unknown {unknown}; choose from {list(SECTIONS)}")
    if not torch.cuda.is_available():
        print("genworld bench speed: needs a CUDA device")
        return 2
    if min(args.wan_frames, args.latency_steps, args.tiny_worlds, args.tiny_steps, args.repeats) < 1:
        raise ValueError(
            "--wan-frames, --latency-steps, --tiny-worlds, --tiny-steps and --repeats must be positive"
        )
    device = torch.device("cuda")
    started = time.perf_counter()
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    out["ceiling_tflops"] = matmul_ceiling_tflops(device)
    out["attention"] = attention_kernels(device)
    backend = best_padded_backend(out["attention"]) if args.backend == "auto" else args.backend
    out["backend"] = None if backend == "default" else backend
    compile_blocks = bool(args.compile_blocks)
    out["compile_blocks"] = compile_blocks
    sections: dict[str, Callable[[], Any]] = {
        "wan": lambda: wan_sustained(
            device,
            args.wan_frames,
            args.phase_steps,
            out["ceiling_tflops"],
            compile_blocks,
            args.fp8,
            args.compile_mode,
        ),
        "latency": lambda: wan_latency(device, args.latency_steps, compile_blocks, args.fp8),
        "tiny": lambda: tiny_throughput(
            device, args.tiny_worlds, args.tiny_steps, args.repeats, bool(args.compile_tiny)
        ),
        "tiers": lambda: rl_tiers(
            device, args.tiny_worlds, args.tiny_steps, args.repeats, bool(args.compile_tiny)
        ),
    }
    for name, run in sections.items():
        if name not in chosen:
            continue
        log.info("bench speed: %s", name)
        section_start = time.perf_counter()
        with preferred_backend(out["backend"]):
            out[name] = run()
        out.setdefault("section_seconds", {})[name] = time.perf_counter() - section_start
        if args.json:  # keep what is measured even if a later section fails
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(out, f, indent=2)
    out["seconds"] = time.perf_counter() - started
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    print_report(out)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
