"""One training epoch of Kingma's NN column (the supervised baseline at 1:499 batches, 100 labels), with and without
the unlabelled batch its loss never reads.

    OMP_NUM_THREADS=1 python benchmarks/baseline_epoch.py --data-dir ../shared/data [--repeats 3]

Three seeds packed, as the NN column's run in docs/spec.md (`seeds=[0,1,2]`) trains them: the 100 steps of one epoch, timed after a
warm-up epoch, with no evaluation (eval_every past the epochs timed). "gathered" hands the model the unlabelled batch as the loop did before
Model.reads_unlabelled (its rows gathered and binarised each step); "skipped" is today's loop. Both give the
same numbers (tests/test_train.py). Prints one JSON line per variant, medians over --repeats epochs. Not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sweeper.data import DataOptions, load
from sweeper.models.baseline import Baseline
from sweeper.packing import Plan
from sweeper.train import Training


def epoch_seconds(data, repeats: int) -> float:
    """The median time of an epoch's training: measured at the last epoch only (eval_every), which is not timed."""
    plan = Plan(model="baseline", hyper={"hidden": 500, "lr": 3e-4}, label_count=100, seeds=(0, 1, 2), epochs=repeats + 2,
                batch_labelled=1, batch_unlabelled=499, dynamic_binarize=True, eval_every=repeats + 2)
    times, start = [], time.perf_counter()
    for _ in Training(plan, data).epochs():
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return statistics.median(times[1:-1])  # the first warms up; the last is evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="where mnist's files are")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load("mnist", args.data_dir, DataOptions(preprocess="dynamic_binarize"))
    for variant, reads in (("gathered", True), ("skipped", False)):
        Baseline.reads_unlabelled = reads  # this process only: the loop asks the model through reads_unlabelled_at
        seconds = epoch_seconds(data, args.repeats)
        print(json.dumps({"variant": variant, "steps": 100, "members": 3, "threads": torch.get_num_threads(),
                          "epoch_s": round(seconds, 3)}))


if __name__ == "__main__":
    main()
