#!/usr/bin/env python3
"""Chart of phase-1 time, Star Attention vs global prefill, from the CSVs that `bin/benchmark star --csv` writes.

Usage: python3 docs/figures/plot_star_vs_global.py docs/figures/star-vs-global-*.csv
Writes docs/figures/star-vs-global.png next to this script.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(paths):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for path in paths:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        model = rows[0]["model"].split("/")[-1]
        tokens = [int(r["tokens"]) for r in rows]
        global_s = [float(r["global_s"]) for r in rows]
        star_s = [float(r["star_s"]) for r in rows]
        block = rows[0]["block_size"]
        axes[0].plot(tokens, global_s, "o-", label=f"{model}: global prefill")
        axes[0].plot(tokens, star_s, "s--", label=f"{model}: Star phase 1 (b={block})")
        axes[1].plot(tokens, [g / s for g, s in zip(global_s, star_s)], "o-", label=model)
    axes[0].set_xscale("log", base=2)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("context tokens")
    axes[0].set_ylabel("seconds (one process, blocks one after another)")
    axes[0].set_title("Phase 1: linear (Star) vs quadratic (global)")
    axes[0].legend(fontsize=8)
    axes[1].set_xscale("log", base=2)
    axes[1].set_xlabel("context tokens")
    axes[1].set_ylabel("global time / Star time")
    axes[1].set_title("Speed-up of Star's phase 1")
    axes[1].axhline(1.0, color="grey", linewidth=0.8)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "star-vs-global.png")
    fig.savefig(out, dpi=120)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1:])
