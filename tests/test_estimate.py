"""sweeper estimate: a few real training steps of each configuration, multiplied out to the sweep."""
import pytest

from sweeper.spec import at_scale, load


def test_estimate_times_each_configuration_and_multiplies_out(capsys):
    from sweeper.cli import main
    from sweeper.estimate import estimate

    spec = at_scale(load("search_spaces/kingma-table1.yaml"), "smoke")
    estimates = estimate(spec, steps=1)
    assert len(estimates) == 16 and all(e.step_s > 0 for e in estimates)
    one = estimates[0]
    # steps per epoch from the unlabelled set (every training point here) and that configuration's batch
    assert one.train_s == pytest.approx(one.step_s * (1257 // one.configuration.batch_unlabelled) * 2 * 2)
    assert main(["estimate", "search_spaces/sigma-toy.yaml", "--scale", "smoke"]) == 0
    assert capsys.readouterr().out.startswith("search_spaces/sigma-toy.yaml: 6 configurations × 2 seeds = 12 runs of 2 epochs; training ≈ ")


def test_configurations_that_would_share_a_pack_are_timed_once(monkeypatch):
    """They differ only in loss weights and learning rates: the same step. A grid of many alphas is one timing."""
    from helpers import tiny_spec
    from sweeper import estimate
    from sweeper.spec import parse

    timed = []
    monkeypatch.setattr(estimate, "_time_step", lambda spec, chosen, steps: timed.append(chosen.model) or 0.01)
    spec = parse(tiny_spec(search={"alpha": [0.1, 1.0, 10.0, 100.0], "lr": [0.001, 0.003]}))
    estimates = estimate.estimate(spec, steps=1)
    assert len(estimates) == 10 and sorted(timed) == ["baseline", "m2"]  # 8 M2 points, 2 baseline (lr only)
    assert len({e.train_s for e in estimates if e.configuration.model == "m2"}) == 1
