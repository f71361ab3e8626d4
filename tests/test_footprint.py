"""The memory check's two measures: the bound from the sizes alone must never fall below the exact count."""
import itertools

from sweeper import footprint, models, space


def configurations():
    for model, cls in sorted(models.MODELS.items()):
        if cls.fitted_by == "em":
            continue
        taken = cls.hyperparameters()
        options = {k: h.choices for k, h in taken.items() if h.choices}
        for dataset, depth, (hidden, latent), chosen in itertools.product(
                ("mnist", "cifar10", "moons"), (1, 3), ((500, 50), (64, 300)), itertools.product(*options.values())):
            hyper = {k: h.default for k, h in taken.items()} | dict(zip(options, chosen))
            hyper.update({k: v for k, v in (("depth", depth), ("hidden", hidden), ("latent", latent), ("auxiliary", 200),
                                            ("features", 80), ("mc_samples", 3)) if k in taken})
            yield space.Configuration(model, hyper, dataset, 100, 100, 100)


def test_the_sizes_alone_bound_the_exact_memory_of_every_model():
    checked = 0
    for chosen in configurations():
        try:
            exact = footprint.memory_needed(chosen)
        except ValueError:  # an option this data cannot take (a CNN on 2-d points)
            continue
        assert footprint.memory_bound(chosen) >= exact, (chosen.model, chosen.dataset, chosen.hyper)
        checked += 1
    assert checked > 500


def test_the_bound_is_near_enough_to_decide_without_torch():
    chosen = space.Configuration("adgm", {**{k: h.default for k, h in models.hyperparameters("adgm").items()}, "depth": 2},
                                 "mnist", 100, 100, 100)
    assert footprint.memory_bound(chosen) < 8 * 2**30  # a laptop's memory: validate never needs the exact count for it
