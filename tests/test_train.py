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
    # stacked with another seed, the matmuls are batched differently: the same up to float rounding
    assert_same_numbers(together[1], alone[0], len(data.y_val))


def test_a_diverging_seed_is_recorded_as_diverged_and_the_others_go_on():
    trial = Trial(plan(epochs=3), load("digits"))
    with torch.no_grad():
        for p in trial.parameters_of(0):
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


PACK = [dict(alpha=0.5, lr=1e-3), dict(alpha=5.0, lr=1e-3), dict(alpha=1.0, lr=3e-3)]


def assert_same_numbers(packed_rows: list[dict], alone_rows: list[dict], n_val: int) -> None:
    assert [r["epoch"] for r in packed_rows] == [r["epoch"] for r in alone_rows]
    for p, a in zip(packed_rows, alone_rows):
        for name in ("loss", "recon", "kl", "ce", "entropy_unlabelled", "mi_unlabelled"):
            assert math.isclose(p[name], a[name], rel_tol=1e-4, abs_tol=1e-5), (name, p[name], a[name])
        for name in ("val_acc", "test_acc"):  # an argmax may flip on a near tie: one example at most
            assert abs(p[name] - a[name]) <= 1.5 / n_val, (name, p[name], a[name])


def test_a_packed_run_gives_each_configuration_the_numbers_it_gets_alone():
    data = load("digits")
    plans = [plan(epochs=3, **settings) for settings in PACK]  # different alpha, and learning rate
    packed = Trial(plans, data)
    rows = history(packed)
    assert len(rows) == len(PACK) * 2 and [m.plan for m in packed.members] == [0, 0, 1, 1, 2, 2]
    for i, p in enumerate(plans):
        alone = history(Trial(p, data))
        for seed in range(2):
            assert_same_numbers(rows[2 * i + seed], alone[seed], len(data.y_val))
    assert rows[0] != rows[2]  # alpha changes the numbers


def test_a_diverging_member_of_a_pack_is_masked_and_the_others_keep_their_numbers():
    data = load("digits")
    plans = [plan(epochs=3, seeds=(0,), **settings) for settings in PACK]
    packed = Trial(plans, data)
    with torch.no_grad():
        for p in packed.parameters_of(1):
            p.fill_(float("nan"))
    rows = history(packed)
    assert [m.status for m in packed.members] == ["completed", "diverged", "completed"]
    assert len(rows[1]) == 1 and math.isnan(rows[1][0]["loss"])
    for i in (0, 2):
        assert_same_numbers(rows[i], history(Trial(plans[i], data))[0], len(data.y_val))


def test_plans_that_differ_in_network_shape_do_not_pack():
    import pytest

    with pytest.raises(ValueError, match="share model, network shape"):
        Trial([plan(), plan(hidden=32)], load("digits"))


def test_the_compiled_and_the_bfloat16_steps_track_the_plain_one():
    """The GPU options (Stack(compile=, bf16=)), run on the CPU: same losses compiled, close in bfloat16.
    A second compiled stack of another batch size in the same process (a reused Ray worker's next trial)
    compiles for its own shape: with a size made symbolic, vmap's linear over the enumerated labels fails."""
    from sweeper import models
    from sweeper.models.parts import fold_in, key
    from sweeper.train import Stack

    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": 32, "latent": 4}

    def losses(rows=20, **options):
        torch.manual_seed(0)
        stack = Stack([models.build("m2", (64,), 10, hyper) for _ in range(2)], [1e-3, 3e-3], **options)
        generator = torch.Generator().manual_seed(0)
        x = (torch.rand(2, 2 * rows, 64, generator=generator) < 0.5).float()
        batch = (x[:, :rows], torch.randint(0, 10, (2, rows), generator=generator), x[:, rows:])
        weights = {"alpha": torch.tensor([0.1, 1.0]), "sigma2": torch.ones(2)}
        keys = torch.stack([key(0), key(1)])
        return torch.stack([stack.step(batch, weights, {"epoch": s, "progress": s / 3, "data_ratio": 10.0, "labelled_share": 0.1}, fold_in(keys, s), False)
                            for s in range(3)])

    plain = losses()
    assert torch.allclose(losses(compile=True), plain, rtol=1e-4, atol=1e-4)
    assert torch.allclose(losses(rows=12, compile=True), losses(rows=12), rtol=1e-4, atol=1e-4)
    in_bf16 = losses(bf16=True)
    assert torch.isfinite(in_bf16).all() and torch.allclose(in_bf16[:, :, 0], plain[:, :, 0], rtol=0.05)


def test_a_plans_step_options_reach_its_stack():
    """Plan(bf16=True), as a spec's step: {bf16: true} makes it: the trial trains under bfloat16 autocast,
    close to the plain run and not equal to it."""
    from dataclasses import replace

    data = load("digits")
    plain = history(Trial(plan(seeds=(0,), epochs=1), data))[0][0]
    trial = Trial(replace(plan(seeds=(0,), epochs=1), bf16=True), data)
    assert trial.stack.bf16
    in_bf16 = history(trial)[0][0]
    assert in_bf16["loss"] != plain["loss"] and math.isclose(in_bf16["loss"], plain["loss"], rel_tol=0.05)
