import math

import torch

from sweeper.data import load
from sweeper.train import Plan, Trial


def plan(model="m2", seeds=(0, 1), epochs=2, **hyper):
    hyper = {"alpha": 1.0, "hidden": 16, "latent": 4, "lr": 1e-3} | hyper
    if model == "baseline":
        hyper = {k: hyper[k] for k in ("hidden", "lr")}
    return Plan(model, hyper, label_count=50, seeds=seeds, epochs=epochs, batch_labelled=25, batch_unlabelled=200)


def history(trial: Trial) -> list[list[dict]]:
    for _ in trial.epochs():
        pass
    return [[{k: v for k, v in row.items() if k != "wall_s"} for row in m.history] for m in trial.members]


def test_same_seed_same_numbers_and_seeds_differ():
    data = load("digits")
    first, again = history(Trial(plan(), data)), history(Trial(plan(), data))
    assert first == again
    assert first[0] != first[1]
    assert [row["epoch"] for row in first[0]] == [1, 2]
    assert set(first[0][0]) == {"seed", "epoch", "loss", "recon", "kl", "ce", "val_acc", "test_acc", "entropy_unlabelled", "mi_unlabelled"}


def test_a_seed_alone_gives_the_numbers_it_gives_beside_others():
    data = load("digits")
    together = history(Trial(plan(seeds=(0, 1)), data))
    alone = history(Trial(plan(seeds=(1,)), data))
    assert together[1] == alone[0]


def test_a_diverging_seed_is_recorded_as_diverged_and_the_others_go_on():
    trial = Trial(plan(epochs=3), load("digits"))
    with torch.no_grad():
        for p in trial.members[0].model.parameters():
            p.fill_(float("nan"))
    for _ in trial.epochs():
        pass
    broken, healthy = trial.members
    assert broken.status == "diverged" and len(broken.history) == 1 and math.isnan(broken.history[0]["loss"])
    assert healthy.status == "completed" and len(healthy.history) == 3
    assert trial.objective() == healthy.best_val_acc / 2  # a diverged seed counts 0


def test_a_checkpoint_resumes_to_the_same_numbers():
    data = load("digits")
    straight = history(Trial(plan(epochs=3), data))

    interrupted = Trial(plan(epochs=3), data)
    epochs = interrupted.epochs()
    next(epochs)
    state = interrupted.state_dict()
    resumed = Trial(plan(epochs=3), data)
    resumed.load_state_dict(state)
    assert history(resumed) == straight
    assert [m.status for m in resumed.members] == ["completed", "completed"]


def test_test_accuracy_is_read_at_the_epoch_of_best_validation_accuracy():
    trial = Trial(plan(model="baseline", seeds=(0,), epochs=4), load("digits"))
    for _ in trial.epochs():
        pass
    m = trial.members[0]
    best = max(m.history, key=lambda row: row["val_acc"])  # the first of equal maxima
    assert (m.best_epoch, m.best_val_acc, m.test_acc) == (best["epoch"], best["val_acc"], best["test_acc"])


def test_dynamic_binarisation_draws_a_fresh_binary_batch_from_the_grey_levels():
    from sweeper.models.parts import key
    from sweeper.train import binarize

    x = torch.full((2000, 10), 0.3)
    first, second = binarize(x, key(0)), binarize(x, key(1))
    assert set(first.unique().tolist()) == {0.0, 1.0} and abs(first.mean().item() - 0.3) < 0.01
    assert not torch.equal(first, second)


def test_data_options_reach_the_trial():
    from dataclasses import replace

    data = load("digits")
    both = Trial(replace(plan(epochs=1), labelled_in_unlabelled=True, dynamic_binarize=True), data)
    assert len(both.members[0].unlabelled) == len(data.y_train)
    apart = Trial(plan(epochs=1), data)
    assert len(apart.members[0].unlabelled) == len(data.y_train) - 50
    assert history(both)[0] != history(apart)[0] and math.isfinite(both.members[0].history[0]["loss"])
