"""The Optuna space: grid points, zipped axes, sampling and decoding, without Ray."""
import optuna
import pytest

from helpers import tiny_spec
from sweeper import space
from sweeper.spec import SAMPLERS, at_scale, load, parse

KINGMA = "search_spaces/kingma-table1.yaml"


def test_every_grid_point_once_conditional_on_the_model():
    spec = parse(tiny_spec(search={"alpha": [0.5, 5.0], "hidden": [8, 16]}, fixed={}))
    points = space.grid_points(spec)
    assert len(points) == 2 * 2 + 2  # m2: alpha x hidden; baseline: hidden only
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert {"model": "baseline", "hidden": 8} in points


def test_a_hyperparameter_a_point_ignores_is_no_axis_of_it():
    """sigma2 x likelihood: the Gaussian points at every sigma2, the Bernoulli point once, without sigma2."""
    spec = parse(tiny_spec(models=["m2"], search={"sigma2": [1, 0.1, 0.01], "likelihood": ["gaussian", "bernoulli"]}))
    points = space.grid_points(spec)
    expected = [{"model": "m2", "sigma2": s, "likelihood": "gaussian"} for s in (1, 0.1, 0.01)] + [{"model": "m2", "likelihood": "bernoulli"}]
    assert sorted(map(space.point_key, points)) == sorted(map(space.point_key, expected))
    study = optuna.create_study(direction="maximize", sampler=space.sampler(spec))
    space.enqueue_grid(study, spec)
    asked = []
    for _ in points:
        trial = study.ask()
        space.DefineByRun(spec)(trial)
        asked.append(trial.params)
    assert sorted(map(space.point_key, asked)) == sorted(map(space.point_key, points))
    bernoulli = space.configuration(spec, {"model": "m2", "likelihood": "bernoulli"})
    assert bernoulli.hyper["likelihood"] == "bernoulli" and bernoulli.hyper["sigma2"] == 1.0  # the default, unused


def test_enqueued_points_are_each_asked_exactly_once_and_then_the_grid_is_done():
    spec = parse(tiny_spec(search={"alpha": [0.5, 5.0, 50.0]}))
    study = optuna.create_study(direction="maximize", sampler=space.sampler(spec))
    space.enqueue_grid(study, spec)
    define = space.DefineByRun(spec)
    asked = []
    for _ in range(space.configuration_count(spec)):
        trial = study.ask()
        define(trial)
        asked.append(tuple(sorted(trial.params.items())))
    assert sorted(asked) == sorted(tuple(sorted(p.items())) for p in space.grid_points(spec))
    beyond = study.ask()  # the queue is empty: the sampler would make up a point, which no grid has
    with pytest.raises(space.NotEnqueued) as refused:
        define(beyond)
    assert refused.value.number == beyond.number and beyond.params == {}


def test_zipped_axes_pair_label_counts_with_batch_ratios():
    spec = load(KINGMA)
    points = space.grid_points(spec)
    assert len(points) == 4 * 4  # 4 (label count, batch) pairs x 4 models, no crossing
    chosen = {(c.label_count, c.batch_labelled, c.batch_unlabelled) for c in (space.configuration(spec, p) for p in points)}
    assert chosen == {(100, 1, 499), (600, 3, 247), (1000, 5, 245), (3000, 15, 235)}
    m1 = space.configuration(spec, next(p for p in points if p["model"] == "m1"))
    assert m1.hyper["classifier"] == "svm" and m1.dataset == "mnist"


def test_a_zipped_hyperparameter_gives_each_label_count_its_own_value_in_the_models_that_take_it():
    """Kingma's M2 on M1's features: 300 hidden units at 100 labels, 500 at the others (fixed.m2_hidden zipped)."""
    spec = load(KINGMA)
    chosen = [space.configuration(spec, p) for p in space.grid_points(spec)]
    assert {(c.label_count, c.hyper["m2_hidden"]) for c in chosen if c.model == "m1m2"} == {(100, 300), (600, 500), (1000, 500), (3000, 500)}
    assert all(isinstance(c.hyper["m2_hidden"], int) for c in chosen if c.model == "m1m2")
    assert all("m2_hidden" not in c.hyper for c in chosen if c.model != "m1m2")  # the others take no m2_hidden
    from sweeper import models

    m1m2 = next(c for c in chosen if c.model == "m1m2" and c.label_count == 100)
    built = models.build("m1m2", (16,), 10, {**m1m2.hyper, "features": 5, "m1_hidden": 7, "latent": 3})
    assert built.m2.classifier[1][0].out_features == 300 and built.m1.encoder.body.first.weights[0].shape[0] == 7
    spec = parse(tiny_spec(label_count=[50, 100], zip=["label_count", "alpha"], fixed={"hidden": 16, "alpha": [0.5, 2.0]}, search={}))
    assert {(c.label_count, c.hyper["alpha"]) for c in map(lambda p: space.configuration(spec, p), space.grid_points(spec))
            if c.model == "m2"} == {(50, 0.5), (100, 2.0)}
    assert at_scale(load(KINGMA), "smoke").fixed["m2_hidden"] == (16, 16, 16, 16)  # tiny, element by element


def test_smoke_scale_keeps_the_structure_on_embedded_data():
    full, smoke = load(KINGMA), at_scale(load(KINGMA), "smoke")
    assert space.configuration_count(smoke) == space.configuration_count(full)
    assert smoke.datasets == ("digits",) and smoke.label_counts == (20, 30, 40, 50)
    assert [(b.labelled, b.unlabelled) for b in smoke.batches] == [(1, 100), (3, 100), (5, 100), (10, 100)] and smoke.zip == full.zip
    assert (smoke.epochs, smoke.seeds, smoke.fixed["hidden"], smoke.fixed["lr"]) == (2, (0, 1), 16, 0.0003)


def test_a_sampled_space_draws_within_its_ranges():
    spec = parse(tiny_spec(models=["m2"], search={"alpha": {"low": 0.1, "high": 10, "log": True}, "latent": {"low": 2, "high": 8}},
                           sampler="tpe", trials=5, fixed={"hidden": 16}))
    study = optuna.create_study(direction="maximize", sampler=space.sampler(spec))
    for i in range(5):
        trial = study.ask()
        space.DefineByRun(spec)(trial)
        chosen = space.configuration(spec, trial.params)
        assert 0.1 <= chosen.hyper["alpha"] <= 10 and isinstance(chosen.hyper["latent"], int) and 2 <= chosen.hyper["latent"] <= 8
        study.tell(trial, i)


@pytest.mark.parametrize("kind", [k for k in SAMPLERS if k != "grid"])  # a grid's points are enqueued, never sampled
def test_every_sampler_pickles_as_ray_tune_pickles_its_searcher_and_samples_after(kind):
    from ray import cloudpickle

    objectives = {"objectives": ["val_acc", "wall_s"]} if kind == "nsga2" else {}
    spec = parse(tiny_spec(models=["m2"], search={"alpha": {"low": 0.1, "high": 10.0}}, sampler=kind, trials=4, **objectives))
    loaded = cloudpickle.loads(cloudpickle.dumps(space.sampler(spec)))  # Optuna 5.1's NSGA-II holds a lock pickle refuses
    study = optuna.create_study(directions=space.directions(spec), sampler=loaded)
    for _ in range(3):  # the loaded sampler, its lock made afresh, goes on sampling
        trial = study.ask()
        assert 0.1 <= trial.suggest_float("alpha", 0.1, 10.0) <= 10.0
        study.tell(trial, [0.5, 1.0] if kind == "nsga2" else 0.5)
    assert len(study.trials) == 3


def test_counting_and_listing_a_grid_share_one_rule_for_every_spec():
    from pathlib import Path

    from sweeper.spec import at_scale, load

    for path in sorted((Path(__file__).resolve().parent.parent / "search_spaces").glob("*.yaml")):
        for scale in ("full", "smoke"):
            spec = at_scale(load(path), scale)
            if spec.sampler == "grid":
                points = space.grid_points(spec)
                assert space.configuration_count(spec) == len(points) == len({space.point_key(p) for p in points}), (path.name, scale)
