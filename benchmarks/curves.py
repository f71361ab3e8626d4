"""Validation and test accuracy by epoch, mean and ±1 std over seeds, one curve per value of a trials column:
what `sweeper report --figures` draws per model, drawn here per any column (e.g. weighting), from the rows
alone, finished or not, of one results directory or several (e.g. the same spec run in two precisions).
With --seeds, a curve per seed instead of the mean, the values side by side.

    python benchmarks/curves.py results/adgm-weighting --by weighting --out docs/figures/adgm-weighting.png
    python benchmarks/curves.py results/m2-bf16 results/m2-fp32 --by precision --seeds --out docs/figures/precision.png
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sweeper import open as open_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="one results directory or several, read as one")
    parser.add_argument("--by", required=True, help="a trials column: one curve per value")
    parser.add_argument("--seeds", action="store_true", help="a curve per seed, not the mean over seeds")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args()
    sweeps = [open_sweep(d) for d in args.dirs]
    epochs = pd.concat([s.epochs().merge(s.trials()[["trial_id", args.by]], on="trial_id") for s in sweeps], ignore_index=True)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, column in zip(axes, ("val_acc", "test_acc")):
        measured = epochs.dropna(subset=[column])  # eval_every E: the epochs evaluated
        for value, rows in measured.groupby(args.by, dropna=False):  # NaN: the column does not apply (sigma2 with Bernoulli)
            name = f"{args.by}={'n/a' if value != value else value}"
            if args.seeds:
                for seed, seed_rows in rows.groupby("seed"):
                    ax.plot(seed_rows["epoch"], 100 * seed_rows[column], label=f"{name}, seed {seed}", linewidth=1)
                continue
            stats = rows.groupby("epoch")[column].agg(["mean", "std", "count"]).reset_index()
            ax.plot(stats["epoch"], 100 * stats["mean"], label=f"{name} ({int(stats['count'].max())} seeds)")
            ax.fill_between(stats["epoch"], 100 * (stats["mean"] - stats["std"].fillna(0)),
                            100 * (stats["mean"] + stats["std"].fillna(0)), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_title(f"{column.replace('_acc', '')} accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    names = ", ".join(dict.fromkeys(s.spec.name for s in sweeps))
    figure.suptitle(f"{names}: {'each seed' if args.seeds else 'mean ± std over seeds'}")
    figure.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
