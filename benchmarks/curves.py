"""Validation and test accuracy by epoch, mean and ±1 std over seeds, one curve per value of a trials column:
what `sweeper report --figures` draws per model, drawn here per any column (e.g. weighting), from the rows
alone, finished or not.

    python benchmarks/curves.py results/adgm-weighting --by weighting --out docs/figures/adgm-weighting.png
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sweeper import open as open_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--by", required=True, help="a trials column: one curve per value")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args()
    sweep = open_sweep(args.dir)
    epochs = sweep.epochs().merge(sweep.trials()[["trial_id", args.by]], on="trial_id")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, column in zip(axes, ("val_acc", "test_acc")):
        for value, rows in epochs.groupby(args.by, dropna=False):  # NaN: the column does not apply (sigma2 with Bernoulli)
            stats = rows.groupby("epoch")[column].agg(["mean", "std", "count"]).reset_index()
            ax.plot(stats["epoch"], 100 * stats["mean"], label=f"{args.by}={'n/a' if value != value else value} ({int(stats['count'].max())} seeds)")
            ax.fill_between(stats["epoch"], 100 * (stats["mean"] - stats["std"].fillna(0)),
                            100 * (stats["mean"] + stats["std"].fillna(0)), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_title(f"{column.replace('_acc', '')} accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{sweep.spec.name}: mean ± std over seeds")
    figure.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
