"""Plot few-shot curves from benchmarks/results/fewshot_curves*.json (needs matplotlib; optional).

    python benchmarks/plot.py benchmarks/results/fewshot_curves.json   # writes fewshot_curves.png beside it
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def plot_curves(results: Path) -> Path | None:
    """One panel per target: UPOS mean over seeds against n, error bars at one sample std."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    scores = json.loads(Path(results).read_text())["scores"]
    targets = list(dict.fromkeys(row["target"] for row in scores))
    systems = list(dict.fromkeys(row["system"] for row in scores))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.5 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for system in systems:
            by_n: dict[int, list[float]] = {}
            for row in scores:
                if row["target"] == target and row["system"] == system:
                    by_n.setdefault(row["n"], []).append(row["upos"])
            shots = sorted(by_n)
            means = [statistics.fmean(by_n[n]) for n in shots]
            stds = [statistics.stdev(by_n[n]) if len(by_n[n]) > 1 else 0.0 for n in shots]
            ax.errorbar(shots, means, yerr=stds, marker="o", capsize=3, label=system)
        ax.set_title(f"POS, {target}")
        ax.set_xlabel("n labelled target sentences")
        ax.set_ylabel("UPOS accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    out = Path(results).with_suffix(".png")
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")
    return out


if __name__ == "__main__":
    for path in sys.argv[1:] or ["benchmarks/results/fewshot_curves.json"]:
        plot_curves(Path(path))
