"""A sampled search asked for a pack at a time (searchers.PackSearch): distinct, pending configurations the
sampler sees; network shapes never in one pack; every configuration one study trial with its values per
epoch; and a restored search that asks nothing twice."""
import os
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from helpers import tiny_spec
from sweeper import packing, searchers, space, study, sweep
from sweeper.ids import STUDY_TRIAL, config_ids
from sweeper.spec import parse, with_pack

RANGES = {"alpha": {"low": 0.1, "high": 10.0, "log": True}, "lr": {"low": 1e-4, "high": 1e-2, "log": True}}


def pack_search(tmp_path, size=3, **overrides):
    spec = parse(tiny_spec(**{"models": ["m2"], "sampler": "tpe", "trials": 7, "search": RANGES, **overrides}))
    _, storage = sweep._local_study(spec, tmp_path)
    return spec, searchers.PackSearch(spec=spec, storage=storage, location=str(tmp_path), size=size, **sweep._tune_objectives(spec))


def asked(tmp_path, spec):
    return optuna.load_study(study_name=spec.name, storage=sweep._local_study(spec, tmp_path)[1]).get_trials()


def write_rows(location, spec, config_id, point, val):
    from test_study_record import write_rows as written

    written(location, spec, config_id, {k: v for k, v in point.items() if k != STUDY_TRIAL}, ["completed"] * len(spec.seeds), val=val)


def test_a_pack_is_asked_at_once_distinct_and_pending_while_the_sampler_asks(tmp_path):
    spec, search = pack_search(tmp_path, size=3)
    seen = []
    original = search.study.sampler.sample_independent

    def sample(study, trial, name, distribution):  # what the sampler sees as it draws each member
        seen.append(sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))
        return original(study, trial, name, distribution)

    search.study.sampler.sample_independent = sample
    pack = search.suggest("t1")["pack"]
    assert [m[STUDY_TRIAL] for m in pack] == [0, 1, 2]
    assert len({space.point_key(m) for m in pack}) == 3  # distinct
    assert [t.state for t in asked(tmp_path, spec)] == [TrialState.RUNNING] * 3
    assert [0, 1] in seen  # the third member was drawn with the first two pending
    assert search.study.sampler._constant_liar  # TPE's: a pending trial counts as a poor one


def test_trials_n_gives_n_configurations_each_complete_with_its_values_per_epoch(tmp_path):
    spec, search = pack_search(tmp_path, size=3)
    packs = {}
    while (config := search.suggest(f"t{len(packs)}")) != Searcher.FINISHED:
        packs[f"t{len(packs)}"] = config["pack"]
    assert [len(p) for p in packs.values()] == [3, 3, 1]  # the last pack is smaller
    for trial_id, pack in packs.items():
        for epoch in (1, 2):
            search.on_trial_result(trial_id, {"epoch": epoch, "objectives": [epoch / 10 + i / 100 for i in range(len(pack))]})
        for i, (member, config_id) in enumerate(zip(pack, config_ids({"pack": pack}, trial_id))):
            write_rows(tmp_path, spec, config_id, member, val=0.5 + i / 100)
        search.on_trial_complete(trial_id, {"epoch": 2})
        search.on_trial_complete(trial_id, {"epoch": 2})  # told once
    trials = asked(tmp_path, spec)
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    first = trials[packs["t0"][1][STUDY_TRIAL]]
    assert first.intermediate_values == {1: pytest.approx(0.11), 2: pytest.approx(0.21)} and first.value == pytest.approx(0.51)


def test_searched_network_shapes_never_share_a_pack(tmp_path):
    spec, search = pack_search(tmp_path, size=6, trials=6, fixed={"latent": 4},
                                 search={"alpha": RANGES["alpha"], "hidden": [8, 16, 32]})
    packs = []
    while (config := search.suggest(str(len(packs)))) != Searcher.FINISHED:
        packs.append(config["pack"])
    assert sum(map(len, packs)) == 6 and len({m[STUDY_TRIAL] for p in packs for m in p}) == 6
    assert all(len({m["hidden"] for m in pack}) == 1 for pack in packs)  # one shape per pack
    keys = [{packing.pack_key(packing.plan_of(spec, space.configuration(spec, m))) for m in pack} for pack in packs]
    assert all(len(k) == 1 for k in keys)


def test_a_restored_search_asks_nothing_twice(tmp_path):
    spec, search = pack_search(tmp_path, size=3)
    first = search.suggest("t0")["pack"]
    search.save(str(tmp_path / "searcher.pkl"))  # Tune saved its state with one pack out ...
    search.suggest("t1")  # ... and the driver asked for another before it was killed
    _, restored = pack_search(tmp_path, size=3)
    restored.restore(str(tmp_path / "searcher.pkl"))
    handed = []
    while (config := restored.suggest(f"r{len(handed)}")) != Searcher.FINISHED:
        handed.append([m[STUDY_TRIAL] for m in config["pack"]])
    assert handed == [[3, 4, 5], [6]]  # the pack asked after the save, adopted; then the last configuration
    assert restored.numbers["t0"] == [m[STUDY_TRIAL] for m in first]
    assert len(asked(tmp_path, spec)) == 7  # trials: 7, each asked once


def test_a_sampled_search_packs_as_a_grid_does_with_a_scheduler_or_without():
    spec = parse(tiny_spec(models=["m2"], sampler="tpe", trials=20, search=RANGES))
    assert packing.sampled_pack_size(spec, slots=2) == 10 and packing.sampled_pack_size(spec, slots=16) == 2
    assert packing.sampled_pack_size(with_pack(spec, 4), slots=2) == 4
    assert packing.sampled_pack_size(parse(tiny_spec(models=["m2"], sampler="tpe", trials=20, search=RANGES, scheduler="asha")), 2) == 10


def test_a_member_that_no_longer_trains_gets_no_intermediate_value(tmp_path):
    """A member stopped by the scheduler (no longer training from that epoch on) keeps the curve it had."""
    spec, search = pack_search(tmp_path, size=3)
    pack = search.suggest("t0")["pack"]
    search.on_trial_result("t0", {"epoch": 1, "objectives": [0.1, 0.2, 0.3], "training": [1, 1, 1]})
    search.on_trial_result("t0", {"epoch": 2, "objectives": [0.4, 0.2, 0.5], "training": [1, 0, 1]})
    curves = {t.number: t.intermediate_values for t in asked(tmp_path, spec)}
    numbers = [m[STUDY_TRIAL] for m in pack]
    assert [curves[n] for n in numbers] == [{1: pytest.approx(0.1), 2: pytest.approx(0.4)}, {1: pytest.approx(0.2)},
                                            {1: pytest.approx(0.3), 2: pytest.approx(0.5)}]


@pytest.mark.ray
def test_a_packed_sampled_sweep_records_every_configuration_with_its_epochs(tmp_path):
    spec = parse(tiny_spec(models=["m2"], sampler="tpe", trials=5, epochs=3, pack=2,
                           search={"alpha": RANGES["alpha"], "hidden": [8, 16]}, fixed={"latent": 4}))
    outcome = sweep.run(spec, tmp_path / "out", quiet=True, num_cpus=2)
    assert outcome.errored == 0 and outcome.configurations == 5
    rows = pd.read_parquet(tmp_path / "out" / "trials")
    assert rows["config_id"].nunique() == 5 and rows["status"].eq("completed").all()
    packs = rows.assign(tune=rows["config_id"].str.rsplit("-", n=1).str[0]).groupby("tune")["hidden"].nunique()
    assert packs.eq(1).all()  # one network shape per Tune trial
    trials = optuna.load_study(study_name=spec.name, storage=sweep._local_study(spec, tmp_path / "out")[1]).get_trials()
    assert len(trials) == 5 and all(t.state == TrialState.COMPLETE and sorted(t.intermediate_values) == [1, 2, 3] for t in trials)
    assert os.path.isfile(tmp_path / "out" / "spec.yaml")


@pytest.mark.ray
def test_a_packed_sampled_search_with_asha_stops_members_inside_the_pack(tmp_path):
    """TPE and ASHA (grace 1, eta 2, rungs 1 and 2 of 4 epochs) over one pack of 4: at rung 1 the members below the
    median of their pack-mates stop, their rows say so and their study trials are PRUNED with curves to the rung."""
    spec = parse(tiny_spec(models=["baseline"], seeds=[0], sampler="tpe", trials=4, epochs=4, pack=4, fixed={"hidden": 16},
                           search={"lr": {"low": 1e-4, "high": 0.1, "log": True}},
                           scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2}))
    outcome = sweep.run(spec, tmp_path / "out", quiet=True, num_cpus=2)
    assert outcome.errored == 0 and outcome.configurations == 4
    rows = pd.read_parquet(tmp_path / "out" / "trials").sort_values("best_val_acc")
    assert rows["config_id"].str.rsplit("-", n=1).str[0].nunique() == 1  # one Tune trial: the pack
    epochs = pd.read_parquet(tmp_path / "out" / "epochs")
    first = epochs[epochs["epoch"] == 1].set_index("config_id")["val_acc"]
    stopped = rows[rows["status"] == "stopped"]
    assert len(stopped) >= 1 and stopped["stopped_by"].eq("scheduler").all() and stopped["stopped_at_rung"].isin([1, 2]).all()
    curve = epochs.pivot(index="config_id", columns="epoch", values="val_acc")
    for rung in (1, 2):  # at each rung, the members below the median of the others there stop, the rest go on
        there = curve[rung].dropna()
        below = {c for c, v in there.items() if v < np.percentile(there.drop(c), 50)}
        assert below == set(stopped.loc[stopped["stopped_at_rung"] == rung, "config_id"])
    assert (stopped["epochs"] == stopped["stopped_at_rung"]).all()  # trained no further than the rung
    assert curve.notna().sum(axis=1).loc[stopped["config_id"]].tolist() == stopped["epochs"].tolist()
    assert first.max() > first.min()  # the search spans rates that learn and rates that do not
    assert rows["status"].isin(["stopped", "completed"]).all() and (rows["status"] == "completed").any()
    trials = {t.number: t for t in optuna.load_study(study_name=spec.name, storage=sweep._local_study(spec, tmp_path / "out")[1]).get_trials()}
    states = {t.state for t in trials.values()}
    assert states == {TrialState.PRUNED, TrialState.COMPLETE}
    for t in trials.values():
        expected = list(range(1, 5)) if t.state == TrialState.COMPLETE else list(range(1, max(t.intermediate_values) + 1))
        assert sorted(t.intermediate_values) == expected
    pruned = [t for t in trials.values() if t.state == TrialState.PRUNED]
    assert sorted(max(t.intermediate_values) for t in pruned) == sorted(stopped["stopped_at_rung"].tolist())


def shared_search(spec, url, driver, size=3):
    board = study.SharedStudyDriver(url, spec, driver)
    return searchers.PackSearch(spec=spec, storage=study.open_shared(spec, url), location="no-rows-here", size=size,
                                board=board, **sweep._tune_objectives(spec))


def test_drivers_of_a_shared_study_each_ask_packs_and_take_each_configuration_once(tmp_path):
    spec = parse(tiny_spec(models=["m2"], sampler="tpe", trials=7, search=RANGES))
    url = str(tmp_path / "study.journal")
    a, b = shared_search(spec, url, "a"), shared_search(spec, url, "b")
    taken = {"a0": a.suggest("a0"), "b0": b.suggest("b0"), "a1": a.suggest("a1")}
    assert [len(c["pack"]) for c in taken.values()] == [3, 3, 1]
    assert b.suggest("b1") is None  # the budget is spent, a's pack still runs: b waits
    numbers = [m[STUDY_TRIAL] for c in taken.values() for m in c["pack"]]
    assert sorted(numbers) == list(range(7))
    claimed = {t.number: t.user_attrs[study.DRIVER] for t in a.board.study.get_trials()}
    assert [claimed[m[STUDY_TRIAL]] for m in taken["b0"]["pack"]] == ["b"] * 3
    for trial_id, config in taken.items():
        (a if trial_id.startswith("a") else b).on_trial_complete(trial_id, {"objectives": [0.5] * len(config["pack"]), "wall_s": 1.0})
    b.checked_at = 0.0
    assert b.suggest("b2") == Searcher.FINISHED
    assert all(t.state == TrialState.COMPLETE for t in a.board.study.get_trials())


def test_a_silent_drivers_pack_is_taken_over_by_another_driver(tmp_path):
    spec = parse(tiny_spec(models=["m2"], sampler="random", trials=3, search=RANGES, study={"heartbeat_s": 1, "reclaim_after_s": 2}))
    url = str(tmp_path / "study.journal")
    silent, alive = shared_search(spec, url, "silent"), shared_search(spec, url, "alive")
    lost = silent.suggest("s0")["pack"]
    time.sleep(3.5)
    alive.board.reclaim()
    taken = alive.suggest("a0")["pack"]
    strip = lambda pack: sorted(space.point_key({k: v for k, v in m.items() if k != STUDY_TRIAL}) for m in pack)  # noqa: E731
    assert strip(taken) == strip(lost)  # the same configurations, asked by the other driver
    assert study.census(alive.board.study).used == 3  # a taken-over configuration counts once


@pytest.mark.ray
def test_a_killed_packed_sampled_search_resumes_without_asking_twice(write_spec, tmp_path):
    from test_recovery import assert_each_configuration_recorded_once, killed_and_resumed

    spec = tiny_spec(models=["m2"], seeds=[0], epochs=12, max_concurrent=1, sampler="random", trials=5, pack=2,
                     search={"alpha": RANGES["alpha"]}, batch={"labelled": 25, "unlabelled": 100})
    out = tmp_path / "out"
    finished = killed_and_resumed(write_spec(spec), out, checkpoints_lost=False)
    trials = pd.read_parquet(out / "trials")
    assert trials["config_id"].nunique() == 5 and trials["status"].eq("completed").all() and trials["epochs"].eq(12).all()
    for name, mtime in finished.items():  # finished configurations were not rerun
        assert (out / "trials" / name).stat().st_mtime_ns == mtime
    assert_each_configuration_recorded_once(out, trials)  # 5 study trials: none asked twice
