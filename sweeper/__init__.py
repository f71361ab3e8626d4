"""sweeper: hyperparameter sweeps for semi-supervised deep generative models.

The public Python API, each name doing what its command does (same checks, same messages, same results):

    sweep = sweeper.run("search_spaces/quickstart.yaml", "epochs=20", out="results/quick")
    sweep.table(layout="jurasinski"); sweep.trials(); sweep.epochs(); sweep.figures()
    sweep = sweeper.open("results/quick")
    model = sweeper.load("results/quick", trial_id)

Everything else in the package is private: its names may change without notice.
Flow: spec → space → sweep → trainable → train (models, data) → results → report.
"""
from .api import Sweep, Table, load, open, run  # noqa: A004 - sweeper.open opens a results directory
from .errors import SweeperError

__version__ = "0.1.0"
__all__ = ["Sweep", "SweeperError", "Table", "load", "open", "run"]
