"""The papers' figures from results directories, as PNG and SVG (matplotlib, no display).

- accuracy against the swept hyperparameter, per model, with error bars over seeds
- learning curves: validation accuracy by epoch, mean and a ±1 std band over seeds
- entropy and mutual information of q(y|x) on the unlabelled set by epoch (Raj §5.5)
- reconstruction error and accuracy against sigma^2 (Jurasiński Fig. 4), when sigma2 varies
- validation accuracy by epoch for each batch ratio (Jurasiński App. D), when the batch varies
- test accuracy with each seed's epoch chosen by validation accuracy, and by lowest training loss
  (Jurasiński Fig. 12), against the swept hyperparameter
Each is drawn only when the results have what it shows.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import results
from .table import axis_names, axis_title, best_by_validation, default_rows, label

FORMATS = ("png", "svg")


def _pyplot():
    """pyplot, drawing off screen (Agg) unless a notebook's kernel chose its own backend (to show figures inline)."""
    import sys

    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def detached(figures: dict) -> dict:
    """Figures handed to a caller: out of pyplot's list of open figures, so that a notebook shows each once,
    where the caller displays it, and none is kept alive by pyplot."""
    plt = _pyplot()
    for figure in figures.values():
        plt.close(figure)
    return figures


CAPTIONS = {  # what each figure shows, for the HTML report and a notebook
    "accuracy": "Test accuracy against the swept hyperparameter, per model: mean ± std over seeds of each point's "
                "configuration chosen by validation accuracy.",
    "learning_curves": "Learning curves: validation accuracy by epoch, mean and ±1 std over seeds, per model (its "
                       "configuration selected by validation).",
    "selection": "Choosing the epoch: test accuracy at each seed's best validation epoch against that at its lowest "
                 "training loss, per model.",
    "entropy_mi": "Entropy of q(y|x) and the mutual information I(y; x) on unlabelled data by epoch, mean and ±1 std over seeds.",
    "sigma2": "Squared reconstruction error and test accuracy against the Gaussian likelihood's variance σ².",
    "batch_ratio": "Validation accuracy by epoch for each labelled:unlabelled batch ratio, per model.",
    # what `sweeper inspect` draws of a kept model
    "active_units": "KL divergence of each latent unit from its prior over the test set, sorted: the active units are above the line.",
    "reconstructions": "Test images (top) and their reconstructions through q(z|x,y) and p(x|y,z).",
    "samples": "Samples from p(x|y,z): one row per class y, the same z down each column.",
    "analogies": "Analogies: each test image's z, decoded with every class y in turn.",
    "two_d": "Data by class, reconstructions, and the classifier's confidence behind them.",
}


def draw_all(trials: pd.DataFrame, epochs: pd.DataFrame) -> dict:
    """Every figure the results support, as matplotlib figures by name (CAPTIONS says what each shows)."""
    done = trials[results.finished(trials)]
    curves = epochs.merge(done[["trial_id", "config_id"]], on=["trial_id", "config_id"])
    drawn = {}
    rows = default_rows(trials)
    if rows not in ("dataset", "label_count") or trials[axis_names(rows)[0]].nunique() > 1:
        drawn["accuracy"] = _accuracy_against(done, rows)
    drawn["learning_curves"] = _learning_curves(done, curves)
    if "loss" in curves and "test_acc" in curves and rows not in ("dataset", "label_count"):
        drawn["selection"] = _selection(done, curves, rows)
    drawn["entropy_mi"] = _entropy_and_information(done, curves)
    if "sigma2" in done and done["sigma2"].nunique() > 1:
        drawn["sigma2"] = _sigma2(done, curves)
    if {"batch_labelled", "batch_unlabelled"} <= set(done) and done[["batch_labelled", "batch_unlabelled"]].drop_duplicates().shape[0] > 1:
        drawn["batch_ratio"] = _batch_ratio(done, curves)
    return drawn


def write_all(trials: pd.DataFrame, epochs: pd.DataFrame, out: Path) -> list[Path]:
    """Every figure the results support, written under `out` as PNG and SVG; returns the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [_save(figure, out / name) for name, figure in draw_all(trials, epochs).items()]


def _save(figure, stem: Path) -> Path:
    from ..results import atomic

    for fmt in FORMATS:
        with atomic(stem.with_suffix(f".{fmt}")) as temporary:
            figure.savefig(temporary, format=fmt, dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return stem.with_suffix(".png")


def _finish(ax, xlabel: str, ylabel: str | None = None) -> None:
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _best_configurations(done: pd.DataFrame) -> dict[str, list[str]]:
    """Per model, the trials (seeds) of its configuration selected by validation accuracy."""
    picked = best_by_validation(done, "model", "model")
    return dict(zip(picked["col_label"], picked["trial_ids"]))


def _accuracy_against(done: pd.DataFrame, rows: str):
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    picked = best_by_validation(done, rows, "model")  # at each x, each model's configuration chosen by validation
    picked = picked[picked["row"].notna()]
    numeric = pd.api.types.is_numeric_dtype(picked["row"].infer_objects())
    frame = picked.rename(columns={"row": "x"})
    for model, stats in frame.groupby("col_label"):
        stats = stats.sort_values("x") if numeric else stats
        x = stats["x"] if numeric else stats["x"].map(label)
        ax.errorbar(x, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), marker="o", capsize=3, label=model)
    if numeric:
        _log_if_wide(ax, frame["x"].dropna())
    _finish(ax, axis_title(rows), "test accuracy % (mean ± std over seeds)")
    return figure


def _log_if_wide(ax, x: pd.Series) -> None:
    """A log x axis where the values span more than a factor of 100, linear near 0 so that 0 stays on it."""
    positive = x[x > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        ax.set_xscale("symlog", linthresh=max(positive.min(), 1e-12))


def _selection(done: pd.DataFrame, curves: pd.DataFrame, rows: str):
    """Fig. 12: the test accuracy a seed reaches at its best validation epoch against the one at its
    lowest training loss, for each model's configuration at each value of `rows` (chosen by validation)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    picked = best_by_validation(done, rows, "model")
    picked = picked[picked["row"].notna()]
    # among measured epochs: under eval_every the lowest loss may fall on an epoch with no accuracy
    finite = curves[curves["loss"].notna() & (curves["loss"].abs() < float("inf")) & curves["test_acc"].notna()]
    at_lowest = finite.loc[finite.groupby("trial_id")["loss"].idxmin()].set_index("trial_id")["test_acc"]
    numeric = pd.api.types.is_numeric_dtype(picked["row"].infer_objects())
    for model, group in picked.groupby("col_label"):
        group = group.sort_values("row") if numeric else group
        x = group["row"] if numeric else group["row"].map(label)
        by_loss = [100 * at_lowest.reindex(ids).mean() for ids in group["trial_ids"]]
        ax.plot(x, 100 * group["mean"], "o-", label=f"{model}: epoch by validation")
        ax.plot(x, by_loss, "s--", label=f"{model}: epoch by lowest training loss")
    if numeric:
        _log_if_wide(ax, picked["row"])
    _finish(ax, axis_title(rows), "test accuracy % (mean over seeds)")
    return figure


def _band(ax, curves: pd.DataFrame, column: str, name: str, scale: float = 1.0):
    stats = curves.dropna(subset=[column]).groupby("epoch")[column].agg(["mean", "std"]).reset_index()  # eval_every: measured epochs
    ax.plot(stats["epoch"], scale * stats["mean"], label=name)
    ax.fill_between(stats["epoch"], scale * (stats["mean"] - stats["std"].fillna(0)),
                    scale * (stats["mean"] + stats["std"].fillna(0)), alpha=0.2)


def _learning_curves(done: pd.DataFrame, curves: pd.DataFrame):
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for model, trial_ids in _best_configurations(done).items():
        _band(ax, curves[curves["trial_id"].isin(trial_ids)], "val_acc", model, 100)
    _finish(ax, "epoch", "validation accuracy % (best configuration of each model)")
    return figure


def _entropy_and_information(done: pd.DataFrame, curves: pd.DataFrame):
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for model, trial_ids in _best_configurations(done).items():
        chosen = curves[curves["trial_id"].isin(trial_ids)]
        _band(left, chosen, "entropy_unlabelled", model)
        _band(right, chosen, "mi_unlabelled", model)
    left.set_title("entropy of q(y|x), unlabelled")
    right.set_title("mutual information I(y; x), unlabelled")
    for ax in (left, right):
        _finish(ax, "epoch")
    return figure


def squared_error(recon: pd.Series, sigma2: pd.Series, dataset: pd.Series) -> pd.Series:
    """The squared reconstruction error ||x - f||^2 behind a Gaussian `recon` part, comparable across sigma^2
    (recon itself is -log N(x | f, sigma^2 I), scaled by 1/sigma^2). recon sums the labelled and the
    unlabelled part's mean, each 0.5 ||x - f||^2 / sigma^2 + 0.5 d log(2 pi sigma^2)."""
    import numpy as np

    from ..data import DATASETS

    d = dataset.map(lambda name: float(np.prod(DATASETS[name].input_shape)))
    return 2 * sigma2 * (recon - d * np.log(2 * np.pi * sigma2))


def _sigma2(done: pd.DataFrame, curves: pd.DataFrame):
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    picked = best_by_validation(done[done["sigma2"].notna()], "sigma2", "model")  # one configuration per sigma2
    chosen = done[done["trial_id"].isin([t for ids in picked["trial_ids"] for t in ids])]
    final = curves.merge(chosen[["trial_id", "sigma2", "best_epoch"]], on="trial_id")
    final = final[final["epoch"] == final["best_epoch"]].merge(chosen[["trial_id", "dataset"]], on="trial_id")
    final["error"] = squared_error(final["recon"], final["sigma2"], final["dataset"])
    recon = final.groupby("sigma2")["error"].mean()
    accuracy = chosen.groupby("sigma2")["test_acc"].mean()
    ax.plot(recon.index, recon.values, "o-", color="tab:blue", label="squared reconstruction error")
    ax.set_xscale("log")
    ax.set_xlabel("sigma^2")
    ax.set_ylabel("squared reconstruction error per point", color="tab:blue")
    twin = ax.twinx()
    twin.plot(accuracy.index, 100 * accuracy.values, "s-", color="tab:red", label="accuracy")
    twin.set_ylabel("test accuracy %", color="tab:red")
    ax.grid(alpha=0.3)
    return figure


def _batch_ratio(done: pd.DataFrame, curves: pd.DataFrame):
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    ratios = done.assign(ratio=done["batch_labelled"].astype(str) + ":" + done["batch_unlabelled"].astype(str))
    for picked in best_by_validation(ratios, "ratio", "model").itertuples():  # one configuration per ratio and model
        _band(ax, curves[curves["trial_id"].isin(picked.trial_ids)], "val_acc", f"{picked.col_label} {picked.row_label}", 100)
    _finish(ax, "epoch", "validation accuracy % (labelled:unlabelled per batch)")
    return figure
