import pandas as pd
import pyarrow.dataset as ds
import pytest

from sweeper import results
from sweeper.errors import SweeperError

HYPER = {"alpha": "number", "hidden": "number", "lr": "number"}


def trial_row(config_id, model, seed, status="completed", test_acc=0.9, **hyper):
    return {"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": model, "seed": seed,
            "dataset": "digits", "label_count": 100, "hidden": 16.0, "lr": 1e-3, **hyper,
            "status": status, "best_val_acc": test_acc, "test_acc": test_acc, "best_epoch": 2, "epochs": 2, "wall_s": 1.0}


def epoch_rows(config_id, model, seed, epochs=2, loss=1.0):
    return [{"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": model, "seed": seed,
             "epoch": e, "loss": loss, "ce": 0.5, "val_acc": 0.8, "test_acc": 0.8, "wall_s": 0.1} for e in range(1, epochs + 1)]


def test_rows_are_read_back_with_the_same_columns_for_every_model(tmp_path):
    results.write_configuration(tmp_path, "b", epoch_rows("b", "baseline", 0), [trial_row("b", "baseline", 0)], HYPER)
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=10.0)], HYPER)
    trials = results.read(tmp_path).sort_values("model")
    assert trials["alpha"].isna().tolist() == [True, False] and trials["alpha"].iloc[1] == 10.0
    assert trials["status"].tolist() == ["completed", "completed"]
    epochs = pd.read_parquet(tmp_path / "epochs")
    assert len(epochs) == 4 and epochs["recon"].isna().all()
    # the layout needs nothing of sweeper to read
    assert ds.dataset(tmp_path / "trials").to_table().num_rows == 2


def test_duckdb_reads_the_results_without_the_project(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    count = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/epochs/*.parquet')").fetchall()[0][0]
    assert count == 2


def test_rewriting_a_configuration_replaces_its_rows(tmp_path):
    for epochs in (1, 2, 3):  # a trial writes after every epoch; a retry writes again
        results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0, epochs), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    assert len(results.read(tmp_path)) == 1
    assert results.read(tmp_path, "epochs")["epoch"].tolist() == [1, 2, 3]


def test_a_failed_write_leaves_the_previous_file_and_no_partial_one(tmp_path):
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    bad = [trial_row("m", "m2", 0, alpha="not a number")]
    with pytest.raises(Exception):
        results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0, epochs=5), bad, HYPER)
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["m.parquet"]
    assert results.read(tmp_path)["alpha"].tolist() == [1.0]


def test_a_diverged_trial_keeps_its_nan_epoch(tmp_path):
    rows = epoch_rows("m", "m2", 0, epochs=1, loss=float("nan"))
    results.write_configuration(tmp_path, "m", rows, [trial_row("m", "m2", 0, status="diverged", alpha=1.0)], HYPER)
    assert results.read(tmp_path)["status"].tolist() == ["diverged"]
    assert results.read(tmp_path, "epochs")["loss"].isna().tolist() == [True]


def test_unknown_columns_and_statuses_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown status"):
        results.write_configuration(tmp_path, "m", [], [trial_row("m", "m2", 0, status="done", alpha=1.0)], HYPER)
    with pytest.raises(ValueError, match=r"columns not in the results schema: \['beta'\]"):
        results.write_configuration(tmp_path, "m", [], [trial_row("m", "m2", 0, beta=1.0)], HYPER)


def test_reading_a_missing_or_empty_directory_says_what_to_do(tmp_path):
    with pytest.raises(SweeperError, match=r"no such results directory; give the --out directory"):
        results.read(tmp_path / "nowhere")
    with pytest.raises(SweeperError, match=r"no trials results yet; run a sweep into it"):
        results.read(tmp_path)


def test_each_configuration_says_its_point_and_whether_it_finished(tmp_path):
    results.write_configuration(tmp_path, "killed", epoch_rows("killed", "m2", 0),
                                [trial_row("killed", "m2", 0, status="running", alpha=1.0, point='{"alpha": 1.0}'),
                                 trial_row("killed", "m2", 1, alpha=1.0, point='{"alpha": 1.0}')], HYPER)
    results.write_configuration(tmp_path, "done", epoch_rows("done", "m2", 0), [trial_row("done", "m2", 0, alpha=2.0, point='{"alpha": 2.0}')], HYPER)
    results.write_configuration(tmp_path, "failed", epoch_rows("failed", "m2", 0), [trial_row("failed", "m2", 0, status="failed", alpha=3.0)], HYPER)
    assert results.configurations(tmp_path) == {"killed": ('{"alpha": 1.0}', False), "done": ('{"alpha": 2.0}', True), "failed": (None, True)}
    results.remove_configuration(tmp_path, "killed")
    assert sorted(results.read(tmp_path, "epochs")["config_id"].unique()) == ["done", "failed"]
    assert results.configurations(tmp_path / "nowhere") == {}


def test_reading_some_columns_still_counts_every_trial(tmp_path):
    """Two seeds with the same numbers are two rows, even when the columns asked for cannot tell them apart."""
    rows = [trial_row("c", "m2", s, alpha=1.0) for s in range(2)]
    epochs = epoch_rows("c", "m2", 0) + epoch_rows("c", "m2", 1)
    results.write_configuration(tmp_path, "c", epochs, rows, HYPER)
    assert len(results.read(tmp_path, "epochs", columns=["config_id", "epoch", "val_acc"])) == 4
    assert list(results.read(tmp_path, "epochs", columns=["config_id", "epoch"]).columns) == ["config_id", "epoch"]
    assert len(results.read([tmp_path, tmp_path], "trials", columns=["test_acc"])) == 2
