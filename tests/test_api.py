"""The public Python API: each name does what its command does, with the same messages and the same results."""
import matplotlib.figure
import pandas as pd
import pytest

import sweeper
from helpers import tiny_spec
from sweeper.cli import main


def test_the_package_declares_a_small_public_api():
    assert sorted(sweeper.__all__) == ["Sweep", "SweeperError", "Table", "load", "open", "run"]
    assert all(getattr(sweeper, name).__doc__ for name in sweeper.__all__)


@pytest.mark.ray
def test_run_returns_the_sweep_as_dataframes_a_table_and_figures(tmp_path, capsys):
    out = tmp_path / "r"
    sweep = sweeper.run(tiny_spec(seeds=[0]), "epochs=3", out=out)
    bar = capsys.readouterr().err
    assert "epoch" in bar and "9/9" in bar  # the progress bar (tqdm): member-epochs trained of all
    assert (out / "spec.yaml").is_file() and (out / "optuna.journal").is_file()  # the directory `sweeper run` leaves
    assert sweep.outcome.configurations == 3 and sweep.outcome.errored == 0
    trials, epochs = sweep.trials(), sweep.epochs()
    assert isinstance(trials, pd.DataFrame) and len(trials) == 3 and set(trials["status"]) == {"completed"}
    assert len(epochs) == 3 * 3 and sorted(epochs["epoch"].unique()) == [1, 2, 3]
    table = sweep.table()
    main(["report", str(out)])
    assert str(table) == capsys.readouterr().out  # the command's table
    assert table._repr_html_().startswith("<table class='results'>") and "<h3>tiny</h3>" in sweep._repr_html_()
    figures = sweep.figures()
    assert "learning_curves" in figures and all(isinstance(f, matplotlib.figure.Figure) for f in figures.values())
    again = sweeper.open(out)
    assert again.trials().equals(trials) and again.status() == sweep.status()
    model = sweeper.load(out, trials["trial_id"].iloc[0])
    assert model.about["trial_id"] == trials["trial_id"].iloc[0]


@pytest.mark.parametrize("spec, argv_tail", [
    (tiny_spec(epochs=0), []),
    (tiny_spec(), ["fixed.hidden=2147483648"]),
    (tiny_spec(), ["nokey=1"]),
])
def test_run_refuses_what_the_command_refuses_with_the_same_message(write_spec, tmp_path, capsys, spec, argv_tail):
    path = write_spec(spec)
    assert main(["run", str(path), *argv_tail, "--out", str(tmp_path / "a")]) == 2
    line = capsys.readouterr().err.removeprefix("sweeper: error: ").rstrip("\n")
    with pytest.raises(sweeper.SweeperError) as refused:
        sweeper.run(path, *argv_tail, out=tmp_path / "b")
    assert str(refused.value) == line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_spec_mapping_is_checked_as_a_file_is(tmp_path):
    with pytest.raises(sweeper.SweeperError, match=r"^<spec mapping>: epochs: must be >= 1, got 0$"):
        sweeper.run(tiny_spec(epochs=0), out=tmp_path / "r")


def test_open_says_what_status_says_of_a_folder_that_is_no_sweep(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    line = capsys.readouterr().err.removeprefix("sweeper: error: ").rstrip("\n")
    with pytest.raises(sweeper.SweeperError) as refused:
        sweeper.open(tmp_path)
    assert str(refused.value) == line
