import math
from dataclasses import replace

import torch

from sweeper.data import load
from sweeper.packing import Plan
from sweeper.train import Training


def plan(model="m2", seeds=(0, 1), epochs=2, **hyper):
    hyper = {"alpha": 1.0, "hidden": 16, "latent": 4, "lr": 1e-3} | hyper
    if model == "baseline":
        hyper = {k: hyper[k] for k in ("hidden", "lr")}
    return Plan(model=model, hyper=hyper, label_count=50, seeds=seeds, epochs=epochs, batch_labelled=25, batch_unlabelled=200)


def history(trial: Training) -> list[list[dict]]:
    for _ in trial.epochs():
        pass
    return [[{k: v for k, v in row.items() if k != "wall_s"} for row in m.history] for m in trial.members]


def test_same_seed_same_numbers_and_seeds_differ():
    data = load("digits")
    first, again = history(Training(plan(), data)), history(Training(plan(), data))
    assert first == again
    assert first[0] != first[1]
    assert [row["epoch"] for row in first[0]] == [1, 2]
    assert set(first[0][0]) == {"seed", "epoch", "loss", "recon", "kl", "ce", "val_acc", "test_acc", "entropy_unlabelled", "mi_unlabelled"}


def test_a_seed_alone_gives_the_numbers_it_gives_beside_others():
    data = load("digits")
    together = history(Training(plan(seeds=(0, 1)), data))
    alone = history(Training(plan(seeds=(1,)), data))
    # stacked with another seed, the matmuls are batched differently: the same up to float rounding
    assert_same_numbers(together[1], alone[0], len(data.y_val))


def test_a_diverging_seed_is_recorded_as_diverged_and_the_others_go_on():
    trial = Training(plan(epochs=3), load("digits"))
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
    straight = history(Training(plan(epochs=3), data))

    interrupted = Training(plan(epochs=3), data)
    epochs = interrupted.epochs()
    next(epochs)
    state = interrupted.state_dict()
    resumed = Training(plan(epochs=3), data)
    resumed.load_state_dict(state)
    assert history(resumed) == straight
    assert [m.status for m in resumed.members] == ["completed", "completed"]


def test_test_accuracy_is_read_at_the_epoch_of_best_validation_accuracy():
    trial = Training(plan(model="baseline", seeds=(0,), epochs=4), load("digits"))
    for _ in trial.epochs():
        pass
    m = trial.members[0]
    best = max(m.history, key=lambda row: row["val_acc"])  # the first of equal maxima
    assert (m.best_epoch, m.best_val_acc, m.test_acc) == (best["epoch"], best["val_acc"], best["test_acc"])


def test_dynamic_binarisation_draws_a_fresh_binary_batch_from_the_grey_levels():
    from sweeper.models.noise import key
    from sweeper.train import binarize

    x = torch.full((2000, 10), 0.3)
    first, second = binarize(x, key(0)), binarize(x, key(1))
    assert set(first.unique().tolist()) == {0.0, 1.0} and abs(first.mean().item() - 0.3) < 0.01
    assert not torch.equal(first, second)


def test_data_options_reach_the_trial():
    from dataclasses import replace

    data = load("digits")
    both = Training(replace(plan(epochs=1), labelled_in_unlabelled=True, dynamic_binarize=True), data)
    assert len(both.members[0].unlabelled) == len(data.y_train)
    apart = Training(plan(epochs=1), data)
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
    packed = Training(plans, data)
    rows = history(packed)
    assert len(rows) == len(PACK) * 2 and [m.plan_index for m in packed.members] == [0, 0, 1, 1, 2, 2]
    for i, p in enumerate(plans):
        alone = history(Training(p, data))
        for seed in range(2):
            assert_same_numbers(rows[2 * i + seed], alone[seed], len(data.y_val))
    assert rows[0] != rows[2]  # alpha changes the numbers


def test_a_diverging_member_of_a_pack_is_masked_and_the_others_keep_their_numbers():
    data = load("digits")
    plans = [plan(epochs=3, seeds=(0,), **settings) for settings in PACK]
    packed = Training(plans, data)
    with torch.no_grad():
        for p in packed.parameters_of(1):
            p.fill_(float("nan"))
    rows = history(packed)
    assert [m.status for m in packed.members] == ["completed", "diverged", "completed"]
    assert len(rows[1]) == 1 and math.isnan(rows[1][0]["loss"])
    for i in (0, 2):
        assert_same_numbers(rows[i], history(Training(plans[i], data))[0], len(data.y_val))


def test_plans_that_differ_in_network_shape_do_not_pack():
    import pytest

    with pytest.raises(ValueError, match="share model, network shape"):
        Training([plan(), plan(hidden=32)], load("digits"))


def test_the_compiled_and_the_bfloat16_steps_track_the_plain_one():
    """The GPU options (Stack(compile=, bf16=)), run on the CPU: same losses compiled, close in bfloat16.
    A second compiled stack of another batch size in the same process (a reused Ray worker's next trial)
    compiles for its own shape: with a size made symbolic, vmap's linear over the enumerated labels fails."""
    from sweeper import models
    from sweeper.models import Schedule
    from sweeper.models.noise import fold_in, key
    from sweeper.train import Stack

    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": 32, "latent": 4}

    def losses(rows=20, **options):
        torch.manual_seed(0)
        hypers = [hyper | {"alpha": 0.1, "lr": 1e-3}, hyper | {"alpha": 1.0, "lr": 3e-3}]
        stack = Stack([models.build("m2", (64,), 10, hyper) for _ in range(2)], hypers, **options)
        generator = torch.Generator().manual_seed(0)
        x = (torch.rand(2, 2 * rows, 64, generator=generator) < 0.5).float()
        batch = (x[:, :rows], torch.randint(0, 10, (2, rows), generator=generator), x[:, rows:])
        keys = torch.stack([key(0), key(1)])
        return torch.stack([stack.step(batch, Schedule(epoch=s, epochs=3, data_ratio=10.0, labelled_share=0.1, unlabelled_count=100.0), fold_in(keys, s), False)
                            for s in range(3)])

    plain = losses()
    assert torch.allclose(losses(compile=True), plain, rtol=1e-4, atol=1e-4)
    assert torch.allclose(losses(rows=12, compile=True), losses(rows=12), rtol=1e-4, atol=1e-4)
    in_bf16 = losses(bf16=True)
    assert torch.isfinite(in_bf16).all() and torch.allclose(in_bf16[:, :, 0], plain[:, :, 0], rtol=0.05)
    # compiled, the parameters' casts to bfloat16 are in the graph; inductor may keep a fused sum in float32 a
    # little longer than eager's rounding does, so close, not equal
    assert torch.allclose(losses(bf16=True, compile=True)[:, :, 0], in_bf16[:, :, 0], rtol=1e-3)


def test_a_plans_step_options_reach_its_stack():
    """Plan(bf16=True), as a spec's step: {bf16: true} makes it: the trial trains under bfloat16 autocast,
    close to the plain run and not equal to it."""
    from dataclasses import replace

    data = load("digits")
    plain = history(Training(plan(seeds=(0,), epochs=1), data))[0][0]
    trial = Training(replace(plan(seeds=(0,), epochs=1), bf16=True), data)
    assert trial.fitter.stack.bf16
    in_bf16 = history(trial)[0][0]
    assert in_bf16["loss"] != plain["loss"] and math.isclose(in_bf16["loss"], plain["loss"], rel_tol=0.05)


def test_every_loss_part_a_model_returns_is_recorded():
    """m2_adversarial's adversary cross-entropy is a part of its loss: it lands in the epoch rows."""
    rows = history(Training(plan(model="m2_adversarial", seeds=(0,), epochs=1), load("digits")))[0][0]
    assert {"recon", "kl", "ce", "adversary"} <= set(rows)
    assert math.isfinite(rows["adversary"]) and rows["adversary"] > 0


def test_each_model_declares_how_it_is_fitted_and_gets_that_fitter():
    from sweeper import models
    from sweeper.train import EMFitter, GradientFitter

    assert {name for name, cls in models.MODELS.items() if cls.fitted_by == "em"} == {"ssgmm"}
    assert not hasattr(models.MODELS["ssgmm"], "forward") or models.MODELS["ssgmm"].forward is torch.nn.Module.forward
    em = Training(Plan(model="ssgmm", hyper={"covariance": "diag"}, label_count=50, seeds=(0,), epochs=2,
                       batch_labelled=25, batch_unlabelled=200), load("digits"))
    assert isinstance(em.fitter, EMFitter) and isinstance(Training(plan(epochs=1), load("digits")).fitter, GradientFitter)
    rows = history(em)[0]
    assert rows[1]["loss"] <= rows[0]["loss"] and math.isnan(rows[0]["recon"])  # EM never raises -log-likelihood


def test_a_stack_that_drops_members_steps_the_survivors_as_before():
    """Stack.keep: parameters, Adam's moments, loss weights and learning rates follow their members."""
    from sweeper import models
    from sweeper.models import Schedule
    from sweeper.models.noise import fold_in, key
    from sweeper.train import Stack

    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": 16, "latent": 4}
    hypers = [hyper | {"alpha": a, "lr": lr} for a, lr in ((0.1, 1e-3), (1.0, 3e-3), (10.0, 1e-2))]
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 20, 64, generator=generator) < 0.5).float()
    batch = (x[:, :10], torch.randint(0, 10, (3, 10), generator=generator), x[:, 10:])
    now = Schedule(epoch=0, epochs=3, data_ratio=10.0, labelled_share=0.1, unlabelled_count=100.0)
    keys = torch.stack([key(0), key(1), key(2)])

    def stack():
        torch.manual_seed(0)
        return Stack([models.build("m2", (64,), 10, hyper) for _ in range(3)], hypers)

    whole, kept = stack(), stack()
    for s in range(2):
        whole.step(batch, now, fold_in(keys, s), False)
        kept.step(batch, now, fold_in(keys, s), False)
    kept.keep([0, 2])
    survivors = tuple(t[[0, 2]] for t in batch)
    for s in range(2, 4):
        expected = whole.step(batch, now, fold_in(keys, s), False)[[0, 2]]
        got = kept.step(survivors, now, fold_in(keys[[0, 2]], s), False)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for name, p in kept.params.items():
        assert p.shape[0] == 2
        torch.testing.assert_close(p, whole.params[name][[0, 2]], rtol=1e-5, atol=1e-6)


def test_patience_stops_a_member_that_stopped_learning_and_the_others_train_on_as_alone():
    data = load("digits")
    learning, stuck = plan(seeds=(0,), epochs=5, lr=3e-3), plan(seeds=(1,), epochs=5, lr=0.0)  # lr 0: never improves
    learning, stuck = replace(learning, patience=2), replace(stuck, patience=2)
    together = Training([learning, stuck], data)
    rows = history(together)
    stopped = together.members[1]
    assert (stopped.status, stopped.best_epoch, len(stopped.history)) == ("stopped", 1, 3)  # epochs 2 and 3 did not improve
    assert together.active == [] or together.active == [0]
    alone = history(Training(learning, data))[0]
    assert [r["epoch"] for r in rows[0]] == [r["epoch"] for r in alone]
    for got, expected in zip(rows[0], alone):
        assert math.isclose(got["loss"], expected["loss"], rel_tol=1e-5) and got["val_acc"] == expected["val_acc"]


def test_a_training_saved_at_its_end_loads_and_has_nothing_left_to_train():
    """A driver killed after a trial's last checkpoint: the trial resumes from it and ends at once."""
    data = load("digits")
    done = Training(plan(epochs=2), data)
    rows = history(done)
    again = Training(plan(epochs=2), data)
    again.load_state_dict(done.state_dict())
    assert history(again) == rows and again.active == [] and [m.status for m in again.members] == ["completed"] * 2


def test_each_member_clips_its_gradient_by_its_own_norm_as_torchs_clipping_does_alone():
    """MemberOptimiser.clip on a stack of gradients: member 0 as clip_grad_norm_ then clip_grad_value_ would
    clip it alone (not by the stack's norm); member 1, clipping off, untouched; member 2 by its own bounds."""
    from sweeper.train import MemberOptimiser

    generator = torch.Generator().manual_seed(0)
    grads = [10 * torch.randn(3, 4, 5, generator=generator), torch.randn(3, 5, generator=generator)]
    grads[0][2] *= 0.01  # member 2's gradient is small: under its norm bound, the value bound alone acts
    settings = MemberOptimiser.of([{"clip_norm": 5.0, "clip_value": 1.0}, {}, {"clip_norm": 100.0, "clip_value": 0.05}], "cpu")
    clipped = [g.clone() for g in grads]
    settings.clip(clipped)
    for member, (norm, value) in ((0, (5.0, 1.0)), (2, (100.0, 0.05))):
        alone = [torch.nn.Parameter(torch.zeros_like(g[member])) for g in grads]
        for p, g in zip(alone, grads):
            p.grad = g[member].clone()
        torch.nn.utils.clip_grad_norm_(alone, norm)
        torch.nn.utils.clip_grad_value_(alone, value)
        for p, g in zip(alone, clipped):
            torch.testing.assert_close(g[member], p.grad)
    assert all(torch.equal(g[1], original[1]) for g, original in zip(clipped, grads))
    assert not torch.equal(clipped[0][0], grads[0][0]) and not torch.equal(clipped[0][2], grads[0][2])


def test_the_learning_rate_decays_every_so_many_epochs_down_to_its_floor():
    from sweeper.train import MemberOptimiser

    maaloe = {"lr": 3e-4, "lr_decay": 0.75, "lr_decay_every": 200, "lr_min": 3e-5}
    settings = MemberOptimiser.of([maaloe, {"lr": 1e-3, "lr_decay": 0.1, "lr_decay_every": 1, "lr_min": 1e-5}, {"lr": 2e-3}], "cpu")
    assert settings.rates(0) == [3e-4, 1e-3, 2e-3]
    # epochs counted from 0: the first 200 at 3e-4, the next 200 at 3e-4 x 0.75, ...
    assert [settings.rates(epoch)[0] for epoch in (199, 200, 399, 400, 999)] == [3e-4, 3e-4 * 0.75, 3e-4 * 0.75, 3e-4 * 0.75 ** 2, 3e-4 * 0.75 ** 4]
    assert math.isclose(settings.rates(1)[1], 1e-4) and settings.rates(3)[1] == 1e-5  # 1e-6 would be below the floor
    assert settings.rates(10_000) == [3e-5, 1e-5, 2e-3]
    assert settings.keep([2, 0]).rates(200) == [2e-3, 3e-4 * 0.75]


def test_a_packed_member_with_its_own_clipping_and_decay_gets_the_numbers_it_gets_alone():
    """Plans that differ in every optimiser setting train as one pack; each member's epochs are its own
    (clipped by its own gradient norm, its learning rate on its own schedule), and the settings act."""
    data = load("digits")
    settings = [{"clip_norm": 1.0, "clip_value": 0.02, "lr_decay": 0.5, "lr_decay_every": 1, "lr": 3e-3}, {"lr": 1e-3}]
    plans = [plan(epochs=3, seeds=(0,), **s) for s in settings]
    packed = Training(plans, data)
    rows = history(packed)
    for i, p in enumerate(plans):
        assert_same_numbers(rows[i], history(Training(p, data))[0], len(data.y_val))
    unclipped = history(Training(plan(epochs=3, seeds=(0,), lr=3e-3), data))[0]
    assert rows[0][1]["loss"] != unclipped[1]["loss"]
    decayed = Training(plan(epochs=3, seeds=(0,), lr=1e-3, lr_decay=0.5, lr_decay_every=1), data)
    history(decayed)
    assert decayed.fitter.stack.optimizer.param_groups[0]["lr"] == 1e-3 * 0.5 ** 2  # the third epoch's rate


def test_with_the_default_optimiser_settings_a_stack_steps_as_plain_adam():
    """No decay, no clipping: a member's step is torch.optim.Adam's on the model alone."""
    from sweeper import models
    from sweeper.models import Batch, Schedule
    from sweeper.models.noise import key
    from sweeper.train import Stack

    hyper = {k: h.default for k, h in models.hyperparameters("adgm").items()} | {"hidden": 8, "latent": 3, "auxiliary": 3, "lr": 3e-3}
    torch.manual_seed(0)
    model = models.build("adgm", (64,), 10, hyper)
    stack = Stack([model], [hyper])
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 20, 64, generator=generator) < 0.5).float()
    batch = (x[:, :10], torch.randint(0, 10, (1, 10), generator=generator), x[:, 10:])
    now = Schedule(epoch=500, epochs=1000, data_ratio=10.0, labelled_share=0.1, unlabelled_count=100.0)
    adam = torch.optim.Adam(model.parameters(), lr=3e-3)
    weights = {name: torch.tensor(float(hyper[name])) for name in models.MODELS["adgm"].loss_weights}
    for s in range(3):
        stack.step(batch, now, key(s)[None], False)
        adam.zero_grad()
        model(Batch(batch[0][0], batch[1][0], batch[2][0]), weights, now, key(s))[0].backward()
        adam.step()
    for name, p in model.named_parameters():
        torch.testing.assert_close(stack.params[name][0], p, rtol=1e-5, atol=1e-6)


def test_m1_epochs_train_the_vae_first_then_the_classifier_for_the_specs_full_epochs(write_spec):
    from helpers import tiny_spec
    from sweeper import space, spec as spec_module
    from sweeper.packing import plan_of

    spec = spec_module.load(write_spec(tiny_spec(models=["m1", "m2"], search={}, epochs=2, fixed={"hidden": 16, "latent": 4, "m1_epochs": 3})))
    m1_point, m2_point = space.grid_points(spec)
    assert plan_of(spec, space.configuration(spec, m2_point)).epochs == 2  # a model without M1 trains the spec's epochs
    trial = Training(plan_of(spec, space.configuration(spec, m1_point)), load("digits"))
    assert trial.plan.epochs == 5
    rows = history(trial)[0]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(r["recon"]) and math.isnan(r["ce"]) for r in rows[:3])  # the VAE's epochs
    assert all(math.isnan(r["recon"]) and math.isfinite(r["ce"]) for r in rows[3:])  # then the classifier's two


def m1m2_plan(seeds=(0, 1), **hyper):
    return plan(model="m1m2", seeds=seeds, epochs=3, features=6, m1_epochs=1, drop_inactive=0.18, feature_variance="learned", **hyper)


def test_m1m2_drops_inactive_features_per_member_packed_or_alone_and_after_a_resume():
    from sweeper.models.m1m2 import active_features

    data = load("digits")
    plans = [m1m2_plan(alpha=0.5), m1m2_plan(alpha=5.0)]
    packed = Training(plans, data)
    rows = history(packed)
    stack = packed.fitter.stack
    masks = stack.buffers["m2.observed"]
    for i, m in enumerate(packed.members):  # each member's own M1 on its own unlabelled x
        encoder = {name[len("m1.encoder."):]: p[i] for name, p in stack.params.items() if name.startswith("m1.encoder.")}
        means = torch.func.functional_call(packed.fitter.stack.model.m1.encoder, encoder, (data_x(packed, m),))[0]
        assert torch.equal(masks[i], active_features(means, 0.18))
    assert 0 < masks.sum() < masks.numel()  # some dropped, some kept: the case is not vacuous
    for i, p in enumerate(plans):
        alone = history(Training(p, data))
        for seed in range(2):
            for a, b in zip(rows[2 * i + seed], alone[seed]):
                assert math.isclose(a["loss"], b["loss"], rel_tol=1e-4) and abs(a["val_acc"] - b["val_acc"]) <= 1.5 / len(data.y_val)
    interrupted = Training(plans[0], data)
    epochs = interrupted.epochs()
    next(epochs), next(epochs)  # into M2's stage, whose mask was made at its start: the checkpoint keeps it
    resumed = Training(plans[0], data)
    resumed.load_state_dict(interrupted.state_dict())
    straight = history(Training(plans[0], data))
    assert without_nan(history(resumed)) == without_nan(straight)


def data_x(trial: Training, member) -> torch.Tensor:
    return trial.split.x_train[member.unlabelled]


def without_nan(rows: list[list[dict]]) -> list[list[dict]]:
    """Rows comparable with ==: a part a stage does not measure (NaN) as None."""
    return [[{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in member] for member in rows]


def test_configurations_that_differ_in_m1s_epochs_widths_or_dropped_features_do_not_pack():
    from sweeper.packing import pack_key

    base = m1m2_plan()
    for option, value in (("m1_epochs", 2), ("m1_hidden", 7), ("m1_depth", 2), ("drop_inactive", 0.1)):
        assert pack_key(base) != pack_key(replace(base, hyper={**base.hyper, option: value})), option
    assert pack_key(base) == pack_key(replace(base, hyper={**base.hyper, "alpha": 9.0}))


def test_compile_auto_leaves_a_small_trial_eager_having_counted_its_work():
    """step: {compile: auto}: a test's trial is far below the work that earns a compile back."""
    trial = Training(replace(plan(epochs=1), compile="auto"), load("digits"))
    history(trial)
    assert trial.fitter.flops_per_step > 0 and not trial.fitter.stack.compile
    assert not any(m.compiled for m in trial.members)


def test_compile_auto_prices_the_steps_the_trial_has_left(monkeypatch):
    """The work compile: auto weighs is one step's FLOPs times the steps after it: of a fresh trial, all its
    steps but the one counted; after members leave at a later epoch, only that epoch's and the later ones'."""
    from sweeper import train
    from sweeper.models import Schedule

    at = lambda epoch: Schedule(epoch=epoch, epochs=3, data_ratio=1.0, labelled_share=0.5, unlabelled_count=10.0)  # noqa: E731
    assert [train.steps_left(10, 0, at(0)), train.steps_left(10, 9, at(0)), train.steps_left(10, 0, at(2)), train.steps_left(10, 9, at(2))] \
        == [29, 20, 9, 0]
    priced = []
    monkeypatch.setattr(train, "compile_pays", lambda flops, device: priced.append(flops / trial.fitter.flops_per_step) or False)
    trial = Training(replace(plan(epochs=3), compile="auto"), load("digits"))
    epochs = trial.epochs()
    next(epochs)
    steps = train.steps_per_epoch(len(trial.members[0].unlabelled), 200)
    trial.fitter.keep([0])
    trial.active = [0]
    next(epochs)
    assert [round(steps_priced) for steps_priced in priced] == [3 * steps - 1, 2 * steps - 1]


def test_compile_auto_compiles_where_the_work_left_pays_and_a_resumed_trial_keeps_the_choice(monkeypatch):
    """With compiling priced at nothing, auto compiles from the second step on: numbers as eager's within float
    rounding, and each member records that it ran compiled; a trial resumed from its checkpoint continues
    compiled, to the same numbers; when members leave the stack (keep), the choice is made again for the new shape."""
    from sweeper import train

    data = load("digits")
    eager = history(Training(plan(model="baseline", epochs=2), data))
    monkeypatch.setattr(train, "COMPILE_S", 0.0)
    auto = replace(plan(model="baseline", epochs=2), compile="auto")
    straight_trial = Training(auto, data)
    straight = history(straight_trial)
    assert straight_trial.fitter.stack.compile and all(m.compiled for m in straight_trial.members)
    for rows, expected in zip(straight, eager, strict=True):
        assert [r["epoch"] for r in rows] == [1, 2]
        assert all(math.isclose(r["loss"], e["loss"], rel_tol=1e-4) for r, e in zip(rows, expected, strict=True))

    interrupted = Training(auto, data)
    next(interrupted.epochs())
    resumed = Training(auto, data)
    resumed.load_state_dict(interrupted.state_dict())
    assert resumed.fitter.stack.compile and all(m.compiled for m in resumed.members)
    assert repr(history(resumed)) == repr(straight)  # as text: the rows' NaN parts (a baseline has no recon) compare equal

    resumed.fitter.keep([0])
    assert not resumed.fitter.stack.compile and resumed.fitter.flops_per_step is None


def test_a_step_that_fails_to_compile_under_compile_auto_runs_eagerly(monkeypatch):
    """compile: auto never fails a trial for torch's compiler: the step that did not compile runs eagerly, and so
    does the rest of the trial, recorded as not compiled."""
    import pytest

    from sweeper import train

    monkeypatch.setattr(train, "COMPILE_S", 0.0)
    trial = Training(replace(plan(model="baseline", epochs=2), compile="auto"), load("digits"))

    def refuse(*args, **kwargs):
        raise RuntimeError("no compiler here")

    original = train.Stack._vmapped_losses
    monkeypatch.setattr(train.Stack, "_vmapped_losses", lambda self: refuse if self.compile else original(self))
    with pytest.warns(UserWarning, match=r"compile: auto: the step did not compile \(RuntimeError\); it runs eagerly"):
        rows = history(trial)
    assert not any(m.compiled for m in trial.members) and all(math.isfinite(r["loss"]) for r in rows[0])


def test_the_rows_record_whether_the_step_ran_compiled(tmp_path, monkeypatch):
    """The trial rows' `compiled`, and the report's count of compiled trials under its table."""
    from helpers import tiny_spec

    from sweeper import report, results, space, train
    from sweeper.packing import plan_of
    from sweeper.spec import parse
    from sweeper.trainable import epoch_and_trial_rows

    monkeypatch.setattr(train, "COMPILE_S", 0.0)
    spec = parse(tiny_spec(epochs=1, models=["baseline"], search={}, fixed={"hidden": 16}))
    point = space.grid_points(spec)[0]
    trial = Training(plan_of(spec, space.configuration(spec, point)), load("digits"))
    history(trial)
    epochs_rows, trial_rows = epoch_and_trial_rows("c", trial, spec, point)
    results.write_configuration(tmp_path, "c", epochs_rows, trial_rows, spec.hyperparameter_columns())
    assert results.read(tmp_path)["compiled"].tolist() == [True] * len(spec.seeds)
    assert report.table([tmp_path]).splitlines()[-1].endswith(f"; compiled in {len(spec.seeds)} of {len(spec.seeds)} trials")


def test_under_bfloat16_each_layer_is_cast_once_a_step_and_the_bounds_read_float32():
    """step: {bf16: true}: a linear layer's parameters are cast to bfloat16 once a step, however often the layer is
    used (q(y|x) on the labelled and the unlabelled batch); the hidden activations stay bfloat16, and what a
    network hands the bounds (here p(x|y,z)'s logits) is float32."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from sweeper import models
    from sweeper.models import Schedule
    from sweeper.models.noise import fold_in, key
    from sweeper.train import Stack, low_precision_parameters

    hyper = {k: h.default for k, h in models.hyperparameters("m2").items()} | {"hidden": 32, "latent": 4}
    torch.manual_seed(0)
    stack = Stack([models.build("m2", (64,), 10, hyper) for _ in range(2)], [hyper, hyper], bf16=True)
    x = (torch.rand(2, 40, 64) < 0.5).float()
    batch = (x[:, :20], torch.randint(0, 10, (2, 20)), x[:, 20:])
    schedule = Schedule(epoch=0, epochs=1, data_ratio=10.0, labelled_share=0.1, unlabelled_count=100.0)

    parameters = {p.data_ptr(): name for name, p in stack.params.items()}
    cast: list[str] = []

    class Casts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._to_copy.default and isinstance(args[0], torch.Tensor) and args[0].data_ptr() in parameters:
                cast.append(parameters[args[0].data_ptr()])
            return func(*args, **(kwargs or {}))

    dtypes = {}

    def seen(name):
        def hook(module, inputs, out):
            dtypes.setdefault(name, out.dtype)  # returns nothing: the output goes on as it was
        return hook

    stack.model.decoder.register_forward_hook(seen("logits"))
    stack.model.decoder.first.register_forward_hook(seen("hidden"))
    with Casts():
        losses = stack.step(batch, schedule, fold_in(torch.stack([key(0), key(1)]), 0), False)
    assert sorted(cast) == sorted(low_precision_parameters(stack.model)) and "classifier.1.0.weight" in cast
    assert dtypes == {"hidden": torch.bfloat16, "logits": torch.float32} and torch.isfinite(losses).all()


def test_eval_every_measures_every_eth_epoch_and_the_last_and_trains_the_same():
    """Evaluation reads the weights and draws nothing: the losses match a run measured every epoch, the measured
    epochs' accuracies too; the others hold NaN, and the best epoch is one that was measured."""
    data = load("digits")
    every = history(Training(plan(epochs=5, seeds=(0,)), data))[0]
    sparse_trial = Training(replace(plan(epochs=5, seeds=(0,)), eval_every=2), data)
    sparse = history(sparse_trial)[0]
    assert [r["loss"] for r in sparse] == [r["loss"] for r in every]
    measured = [r["epoch"] for r in sparse if not math.isnan(r["val_acc"])]
    assert measured == [2, 4, 5]
    for got, expected in zip(sparse, every):
        for key in ("val_acc", "test_acc", "entropy_unlabelled", "mi_unlabelled"):
            assert math.isnan(got[key]) if got["epoch"] in (1, 3) else got[key] == expected[key]
    member = sparse_trial.members[0]
    assert member.best_epoch in measured and member.status == "completed"
    best = max(measured, key=lambda e: (every[e - 1]["val_acc"], -e))
    assert (member.best_epoch, member.test_acc) == (best, every[best - 1]["test_acc"])


def test_patience_under_eval_every_stops_at_a_measured_epoch():
    stuck = replace(plan(seeds=(1,), epochs=9, lr=0.0), patience=3, eval_every=2)  # lr 0: never improves after epoch 2
    trial = Training(stuck, load("digits"))
    rows = history(trial)[0]
    member = trial.members[0]
    # measured at 2, 4, 6: 6 - 2 >= 3 stops it there, not at 5 (unmeasured), and its last row holds accuracies
    assert (member.status, member.stopped_by, member.best_epoch, len(rows)) == ("stopped", "patience", 2, 6)
    assert not math.isnan(rows[-1]["val_acc"])


def test_a_model_that_reads_no_unlabelled_data_gets_none_and_trains_the_same(monkeypatch):
    """The baseline's loss reads the labelled batch only: its step gathers and binarises no unlabelled x, and its
    numbers are those it had when it did (the unlabelled draw still advances the seed's order)."""
    from sweeper.models.baseline import Baseline

    data = load("digits")
    binarised = replace(plan(model="baseline", seeds=(0, 1), epochs=2), dynamic_binarize=True)
    seen = []
    forward = Baseline.forward
    monkeypatch.setattr(Baseline, "forward", lambda self, batch, *rest: seen.append(batch.x_unlabelled.shape[0]) or forward(self, batch, *rest))
    skipped = history(Training(binarised, data))
    assert set(seen) == {0}
    monkeypatch.setattr(Baseline, "reads_unlabelled", True)
    seen.clear()
    gathered = history(Training(binarised, data))
    assert set(seen) == {200}
    assert without_nan(skipped) == without_nan(gathered)


def test_a_model_says_itself_whether_it_reads_unlabelled_data():
    """A subclass of the baseline that does not say so reads them: an empty batch is never handed down by mistake."""
    from sweeper.models.baseline import Baseline

    class Readers(Baseline):
        pass

    assert (Baseline.reads_unlabelled, Readers.reads_unlabelled) == (False, True)


def test_m1s_classifier_stage_gets_no_unlabelled_batch_and_trains_the_same(monkeypatch):
    """M1's VAE stage reads the unlabelled batch, its classifier's stage does not: the loop hands that stage an
    empty one, and every number is what it was when it gathered and binarised one."""
    from sweeper.models.m1 import M1

    data = load("digits")
    staged = replace(Plan(model="m1", hyper={"hidden": 16, "latent": 4, "lr": 1e-3, "m1_epochs": 2}, label_count=50,
                          seeds=(0,), epochs=4, batch_labelled=25, batch_unlabelled=200), dynamic_binarize=True)
    seen = []
    forward = M1.forward
    monkeypatch.setattr(M1, "forward", lambda self, batch, w, now, key: seen.append(
        (self.stages.training_vae(now), batch.x_unlabelled.shape[0])) or forward(self, batch, w, now, key))
    skipped = without_nan(history(Training(staged, data)))
    assert set(seen) == {(True, 200), (False, 0)}
    monkeypatch.setattr(M1, "reads_unlabelled_at", lambda self, now: True)
    seen.clear()
    assert without_nan(history(Training(staged, data))) == skipped and set(seen) == {(True, 200), (False, 200)}
