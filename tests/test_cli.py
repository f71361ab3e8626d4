import subprocess
import sys

from helpers import tiny_spec
from sweeper.cli import main


def test_validate_a_good_spec(write_spec, capsys):
    path = write_spec(tiny_spec())
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok: 3 configurations × 2 seeds of m2, baseline on digits, 2 epochs each\n"


def test_a_bad_spec_is_one_line_on_stderr_and_exit_2(write_spec):
    path = write_spec(tiny_spec(models=["m2", "m9"]))
    done = subprocess.run([sys.executable, "-m", "sweeper", "validate", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"sweeper: error: {path}: models: unknown model 'm9'; registered models: adgm, baseline, jurasinski, jurasinski_simplified, m1, m1m2, m2, m2_adversarial, optimized_elbo, ssgmm\n"


def test_usage_errors_are_one_line_too():
    done = subprocess.run([sys.executable, "-m", "sweeper", "report", "--format", "pdf", "x"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "invalid choice: 'pdf'" in done.stderr


def test_report_of_a_missing_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"sweeper: error: {tmp_path / 'none'}: no such results directory; give the --out directory of a sweep (default results/<name>)\n"


def test_models_lists_each_model_and_its_hyperparameters(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "m2: Kingma's M2" in out and "    alpha = 0.1 >= 0  weight of the labelled cross-entropy" in out
    assert out.index("baseline:") < out.index("m2:")


def test_overrides_change_the_spec_as_the_file_would(write_spec, capsys):
    path = write_spec(tiny_spec())
    assert main(["validate", str(path), "epochs=5", "--scale", "full", "search.alpha=[1, 10, 100]", "batch.labelled=10"]) == 0
    assert capsys.readouterr().out == f"{path} (with epochs, search.alpha, batch.labelled overridden): ok: 4 configurations × 2 seeds of m2, baseline on digits, 5 epochs each\n"
    from sweeper import spec

    loaded = spec.load(path, ["fixed.hidden=32", "data.preprocess=standardize"])
    assert loaded.fixed["hidden"] == 32 and loaded.fixed["latent"] == 4 and loaded.data.preprocess == "standardize"
    for argv, message in ((["epochs=0"], "epochs: must be >= 1, got 0"), (["bogus=1"], "bogus: unknown key; allowed keys: name"),
                          (["epochs.x=1"], "override epochs.x: epochs is not a mapping here; set it whole (epochs=...)"),
                          (["=3"], "override '=3': expected key=value"), (["seeds=[0"], "override seeds: the value '[0' is not valid YAML"),
                          (["epochs=5", "epochs=6"], "override epochs: given twice among the overrides; give it once")):
        assert main(["validate", str(path), *argv]) == 2
        assert message in capsys.readouterr().err


def test_version_and_every_help_has_an_example():
    done = subprocess.run([sys.executable, "-m", "sweeper", "--version"], capture_output=True, text=True)
    assert done.stdout.startswith("sweeper 0.1.0")
    for command in ("run", "resume", "report", "status", "validate", "estimate", "bench", "models"):
        done = subprocess.run([sys.executable, "-m", "sweeper", command, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and f"example: sweeper {command}" in " ".join(done.stdout.split()), command


def test_validate_says_which_trials_train_m1s_own_epochs_first_and_refuses_a_bad_one_in_one_line(write_spec, capsys):
    path = write_spec(tiny_spec(models=["m1m2", "m2"], search={}, fixed={"hidden": 16, "m1_epochs": 3}))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok: 2 configurations × 2 seeds of m1m2, m2 on digits, 2 epochs each (with M1's own first: m1m2 5)\n"
    bad = write_spec(tiny_spec(models=["m1m2"], search={}, fixed={"m1_epochs": 2.5}))
    done = subprocess.run([sys.executable, "-m", "sweeper", "validate", str(bad)], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (2, f"sweeper: error: {bad}: fixed.m1_epochs: expected an integer, got 2.5\n")
