"""PNG plots of an evaluation report: each frame metric against the rollout step, one line per variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM ↑",
    "depth_absrel": "depth AbsRel ↓",
    "hand_region_psnr": "hand-region PSNR (dB) ↑, tabletop",
}
HAND_ONLY = ("hand_motion",)


def plot_report(report: dict[str, Any], out_dir: str | Path, stem: str = "eval") -> list[Path]:
    """Write ``<stem>_<metric>.png`` per frame metric into ``out_dir``; returns the paths.

    Frame-metric curves are the per-step means over episodes and navigation trajectories
    (a variant evaluated only on hand trajectories is left out of those), shaded ± one standard
    error over those episodes; the hand-region plot covers the hand trajectories. The report's
    horizons are marked on each line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    horizons = [int(h) for h in report["horizons"]]
    paths = []
    for metric, label in LABELS.items():
        fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=120)
        for variant, summary in report["variants"].items():
            curve = summary.get("curves", {}).get(metric)
            hand_only = tuple(summary.get("curves_cover", ())) == HAND_ONLY
            if not curve or (hand_only and metric != "hand_region_psnr"):
                continue
            steps = list(range(1, len(curve) + 1))
            (line,) = ax.plot(steps, curve, label=variant, linewidth=1.2)
            spread = summary.get("curves_stderr", {}).get(metric)
            if spread and len(spread) == len(curve):  # ± one standard error over episodes
                low = [c - e for c, e in zip(curve, spread, strict=True)]
                high = [c + e for c, e in zip(curve, spread, strict=True)]
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
            marks = [h for h in horizons if h <= len(curve)]
            ax.plot(marks, [curve[h - 1] for h in marks], "o", color=line.get_color(), markersize=4)
        ax.set_xscale("log")
        ax.set_xticks(horizons)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("rollout step (horizon)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            plt.close(fig)
            continue
        fig.tight_layout()
        path = out / f"{stem}_{metric}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
