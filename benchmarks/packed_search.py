"""A sampled search packed against the same search one configuration a Ray trial, over several sampler seeds.

    python benchmarks/packed_search.py [--spec search_spaces/alpha-tpe.yaml] [--sampler-seeds 0 1 2]
        [--figure docs/figures/packed-search.png] [--keep DIR] [KEY=VALUE ...]
    python benchmarks/packed_search.py --redraw LOG --figure PNG [--title TEXT]

For each sampler seed, `sweeper run SPEC sampler_seed=S` runs twice, as one fresh process each, timed whole:
with the spec's `pack` (auto: a pack per slot) and with `--pack 1`, the packed run first; the pairs follow one
another, so a machine that slows down over the hour slows both. KEY=VALUE changes the spec for both
(`sampler=random trials=64`).
Each run prints one JSON line:
- wall_s: the whole process (imports, Ray's start and stop, the sweep);
- configuration_epochs: the epochs each configuration trained (the most of its seeds), summed: the work a
  scheduler left;
- completed / stopped: configurations whose study trial is COMPLETE (trained to the end) / PRUNED (stopped);
- best: the best value of the study's COMPLETE trials (Optuna's best_value: the mean over seeds of the best
  validation accuracy of a configuration trained to its end), and the test accuracy of that configuration;
- best_by_count: best found among the first n configurations asked (study trial numbers 0..n-1), for n = 1..N.

Then a table of mean ± std over sampler seeds, and with --figure best_by_count for both, mean over seeds,
against the number of configurations asked (completed configurations only: a stopped one has no final value).
--redraw reads the JSON lines of an earlier run's output and draws them again. A benchmark, not a test: it
trains for minutes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

REPOSITORY = Path(__file__).resolve().parent.parent


def one_run(spec: str, seed: int, packed: bool, overrides: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "sweeper", "run", spec, "--out", str(out), "--quiet", f"sampler_seed={seed}", *overrides]
    command += [] if packed else ["--pack", "1"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPOSITORY, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    trials = pd.read_parquet(out / "trials")
    per_configuration = trials.groupby("config_id")["epochs"].max()
    found = study_trials(out)
    complete = [t for t in found if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value, default=None)
    running, by_count = float("nan"), []
    for t in sorted(found, key=lambda t: t.number):
        if t.state == TrialState.COMPLETE:
            running = t.value if running != running else max(running, t.value)
        by_count.append(None if running != running else running)  # None: no configuration completed yet
    return {"packed": packed, "sampler_seed": seed, "wall_s": round(wall, 1),
            "tune_trials": trials["config_id"].str.rsplit("-", n=1).str[0].nunique(),
            "configurations": len(per_configuration), "configuration_epochs": int(per_configuration.sum()),
            "completed": len(complete), "stopped": sum(t.state == TrialState.PRUNED for t in found),
            "best": best.value if best else None, "best_test_acc": best.user_attrs.get("test_acc") if best else None,
            "best_by_count": by_count}


def study_trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    if len(summary.directions) > 1:
        raise SystemExit("packed_search.py compares single-objective searches (objectives: [val_acc])")
    return optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)


def mean_std(values: list, digits: int) -> str:
    values = [v for v in values if v is not None]  # a run where no configuration completed has no best
    if not values:
        return "-"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"


def draw(runs: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for packed, colour in ((True, "tab:blue"), (False, "tab:orange")):
        chosen = [r["best_by_count"] for r in runs if r["packed"] == packed]
        for curve in chosen:
            ax.plot(range(1, len(curve) + 1), [float("nan") if v is None else v for v in curve], color=colour, alpha=0.25, linewidth=0.8)
        longest = max(map(len, chosen))
        found = [[c[i] for c in chosen if i < len(c) and c[i] is not None] for i in range(longest)]
        mean = [statistics.fmean(f) if len(f) == len(chosen) else float("nan") for f in found]  # drawn once every seed has one
        ax.plot(range(1, longest + 1), mean, color=colour, linewidth=2,
                label=f"{'packed (pack as the spec says)' if packed else 'one a trial (--pack 1)'}, mean of {len(chosen)} sampler seeds")
    ax.set_xlabel("configurations asked")
    ax.set_ylabel("best validation accuracy found")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="search_spaces/alpha-tpe.yaml")
    parser.add_argument("--sampler-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--figure", help="PNG of the best found against the configurations asked")
    parser.add_argument("--keep", help="keep each run's results under this directory")
    parser.add_argument("--redraw", metavar="LOG", help="draw the JSON lines an earlier run printed; train nothing")
    parser.add_argument("--title", help="the figure's title (default: the spec and its overrides)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    title = args.title or f"{Path(args.spec).name} {' '.join(args.overrides)}".strip()
    if args.redraw:
        lines = Path(args.redraw).read_text().splitlines()
        draw([json.loads(line) for line in lines if line.startswith("{")], args.figure, title)
        return
    where = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="packed-search-"))  # kept either way
    args.spec = str(Path(args.spec).resolve())
    runs = []
    for seed in args.sampler_seeds:
        for packed in (True, False):
            run = one_run(args.spec, seed, packed, args.overrides, where / f"{'packed' if packed else 'single'}-{seed}")
            print(json.dumps(run), flush=True)
            runs.append(run)
    print(f"\n{args.spec} {' '.join(args.overrides)}, sampler seeds {args.sampler_seeds}: mean ± std")
    print("| | wall s | configuration-epochs | completed | best val | its test |")
    print("|---|---|---|---|---|---|")
    for packed in (True, False):
        chosen = [r for r in runs if r["packed"] == packed]
        cells = [mean_std([r[k] for r in chosen], d) for k, d in (("wall_s", 1), ("configuration_epochs", 0), ("completed", 1),
                                                                  ("best", 4), ("best_test_acc", 4))]
        print(f"| {'packed' if packed else 'pack: 1'} | " + " | ".join(cells) + " |")
    ratios = [s["wall_s"] / p["wall_s"] for p, s in zip(runs[0::2], runs[1::2])]
    print(f"pack: 1 wall over packed wall, seed by seed: {', '.join(f'{r:.2f}' for r in ratios)}")
    if args.figure:
        draw(runs, args.figure, title)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
