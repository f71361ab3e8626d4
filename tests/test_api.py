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


# ------------------------------------------------------------------ what a notebook may pass by mistake


def _results_dir(tmp_path):
    import yaml

    from helpers import HYPER, trial_row
    from sweeper import results

    out = tmp_path / "done"
    results.write_configuration(out, "c", [], [trial_row("c", "m2", s, alpha=1.0) for s in range(2)], HYPER)
    (out / "spec.yaml").write_text(yaml.safe_dump(tiny_spec()))
    return out


def test_no_secret_reaches_an_error_raised_to_python():
    for location in ("s3://AKIA:s3cr3tPW@bucket/x?endpoint_override=127.0.0.1:9&scheme=http",
                     "gs://bucket/x?token=s3cr3tPW"):
        with pytest.raises(sweeper.SweeperError) as refused:
            sweeper.open(location)
        assert "s3cr3tPW" not in str(refused.value) and "***" in str(refused.value), str(refused.value)


def test_a_results_location_given_as_a_uri_keeps_its_slashes(tmp_path):
    out = _results_dir(tmp_path)
    opened = sweeper.open(f"file://{out}")
    assert opened.path == f"file://{out}" and len(opened.trials()) == 2


def _holding_itself() -> dict:
    spec = tiny_spec()
    spec["fixed"] = spec
    return spec


@pytest.mark.parametrize("call, said", [
    (lambda p: sweeper.run(p, ["epochs=20"]), "expected key=value as text, got ['epochs=20']; give each override as its own argument"),
    (lambda p: sweeper.run(None), "spec: expected a path or URI as text, got None"),
    (lambda p: sweeper.run(b"q.yaml"), "spec: expected a path or URI as text, got b'q.yaml'"),
    (lambda p: sweeper.run(p, out=5), "out: expected a path or URI as text, got 5"),
    (lambda p: sweeper.run(p, out=""), "out: expected a path or URI as text, got ''"),
    (lambda p: sweeper.run(p, address=5), "address: expected text or None, got 5"),
    (lambda p: sweeper.run(p, study="j.journal", driver=5), "driver: expected text or None, got 5"),
    (lambda p: sweeper.open(None), "results_dir: expected a path or URI as text, got None"),
    (lambda p: sweeper.run(p, progress="no"), "progress: expected True or False, got 'no'"),
    (lambda p: sweeper.run(_holding_itself()), "spec: nested more than 32 deep"),
])
def test_wrong_types_from_python_are_one_clear_error(write_spec, tmp_path, monkeypatch, call, said):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sweeper.SweeperError) as refused:
        call(write_spec(tiny_spec()))
    assert said in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing made: no results/, no .lock


@pytest.mark.parametrize("options, said", [
    (dict(layout="nope"), "layout 'nope': choose one of generic"),
    (dict(at="x"), "at 'x': choose best"),
    (dict(rows=5), "rows: expected text or None, got 5"),
    (dict(ci="yes"), "ci: expected True or False, got 'yes'"),
    (dict(compare=None), "compare: expected True or False, got None"),
])
def test_a_tables_options_are_checked(tmp_path, options, said):
    with pytest.raises(sweeper.SweeperError) as refused:
        sweeper.open(_results_dir(tmp_path)).table(**options)
    assert said in str(refused.value)


def test_numpy_numbers_in_a_spec_mapping_are_numbers(tmp_path):
    import numpy as np

    from sweeper import api

    plain = api._plain(tiny_spec(epochs=np.int64(3), fixed={"lr": np.float64(0.01), "hidden": np.int32(4)}))
    assert plain["epochs"] == 3 and type(plain["epochs"]) is int and type(plain["fixed"]["lr"]) is float
    assert api._spec(tiny_spec(epochs=np.int64(3)), []).epochs == 3


@pytest.mark.parametrize("device, said", [("gpu", "device 'gpu': give a torch device this machine has"), (5, "device 5: give a torch device"),
                                          ("meta", "device 'meta': give a torch device"), ("cuda:99", "device 'cuda:99': give a torch device")])
def test_load_checks_its_device_and_its_folder(tmp_path, device, said):
    out = _results_dir(tmp_path)
    with pytest.raises(sweeper.SweeperError, match=said):
        sweeper.load(out, "c-seed0", device=device)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(sweeper.SweeperError, match="not a results directory"):
        sweeper.load(tmp_path / "a-file", "c-seed0")


def test_a_refusal_after_the_results_directory_is_taken_leaves_nothing_behind(write_spec, tmp_path, monkeypatch):
    spec = write_spec(tiny_spec())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sweeper.SweeperError, match="no directory"):  # the study's folder is missing
        sweeper.run(spec, study="no-such-folder/j.journal")
    assert not (tmp_path / "results").exists()  # neither results/<name> nor the results/ made for it
    (tmp_path / "empty").mkdir()
    with pytest.raises(sweeper.SweeperError, match="no directory"):
        sweeper.run(spec, study="no-such-folder/j.journal", out=tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []  # the user's folder as it was: no .lock


def test_a_driver_refused_by_the_lock_leaves_the_holders_directory_and_lock_as_they_are(tmp_path):
    import fcntl

    from sweeper import results

    out = tmp_path / "results" / "x"
    out.mkdir(parents=True)
    holder = open(out / results.LOCK_FILE, "a+")  # another driver, started first, still before its first row
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(sweeper.SweeperError, match="another sweeper driver"):
            with results.one_driver(out, "run"):
                pass
        assert (out / results.LOCK_FILE).exists() and out.is_dir()
    finally:
        holder.close()


def test_a_lock_file_left_by_an_earlier_driver_stays(tmp_path):
    from sweeper import results

    out = tmp_path / "x"
    out.mkdir()
    (out / results.LOCK_FILE).write_text("pid 1 on elsewhere\n")
    with pytest.raises(RuntimeError):
        with results.one_driver(out, "run"):
            raise RuntimeError("refused after the lock")
    assert (out / results.LOCK_FILE).exists()


def test_an_error_from_python_keeps_its_type_and_its_key(tmp_path):
    with pytest.raises(sweeper.SweeperError) as refused:
        sweeper.run(tiny_spec(epochs=0), out=tmp_path / "r")
    assert type(refused.value).__name__ == "SpecError" and refused.value.key == "epochs" and refused.value.source == "<spec mapping>"


def test_a_masked_error_holds_no_link_to_the_unmasked_one():
    with pytest.raises(sweeper.SweeperError) as refused:
        sweeper.open("s3://AKIA:s3cr3tPW@bucket/x?endpoint_override=127.0.0.1:9&scheme=http")
    chain, seen = refused.value, []
    while chain is not None:
        seen.append(str(chain))
        chain = chain.__cause__ or chain.__context__
    assert not any("s3cr3tPW" in text for text in seen)


def test_load_takes_a_torch_device_and_a_grid_may_be_a_numpy_array(tmp_path):
    import numpy as np
    import torch

    from sweeper import api

    with pytest.raises(sweeper.SweeperError, match="no kept model for trial c-seed0"):  # past the device check
        sweeper.load(_results_dir(tmp_path), "c-seed0", device=torch.device("cpu"))
    grid = api._plain(tiny_spec(search={"alpha": np.logspace(-1, 1, 3)}, seeds=np.arange(2)))
    assert grid["search"]["alpha"] == pytest.approx([0.1, 1.0, 10.0]) and grid["seeds"] == [0, 1]


def test_a_sweeps_repr_masks_its_location(tmp_path):
    opened = sweeper.open(_results_dir(tmp_path))
    opened.path = "s3://AKIA:s3cr3tPW@bucket/x"
    assert "s3cr3tPW" not in repr(opened) and "***" in repr(opened)
