"""What `sweeper resume` runs again (sweep.rerun_plan), from plain records of the rows and of Tune's
trials: no Ray started. The rows are the truth; Tune's state may lag them."""
from helpers import tiny_spec
from sweeper import space
from sweeper.spec import parse, with_pack
from sweeper.sweep import LOST_CHECKPOINT, Rerun, TuneTrial, rerun_plan

GRID = tiny_spec(models=["m2", "baseline"], search={"alpha": [0.5, 5.0]})  # points: m2 0.5, m2 5, baseline
M2_05, M2_5, BASELINE = {"model": "m2", "alpha": 0.5}, {"model": "m2", "alpha": 5.0}, {"model": "baseline"}
LOST = f"Trial checkpoint at /tmp/x {LOST_CHECKPOINT}"


def key(point):
    return space.point_key(point)


def test_a_grid_reruns_the_points_no_configuration_finished_and_clears_their_rows_first():
    found = {"a": (key(M2_05), True), "b": (key(M2_5), False), "orphan": (key(BASELINE), False)}
    trials = [TuneTrial("tune/a", M2_05, "a", None), TuneTrial("tune/b", M2_5, "b", None)]
    assert rerun_plan(parse(GRID), found, trials) == Rerun(again=[M2_5, BASELINE], stale={"b", "orphan"}, failed=0)


def test_a_grid_whose_every_point_finished_reruns_nothing():
    found = {"a": (key(M2_05), True), "b": (key(M2_5), True), "c": (key(BASELINE), True)}
    trials = [TuneTrial(f"tune/{i}", p, i, None) for i, p in zip("abc", (M2_05, M2_5, BASELINE))]
    assert rerun_plan(parse(GRID), found, trials) == Rerun(again=[], stale=set(), failed=0)


def test_a_packed_grid_reruns_its_missing_points_in_packs():
    spec = with_pack(parse(tiny_spec(models=["m2", "baseline"], search={"alpha": [0.5, 5.0, 50.0]})), 2)
    found = {"t1-0": (key(M2_05), True), "t1-1": (key(M2_5), False)}
    trials = [TuneTrial("tune/t1", {"pack": [M2_05, M2_5]}, "t1", None)]
    plan = rerun_plan(spec, found, trials)
    assert plan.again == [{"pack": [M2_5, {"model": "m2", "alpha": 50.0}]}, {"pack": [BASELINE]}]
    assert plan.stale == {"t1-1"} and plan.failed == 0


def test_an_errored_grid_trial_counts_as_failed_when_its_rows_ended_and_is_rerun_when_not():
    found = {"a": (key(M2_05), True), "b": (key(M2_5), False), "c": (key(BASELINE), True)}
    trials = [TuneTrial("tune/a", M2_05, "a", "RuntimeError: boom"),  # its rows say failed: it ended
              TuneTrial("tune/b", M2_5, "b", "RayActorError: the worker died"),  # it never wrote its end
              TuneTrial("tune/c", BASELINE, "c", None)]
    assert rerun_plan(parse(GRID), found, trials) == Rerun(again=[M2_5], stale={"b"}, failed=1)


def test_an_errored_pack_counts_each_of_its_configurations_as_failed():
    spec = with_pack(parse(GRID), 2)
    found = {"t1-0": (key(M2_05), True), "t1-1": (key(M2_5), True), "t2-0": (key(BASELINE), True)}
    trials = [TuneTrial("tune/t1", {"pack": [M2_05, M2_5]}, "t1", "RuntimeError: boom"), TuneTrial("tune/t2", {"pack": [BASELINE]}, "t2", None)]
    assert rerun_plan(spec, found, trials) == Rerun(again=[], stale=set(), failed=2)


def test_a_sampled_search_reruns_the_trials_whose_checkpoint_is_lost_and_had_not_finished():
    spec = parse(tiny_spec(models=["m2"], sampler="random", trials=4, search={"alpha": {"low": 0.1, "high": 10.0}}))
    points = [{"model": "m2", "alpha": a} for a in (0.2, 0.4, 0.6, 0.8)]
    found = {"lost": (key(points[0]), False), "lost-done": (key(points[1]), True), "failed": (key(points[2]), True),
             "orphan": (key(points[3]), False)}
    trials = [TuneTrial("tune/lost", points[0], "lost", LOST), TuneTrial("tune/lost-done", points[1], "lost-done", LOST),
              TuneTrial("tune/failed", points[2], "failed", "RuntimeError: boom")]
    assert rerun_plan(spec, found, trials) == Rerun(again=[points[0]], stale={"lost", "orphan"}, failed=1)


def test_rows_from_before_points_were_kept_leave_a_grid_to_what_tune_knows():
    found = {"a": (None, True), "b": (None, False)}
    trials = [TuneTrial("tune/a", M2_05, "a", None), TuneTrial("tune/b", M2_5, "b", LOST)]
    assert rerun_plan(parse(GRID), found, trials) == Rerun(again=[M2_5], stale={"b"}, failed=0)


def test_a_trial_from_a_shared_study_names_its_rows_by_driver_and_study_trial():
    assert TuneTrial("tune/x", {**M2_05, "study_trial": 7, "driver": "east"}, "x", None).config_ids == ["east-7"]
