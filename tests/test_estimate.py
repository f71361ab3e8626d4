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
