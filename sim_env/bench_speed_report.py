"""The markdown report of `genworld bench speed` (`sim_env.bench_speed`) and the names it uses."""

from __future__ import annotations

from typing import Any

from bridge.bench import report

WAN, WAN_CHUNK1, TINY = "wan2.1-1.3b", "wan2.1-1.3b-chunk1", "tiny64"
# The cached-attention paths of one DiT pass: the masked reference and the two mask-free mirrors
# (`sim_env.model.st_cache`); the runtime uses zero-key for wan2.1-1.3b on CUDA.
DIT_PATHS: dict[str, dict[str, bool]] = {
    "reference": {},
    "padded": {"padded_attention": True},
    "zero_key": {"zero_key_attention": True},
}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def print_report(out: dict[str, Any]) -> None:
    """The whole table as markdown."""
    print(f"# genworld speed — {out['device']}, torch {out['torch']}, {out['date']}\n")
    print(f"bf16 matmul ceiling: {out['ceiling_tflops']:.0f} TFLOP/s; attention backend: {out['backend']}\n")
    rows = [
        [
            r["form"],
            r["backend"],
            _fmt(r.get("ms"), 2),
            _fmt(r.get("tflops"), 0),
            f"{r['max_abs_err_vs_masked']:.3g}" if "max_abs_err_vs_masked" in r else "",
            r.get("error", ""),
        ]
        for r in out["attention"]
    ]
    header = ["attention form", "backend", "ms", "TFLOP/s", "max err vs masked", "note"]
    print(report.markdown_table(header, rows, text_columns=2))
    print()
    rows = _wan_rows(out["wan"], out["ceiling_tflops"]) if "wan" in out else []
    if "latency" in out:
        lat = out["latency"]
        rows += [
            [f"{WAN_CHUNK1} (4 frames/step)", "action→frame p50 ms", _fmt(lat["latency_ms_p50"])],
            [f"{WAN_CHUNK1}", "action→frame p99 ms", _fmt(lat["latency_ms_p99"])],
            [f"{WAN_CHUNK1}", "frames/s", _fmt(lat["frames_per_s"])],
        ]
    for r in out.get("tiny", []):
        compiled = ", compiled blocks" if r.get("compile_blocks") else ""
        rows.append(
            [
                f"{TINY} {r['num_worlds']} worlds, {r['dtype']}{compiled}",
                "env-steps/s",
                _fmt(r["env_steps_per_s"]),
            ]
        )
    if "tiers" in out:
        tiers = out["tiers"]
        compiled = ", compiled blocks" if tiers.get("compile_blocks") else ""
        for key, name in (
            ("env_steps_per_s", "env step"),
            ("with_policy_steps_per_s", "+ policy inference"),
            ("with_ppo_steps_per_s", "+ PPO update"),
        ):
            rows.append(
                [
                    f"{TINY} {tiers['num_streams']} worlds bf16{compiled}: {name}",
                    "env-steps/s",
                    _fmt(tiers[key]),
                ]
            )
    print(report.markdown_table(["measurement", "unit", "value"], rows, text_columns=2))
    if "wan" in out and out["wan"]["phase_ms_eager"]:
        print()
        phases = out["wan"]["phase_ms_eager"]
        print(report.markdown_table(list(phases), [[f"{v:.1f}" for v in phases.values()]], text_columns=0))


def _wan_rows(wan: dict[str, Any], ceiling: float) -> list[list[str]]:
    """Table rows of the sustained wan2.1-1.3b section."""
    dit = wan["dit_pass"]
    compiled = ", compiled blocks" if wan.get("compile_blocks") else ""
    compiled += ", FP8 linears" if wan.get("fp8") else ""
    rows = [
        [
            f"{WAN} 832×480, 12-frame chunk, 4 steps + cache pass{compiled}",
            "frames/s (sustained)",
            _fmt(wan["frames_per_s"]),
        ],
        [f"{WAN} over {wan['frames']} frames", "ms/chunk", _fmt(wan["ms_per_chunk"])],
    ]
    for name in DIT_PATHS:
        rows.append(
            [
                f"{WAN} DiT pass, {name}",
                "ms / TFLOP/s / of ceiling",
                f"{dit[name]['ms']:.1f} / {dit[name]['tflops']:.0f} / {dit[name]['fraction_of_ceiling']:.2f}",
            ]
        )
    if "zero_key_bf16" in dit:
        bf16 = dit["zero_key_bf16"]
        rows += [
            [
                f"{WAN} DiT pass, zero_key with bf16 linears",
                "ms / TFLOP/s / of ceiling",
                f"{bf16['ms']:.1f} / {bf16['tflops']:.0f} / {bf16['fraction_of_ceiling']:.2f}",
            ],
            [f"{WAN} DiT pass FP8 vs bf16 linears", "speed-up", f"{dit['fp8_speedup']:.2f}×"],
            [f"{WAN} DiT pass FP8 vs bf16 linears", "PSNR dB", _fmt(dit["psnr_fp8_vs_bf16_db"])],
        ]
    for name in ("padded", "zero_key"):
        rows.append(
            [f"{WAN} DiT pass {name} vs reference", "PSNR dB", _fmt(dit[f"psnr_{name}_vs_reference_db"])]
        )
    whole = wan["dit_tflops_whole_step"]
    rows.append(
        [
            f"{WAN} DiT FLOPs over the whole sustained step",
            "TFLOP/s / of ceiling",
            f"{whole:.0f} / {whole / ceiling:.2f}",
        ]
    )
    return rows
