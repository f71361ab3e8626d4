"""Early stopping inside a pack (stopping.py): the rule on known curves, a real pack on digits, and the pruned
trial a stopped member becomes in the study, with its curve. No Ray."""
import itertools
import math
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

from helpers import tiny_spec
from sweeper import results, space, study, sweep
from sweeper.data import load
from sweeper.packing import Plan
from sweeper.spec import parse, with_pack
from sweeper.stopping import PackStopping, Rule, curves, recorded, values_at
from sweeper.train import Training
from sweeper.trainable import epoch_and_trial_rows, stop_early

ASHA = Rule("asha", grace_period=1, reduction_factor=3, max_t=30)


def judged(rule: Rule, value: float, others: list[float], epoch: int = 1) -> bool:
    """The rule on one epoch's values alone: every curve a single point."""
    return rule.stops({epoch: value}, [{epoch: o} for o in others], epoch)
MEDIAN = Rule("median", grace_period=2, reduction_factor=3, max_t=10)


def test_asha_judges_at_its_rungs_grace_period_times_eta_to_the_k_below_the_last_epoch():
    assert ASHA.rungs() == [1, 3, 9, 27]
    assert Rule("asha", 2, 2, 16).rungs() == [2, 4, 8]  # 16 is the last epoch: every configuration has ended there
    assert [e for e in range(1, 31) if ASHA.judges(e)] == [1, 3, 9, 27]
    assert [e for e in range(1, 11) if MEDIAN.judges(e)] == list(range(2, 10))


def test_asha_keeps_the_top_third_of_the_values_recorded_at_the_rung():
    others = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # the 2/3 quantile (linear, as numpy and Ray): 0.4333...
    assert [judged(ASHA, v, others) for v in (0.43, 0.44, 0.9)] == [True, False, False]
    assert not judged(ASHA, 0.0, [])  # the first at a rung has nothing to be compared with
    assert not judged(ASHA, 0.1, [math.nan])  # a diverged configuration's value is no value
    assert judged(Rule("asha", 1, 2, 10), 0.24, [0.1, 0.2, 0.3, 0.4]) and not judged(Rule("asha", 1, 2, 10), 0.25, [0.1, 0.2, 0.3, 0.4])


def test_median_stopping_needs_two_others_and_stops_below_their_median():
    at_grace = 2  # MEDIAN's grace_period: the first epoch it judges, and where the others' running means start
    assert not judged(MEDIAN, 0.0, [0.9], at_grace)
    assert judged(MEDIAN, 0.49, [0.4, 0.5, 0.6], at_grace) and not judged(MEDIAN, 0.5, [0.4, 0.5, 0.6], at_grace)
    assert judged(MEDIAN, 0.44, [0.4, 0.5], at_grace) and not judged(MEDIAN, 0.45, [0.4, 0.5], at_grace)


# members' curves: configuration → val_acc at epochs 1..9
CURVES = {"a": [0.50, 0.60, 0.70, 0.72, 0.74, 0.75, 0.76, 0.77, 0.78], "b": [0.40, 0.45, 0.50, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57],
          "c": [0.30, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.38], "d": [0.20, 0.60, 0.80, 0.85, 0.86, 0.87, 0.88, 0.89, 0.90]}


def run(rule: Rule, pack: list[str], others: dict[str, list[float]]) -> dict[str, int]:
    """A pack's members on their known curves beside other configurations' recorded ones: member → epoch it stopped at."""
    stopping = PackStopping(rule, lambda epoch: {c: dict(enumerate(curve[:epoch], 1)) for c, curve in others.items() if len(curve) >= epoch})
    running, stopped = list(pack), {}
    for epoch in range(1, 10):
        for c in stopping.report(epoch, {c: CURVES[c][epoch - 1] for c in running}):
            stopped[c] = epoch
            running.remove(c)
    return stopped


def test_asha_in_a_pack_judges_every_member_on_its_own_curve_against_all_values_at_the_rung():
    # rung 1: a 0.5, b 0.4, c 0.3, d 0.2 and another pack's 0.45 (stopped there); each stops below the 2/3 quantile of the others
    stopped = run(ASHA, ["a", "b", "c", "d"], {"x": [0.45]})
    assert stopped == {"b": 1, "c": 1, "d": 1}  # d would have been the best by rung 3: ASHA judges at the rung only
    assert run(ASHA, ["a"], {}) == {}  # alone, nothing to compare with


def test_a_pack_mates_value_counts_as_another_packs_does_and_order_does_not_matter():
    together = run(ASHA, ["a", "b", "c", "d"], {})
    assert together == {"c": 1, "d": 1, "b": 3}
    assert run(ASHA, ["a", "b"], {"c": CURVES["c"][:1], "d": CURVES["d"][:1]}) == {"b": 3}  # c and d in another pack: the same for a and b
    stopping = PackStopping(ASHA, lambda epoch: {"x": {1: 0.45}})
    values = {"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.2}
    answers = {tuple(sorted(stopping.report(1, dict(order)))) for order in itertools.permutations(values.items())}
    assert answers == {("b", "c", "d")}


def test_median_stopping_in_a_pack_from_grace_period_on_as_rays_rule():
    # running means from grace_period (2) on, as Ray's: at epoch 2 they are each one's value there, a .60, b .45,
    # c .31, d .60: c's best .31 is below the median of (.60, .45, .60) and b's best .45 below that of (.60, .31, .60)
    # (over epochs 1..2, b's best would pass the others' means a .55, c .305, d .40, and go on to epoch 3)
    assert run(MEDIAN, ["a", "b", "c", "d"], {}) == {"c": 2, "b": 2}
    assert run(MEDIAN, ["a", "c"], {}) == {}  # one other value only: never judged


def test_median_stopping_compares_the_best_so_far_with_the_others_running_means():
    # Ray's MedianStoppingRule keeps a configuration whose best (.9) is above the others' running means (.6), though
    # its value at the epoch (.5) is below them
    assert not MEDIAN.stops({1: 0.9, 2: 0.5}, [{1: 0.6, 2: 0.6}, {1: 0.6, 2: 0.6}], 2)
    assert MEDIAN.stops({1: 0.5, 2: 0.55}, [{1: 0.6, 2: 0.6}, {1: 0.6, 2: 0.6}], 2)
    assert not MEDIAN.stops({1: 0.1, 2: 0.1}, [{1: 0.6, 2: 0.6}, {1: 0.6}], 2)  # one other has reached epoch 2: too few
    # the others' means start at grace_period (2), as Ray's _running_mean: .5, not (.9 + .5) / 2
    assert not MEDIAN.stops({1: 0.55, 2: 0.55}, [{1: 0.9, 2: 0.5}, {1: 0.9, 2: 0.5}], 2)


def test_rows_that_cannot_be_read_now_judge_nobody_rather_than_the_pack_against_itself():
    assert PackStopping(ASHA, lambda epoch: None).report(1, {"a": 0.9, "b": 0.5, "c": 0.4}) == []
    assert PackStopping(ASHA, lambda epoch: {}).report(1, {"a": 0.9, "b": 0.5, "c": 0.4}) == ["b", "c"]  # none yet: the pack's own


def test_an_unreadable_results_location_judges_nobody_and_says_so(tmp_path):
    (tmp_path / "epochs").mkdir()
    (tmp_path / "epochs" / "c.parquet").write_bytes(b"not parquet")
    with pytest.warns(UserWarning, match=r"epoch 3: the scheduler judges no configuration of this pack now: .*c.parquet"):
        assert recorded(tmp_path)(3) is None


def test_the_recorded_curves_are_read_from_the_results_location_through_the_epoch(tmp_path):
    assert recorded(tmp_path)(1) == {}  # nothing written yet: nothing recorded, and the pack is judged on its own
    rows = [{"trial_id": f"c-seed{seed}", "config_id": "c", "seed": seed, "epoch": epoch, "loss": 1.0, "val_acc": 0.1 * epoch + 0.01 * seed}
            for seed in (0, 1) for epoch in (1, 2, 3)]
    results.write_configuration(tmp_path, "c", rows, [], {})
    read = recorded(tmp_path)(2)
    assert list(read) == ["c"] and read["c"] == pytest.approx({1: 0.105, 2: 0.205})  # epoch 3 is past the epoch asked
    assert curves(rows, 1)["c"] == pytest.approx({1: 0.105})


def test_a_configurations_value_is_its_seeds_mean_without_the_diverged_ones():
    rows = [{"config_id": "a", "epoch": 1, "loss": 1.0, "val_acc": 0.4}, {"config_id": "a", "epoch": 1, "loss": 1.0, "val_acc": 0.6},
            {"config_id": "a", "epoch": 1, "loss": math.nan, "val_acc": 0.0}, {"config_id": "b", "epoch": 1, "loss": math.inf, "val_acc": 0.1},
            {"config_id": "a", "epoch": 2, "loss": 1.0, "val_acc": 0.9}]
    values = values_at(rows, 1)
    assert values["a"] == pytest.approx(0.5) and math.isnan(values["b"]) and set(values) == {"a", "b"}


# ------------------------------------------------------------------ a real pack on digits


def plan(lr, epochs=4):
    return Plan(model="baseline", hyper={"hidden": 16, "lr": lr}, label_count=50, seeds=(0,), epochs=epochs,
                batch_labelled=25, batch_unlabelled=200)


def test_a_real_pack_stops_its_members_that_do_not_learn_at_the_rung_and_the_others_train_on_as_alone():
    """Members with learning rate 1e-7 keep their initial accuracy (0.09): at rung 1 (grace 1, eta 2) they are below the
    median of the others' values (the learner's 0.33, the other's 0.09, another pack's 0.2), and leave the stack; the
    learning member, above the median of its others (0.09, 0.09, 0.2), trains on exactly as it does alone."""
    data, spec = load("digits"), parse(tiny_spec(models=["baseline"], seeds=[0], epochs=4, fixed={"hidden": 16},
                                                 search={"lr": [0.01, 1e-7]}))
    pack = Training([plan(0.01), plan(1e-7), plan(1e-7)], data)
    early, ids = PackStopping(Rule("asha", 1, 2, 4), lambda epoch: {"other": {1: 0.2}} if epoch == 1 else {}), ["c-0", "c-1", "c-2"]
    for _ in pack.epochs():
        stop_early(early, pack, ids)
    assert [(m.status, m.stopped_by, len(m.history)) for m in pack.members] == [("completed", None, 4)] + [("stopped", "scheduler", 1)] * 2
    alone = Training(plan(0.01), data)
    for _ in alone.epochs():
        pass
    for got, expected in zip(pack.members[0].history, alone.members[0].history):
        assert math.isclose(got["loss"], expected["loss"], rel_tol=1e-5) and got["val_acc"] == expected["val_acc"]
    _, trials = epoch_and_trial_rows("c-1", pack, spec, {"model": "baseline", "lr": 1e-7}, plan=1)
    assert [(t["status"], t["stopped_by"], t["stopped_at_rung"], t["epochs"]) for t in trials] == [("stopped", "scheduler", 1, 1)]
    _, trials = epoch_and_trial_rows("c-0", pack, spec, {"model": "baseline", "lr": 0.01}, plan=0)
    assert [(t["status"], t["stopped_by"], t["stopped_at_rung"]) for t in trials] == [("completed", None, None)]
    again = Training([plan(0.01), plan(1e-7), plan(1e-7)], data)  # a checkpoint keeps who stopped them
    again.load_state_dict(pack.state_dict())
    assert [m.stopped_by for m in again.members] == [None, "scheduler", "scheduler"]


# ------------------------------------------------------------------ the study: PRUNED, with the curve optuna-dashboard plots


def test_a_curve_is_the_mean_over_seeds_of_the_best_validation_accuracy_so_far():
    spec = parse(tiny_spec())
    rows = [{"seed": 0, "epoch": e, "loss": 1.0, "val_acc": v} for e, v in ((1, 0.5), (2, 0.4), (3, 0.7))]
    rows += [{"seed": 1, "epoch": 1, "loss": 1.0, "val_acc": 0.3}, {"seed": 1, "epoch": 2, "loss": math.nan, "val_acc": 0.9}]
    assert study.objective_curve(spec, rows) == {1: pytest.approx(0.4), 2: pytest.approx(0.25), 3: pytest.approx(0.35)}
    two = parse(tiny_spec(models=["m2"], seeds=[0], sampler="nsga2", trials=2, objectives=["val_acc", "wall_s"],
                          search={"alpha": {"low": 0.1, "high": 10.0}}))
    assert study.objective_curve(spec, []) is None and study.objective_curve(two, rows) is None  # Optuna: one objective only


def test_a_member_the_rule_stopped_is_a_pruned_trial_with_its_intermediate_values(tmp_path):
    spec = with_pack(parse(tiny_spec(models=["baseline"], seeds=[0, 1], epochs=4, fixed={"hidden": 16}, search={"lr": [0.01, 1e-7]},
                                     scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2})), 2)
    pack = space.grid_points(spec)
    for i, (point, statuses) in enumerate(zip(pack, (["completed"] * 2, ["stopped"] * 2))):
        config_id, epochs = f"t1-{i}", 4 if i == 0 else 1
        epoch_rows = [{"trial_id": f"{config_id}-seed{s}", "config_id": config_id, "model": "baseline", "seed": s, "epoch": e,
                       "loss": 1.0, "val_acc": 0.1 * e + 0.1 * s} for s in (0, 1) for e in range(1, epochs + 1)]
        trials = [{"trial_id": f"{config_id}-seed{s}", "config_id": config_id, "model": "baseline", "seed": s, "point": space.point_key(point),
                   "status": status, "stopped_by": "scheduler" if status == "stopped" else None, "stopped_at_rung": 1 if status == "stopped" else None,
                   "best_val_acc": 0.1 * epochs + 0.1 * s, "test_acc": 0.5, "wall_s": 1.0, "epochs": epochs}
                  for s, status in zip((0, 1), statuses)]
        results.write_configuration(tmp_path, config_id, epoch_rows, trials, spec.hyperparameter_columns())
    sweep._local_study(spec, tmp_path)
    recorder = sweep.RecordConfigurations(spec, str(tmp_path), str(tmp_path / sweep.STUDY_FILE))
    recorder.on_trial_complete(0, [], SimpleNamespace(config={"pack": pack}, trial_id="t1"))
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / sweep.STUDY_FILE)))
    trials = {t.params["lr"]: t for t in optuna.load_study(study_name=spec.name, storage=storage).get_trials()}
    assert trials[1e-7].state == TrialState.PRUNED and trials[1e-7].intermediate_values == {1: pytest.approx(0.15)}
    assert trials[0.01].state == TrialState.COMPLETE
    assert trials[0.01].intermediate_values == {e: pytest.approx(0.1 * e + 0.05) for e in range(1, 5)}
