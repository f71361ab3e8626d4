"""The rows a configuration writes, without Ray: statuses for completed, diverged and failed seeds."""
import math

import torch

from helpers import tiny_spec
from sweeper import results, space
from sweeper.data import load
from sweeper.spec import parse
from sweeper.packing import plan_of
from sweeper.train import Training
from sweeper.trainable import epoch_and_trial_rows


POINT = {"model": "m2", "alpha": 5.0}


def trial_and_hyper(epochs=2):
    spec = parse(tiny_spec(epochs=epochs))
    chosen = space.configuration(spec, POINT)
    return spec, Training(plan_of(spec, chosen), load("digits")), chosen


def test_a_diverged_seed_and_a_completed_seed_land_as_such(tmp_path):
    spec, trial, hyper = trial_and_hyper()
    with torch.no_grad():
        for p in trial.parameters_of(1):
            p.fill_(float("nan"))
    for _ in trial.epochs():
        pass
    epochs, trials = epoch_and_trial_rows("c1", trial, spec, POINT)
    results.write_configuration(tmp_path, "c1", epochs, trials, spec.hyperparameter_columns())
    written = results.read(tmp_path).sort_values("seed")
    assert written["trial_id"].tolist() == ["c1-seed0", "c1-seed1"]
    assert written["status"].tolist() == ["completed", "diverged"]
    assert written["alpha"].tolist() == [5.0, 5.0] and written["hidden"].tolist() == [16.0, 16.0]
    assert written["epochs"].tolist() == [2, 1] and math.isnan(written["test_acc"].iloc[1])
    assert len(results.read(tmp_path, "epochs")) == 3
    assert results.configurations(tmp_path) == {"c1": ('{"alpha": 5.0, "model": "m2"}', True)}


def test_an_error_marks_the_running_seeds_failed_with_the_message():
    spec, trial, hyper = trial_and_hyper(epochs=3)
    next(trial.epochs())
    _, trials = epoch_and_trial_rows("c2", trial, spec, POINT, error="RuntimeError: out of memory")
    assert [(t["status"], t["error"], t["epochs"]) for t in trials] == [("failed", "RuntimeError: out of memory", 1)] * 2


def test_a_hyperparameter_the_configuration_ignores_is_null_in_its_rows():
    spec = parse(tiny_spec(models=["m2"], search={"sigma2": [0.1], "likelihood": ["bernoulli", "gaussian"]}))
    for point, sigma2 in (({"model": "m2", "likelihood": "bernoulli"}, None), ({"model": "m2", "likelihood": "gaussian", "sigma2": 0.1}, 0.1)):
        trial = Training(plan_of(spec, space.configuration(spec, point)), load("digits"))
        _, trials = epoch_and_trial_rows("c", trial, spec, point)
        assert [t["sigma2"] for t in trials] == [sigma2, sigma2] and trials[0]["likelihood"] == point["likelihood"]


def test_a_seed_stopped_by_patience_says_so_with_its_best_epoch_and_the_precision_it_ran_in():
    spec = parse(tiny_spec(epochs=8, patience=1, step={"bf16": True}))
    training = Training(plan_of(spec, space.configuration(spec, POINT)), load("digits"))
    for _ in training.epochs():
        pass
    _, trials = epoch_and_trial_rows("c3", training, spec, POINT)
    assert [t["status"] for t in trials] == ["stopped", "stopped"]  # the same seeds give the same numbers, every run
    for t, m in zip(trials, training.members):
        assert (t["precision"], t["stopped_by"], t["best_epoch"]) == ("bfloat16", "patience", m.best_epoch)
        assert t["epochs"] == t["best_epoch"] + 1 < 8  # one epoch without improvement, then no more


def test_the_rows_record_the_precision_that_ran_so_em_is_float32_where_bfloat16_is_native(monkeypatch):
    from sweeper import train

    monkeypatch.setattr(train, "native_bf16", lambda device: True)  # a CPU that multiplies bfloat16 natively
    spec = parse(tiny_spec(models=["ssgmm", "m2"], search={}, fixed={"hidden": 16, "latent": 4, "covariance": "diag"}, epochs=1))
    for point, ran in (({"model": "ssgmm"}, "float32"), ({"model": "m2"}, "bfloat16")):
        plan = plan_of(spec, space.configuration(spec, point))
        assert train.bfloat16(plan.bf16, plan.device)  # bf16: auto chose bfloat16 for either
        training = Training(plan, load("digits"))
        for _ in training.epochs():
            pass
        _, trials = epoch_and_trial_rows("c", training, spec, point)
        assert {t["precision"] for t in trials} == {ran}
