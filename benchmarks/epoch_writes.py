"""Bytes written to a results directory by one configuration's per-epoch writes, now and at a git revision.

    python benchmarks/epoch_writes.py --epochs 3000 --seeds 5 --before REV

One configuration trains `--epochs` epochs with `--seeds` seeds side by side and writes its rows after
every epoch, as the trainable does (rows shaped as trainable.rows() makes them: M2's loss parts, an
M2-like set of hyperparameters). Bytes written are counted from the files themselves: after each write,
the size of every file that is new or was replaced (every write puts a new file into place), for the
epochs/ and trials/ files apart. With `--before REV`, the same is measured for sweeper/results.py as it
was at REV (read with `git show`, run from a temporary module outside the package). Prints one line per
run. Not a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parent.parent
HYPERPARAMETERS = {"alpha": "number", "hidden": "number", "latent": "number", "lr": "number", "kl_warmup": "number",
                   "alpha_scale": "number", "sigma2": "number", "likelihood": "text", "weighting": "text"}
CONFIG_ID = "3f2a9_00007"


def epoch_row(seed: int, epoch: int, random: np.random.Generator) -> dict:
    loss, recon, kl, ce, val_acc, test_acc, entropy, mi, wall_s = random.random(9)
    return {"trial_id": f"{CONFIG_ID}-seed{seed}", "config_id": CONFIG_ID, "model": "m2", "seed": seed, "epoch": epoch,
            "loss": 100 * loss, "recon": 90 * recon, "kl": 10 * kl, "ce": ce, "val_acc": val_acc, "test_acc": test_acc,
            "entropy_unlabelled": entropy, "mi_unlabelled": mi, "wall_s": 20 * wall_s}


def trial_row(seed: int, epoch: int, epochs: int) -> dict:
    return {"trial_id": f"{CONFIG_ID}-seed{seed}", "config_id": CONFIG_ID, "model": "m2", "seed": seed,
            "dataset": "mnist", "label_count": 100, "batch_labelled": 100, "batch_unlabelled": 100,
            "point": '{"alpha": 0.1, "model": "m2"}', "alpha": 0.1, "hidden": 500.0, "latent": 50.0, "lr": 3e-4,
            "kl_warmup": 0.0, "alpha_scale": 1.0, "sigma2": None, "likelihood": "bernoulli", "weighting": "sum",
            "status": "completed" if epoch == epochs else "running", "error": None, "best_val_acc": 0.9,
            "test_acc": 0.9, "best_epoch": epoch, "epochs": epoch, "wall_s": 20.0 * epoch, "restarts": 0}


def files(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every visible file under `directory`: (inode, mtime, size); a replaced file has a new inode."""
    found = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            found[str(path)] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def written_since(before: dict, after: dict, table: str) -> int:
    """Bytes of the files of `table` ("epochs", "trials") put into place since `before`."""
    return sum(size for path, (inode, mtime, size) in after.items()
               if f"/{table}/" in path and before.get(path, (None, None))[:2] != (inode, mtime))


def measure(write, epochs: int, seeds: int, out: Path) -> dict:
    """Train nothing, write as the trainable does: after each epoch, every row so far (seed by seed, as
    trainable.rows() lists them) and that epoch's number."""
    random = np.random.default_rng(0)
    history: list[list[dict]] = [[] for _ in range(seeds)]
    per_write, trials_bytes, most_files, seen = [], 0, 0, {}
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for seed in range(seeds):
            history[seed].append(epoch_row(seed, epoch, random))
        rows = [row for seed_rows in history for row in seed_rows]
        write(out, CONFIG_ID, rows, [trial_row(seed, epoch, epochs) for seed in range(seeds)], HYPERPARAMETERS, epoch)
        now = files(out)
        per_write.append(written_since(seen, now, "epochs"))
        trials_bytes += written_since(seen, now, "trials")
        most_files, seen = max(most_files, len(now)), now
    def at(e):
        return per_write[e - 1] if e <= epochs else None

    return {"epochs_bytes": sum(per_write), "trials_bytes": trials_bytes,
            "epochs_file_at_end": sum(size for p, (_, _, size) in seen.items() if "/epochs/" in p),
            "epochs_write_at_2": at(2), "at_199": at(199), "at_200": at(200), "at_last": per_write[-1],
            "most_files": most_files, "files_at_end": len(seen), "seconds": round(time.perf_counter() - start, 1)}


def results_at(revision: str):
    """sweeper/results.py as it was at `revision`, as a module of its own (the package's modules stay as they are)."""
    source = subprocess.run(["git", "show", f"{revision}:sweeper/results.py"], cwd=REPOSITORY, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "results_before.py"
    path.write_text(source.replace("from .errors import", "from sweeper.errors import"))
    spec = importlib.util.spec_from_file_location("results_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def takes_epoch(module):
    """write_configuration as the trainable calls it: with the epoch where the function takes one."""
    import inspect

    if "epoch" in inspect.signature(module.write_configuration).parameters:
        return lambda out, c, e, t, h, epoch: module.write_configuration(out, c, e, t, h, epoch=epoch)
    return lambda out, c, e, t, h, epoch: module.write_configuration(out, c, e, t, h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--before", metavar="REV", help="also measure sweeper/results.py at this git revision")
    args = parser.parse_args()
    sys.path.insert(0, str(REPOSITORY))
    from sweeper import results

    runs = [("now", results)] + ([(f"at {args.before}", results_at(args.before))] if args.before else [])
    for name, module in runs:
        with tempfile.TemporaryDirectory() as out:
            figures = measure(takes_epoch(module), args.epochs, args.seeds, Path(out))
        print(f"{name}: {args.epochs} epochs x {args.seeds} seeds: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
