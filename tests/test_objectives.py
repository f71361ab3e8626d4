"""How each objective weighs its labelled and unlabelled terms, and that every hyperparameter a model
declares is one it uses (or says it ignores)."""
import pytest
import torch

from sweeper import models
from sweeper.data import labelled_split
from sweeper.models import Batch, Schedule
from sweeper.models.bounds import semi_supervised_loss
from sweeper.models.noise import key
from sweeper.train import batch_indices, steps_per_epoch

SHAPE, N_CLASSES = (1, 4, 4), 4
TINY = {"hidden": 8, "latent": 3, "auxiliary": 3, "features": 5}
GRADIENT_MODELS = sorted(name for name, cls in models.MODELS.items() if cls.fitted_by == "gradient")
SEMI_SUPERVISED = sorted(name for name in GRADIENT_MODELS if "weighting" in models.hyperparameters(name))


def build(name: str, **settings) -> models.Model:
    torch.manual_seed(0)
    return models.build(name, SHAPE, N_CLASSES, {**TINY, **settings})


def data(n_labelled: int, n_unlabelled: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(n_labelled, 16, generator=g), torch.arange(n_labelled) % N_CLASSES, torch.rand(n_unlabelled, 16, generator=g))


def loss_weights(name: str, progress: float, labelled_share: float, **values) -> tuple[dict, Schedule]:
    """forward's loss weights (defaults, or as given) and a schedule at `progress` of 10 epochs."""
    w = {n: torch.tensor(float(values.get(n, h.default))) for n, h in models.MODELS[name].loss_weights.items()}
    return w, Schedule(epoch=10 * progress, epochs=10, data_ratio=10.0, labelled_share=labelled_share, unlabelled_count=100.0)


def test_the_mean_of_the_batch_estimates_over_an_epoch_is_the_data_set_objective():
    """With dataset_sum, averaging the batch losses of one epoch gives (sum over labelled + sum over unlabelled)
    / (N_l + N_u) exactly, for batches as the loop draws them; with part means it does not (it weighs the 4
    labelled points as much as the 12 unlabelled ones)."""
    y = torch.arange(16) % 4
    labelled, unlabelled = (torch.as_tensor(i) for i in labelled_split(y.numpy(), 4, 4, seed=0))
    per_point = torch.linspace(-3.0, 5.0, 16, dtype=torch.float64) ** 2  # any per-example loss
    n_l, n_u = len(labelled), len(unlabelled)
    steps = steps_per_epoch(n_u, 3)
    order = torch.Generator().manual_seed(0)
    rows_l = labelled[batch_indices(n_l, steps, 2, order, "cpu")]  # 4 steps x 2: every labelled point twice
    rows_u = unlabelled[batch_indices(n_u, steps, 3, order, "cpu")]  # 4 x 3: every unlabelled point once
    full = (per_point[labelled].sum() + per_point[unlabelled].sum()) / (n_l + n_u)

    def epoch_mean(weighting):
        return torch.stack([semi_supervised_loss(per_point[rows_l[s]], per_point[rows_u[s]], weighting, n_l / (n_l + n_u))
                            for s in range(steps)]).mean()

    torch.testing.assert_close(epoch_mean("dataset_sum"), full, rtol=1e-12, atol=1e-12)
    assert abs(epoch_mean("part_means") - full) > 1.0


@pytest.mark.parametrize("name", SEMI_SUPERVISED)
def test_every_objective_is_its_labelled_part_plus_its_unlabelled_part_weighted_as_declared(name):
    """share 1 gives the labelled part alone, share 0 the unlabelled part: part_means is their sum and
    dataset_sum at share s is s * labelled + (1 - s) * unlabelled, for every model with both terms."""
    b = data(6, 5)
    progress = 0.9  # M1+M2: past the VAE stage, where M2 trains
    loss = lambda weighting, share: build(name, weighting=weighting)(b, *loss_weights(name, progress, share), key(3))[0]  # noqa: E731
    labelled, unlabelled = loss("dataset_sum", 1.0), loss("dataset_sum", 0.0)
    torch.testing.assert_close(loss("part_means", 0.3), labelled + unlabelled, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(loss("dataset_sum", 0.2), 0.2 * labelled + 0.8 * unlabelled, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(labelled, unlabelled)


def test_with_one_batch_the_whole_data_set_dataset_sum_is_kingmas_sum_per_point():
    """M2 with alpha: J = sum_l [-L + alpha CE] + sum_u [-U], divided by N_l + N_u."""
    b = data(3, 9)
    model = build("m2", weighting="dataset_sum")
    w = loss_weights("m2", 0.5, 3 / 12, alpha=2.0)
    labelled, unlabelled, _, _ = model.objective(b, *w, key(1))
    loss, _ = model(b, *w, key(1))
    torch.testing.assert_close(loss, (labelled.sum() + unlabelled.sum()) / 12)


# M1's own epochs, past half of the 10 the schedules above count: M1's stage then covers epochs where
# vae_fraction 0.5 would have had the next stage
STAGE_ALTERNATIVES = {"m1_epochs": 7}


def alternative(h: models.Hyper, value):
    """Another allowed value of a hyperparameter."""
    if h.choices:
        return h.choices[(h.choices.index(value) + 1) % len(h.choices)]
    if h.integer:
        return int(value) + 2
    if h.high is not None:
        return value + 0.75 * (h.high - value)
    return 2 * value + 1


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("name", GRADIENT_MODELS)
def test_every_hyperparameter_a_model_takes_changes_its_loss_unless_it_says_it_ignores_it(name, likelihood):
    """A hyperparameter that a model declares but never reads (M1+M2 once built its M2 with the default
    alpha_scale) would let a sweep vary something that changes nothing. Each one, set to another value,
    must change the loss at some stage of training, and one the model says it ignores must not."""
    taken = models.hyperparameters(name)
    base = {**{n: h.default for n, h in taken.items()}, **{k: v for k, v in TINY.items() if k in taken}}
    if "likelihood" in taken:
        base["likelihood"] = likelihood
    b = data(6, 5)

    def losses(settings):
        model = build(name, **settings)
        with torch.no_grad():  # buffers the training loop sets before an epoch (M1+M2's dropped features)
            for buffer, value in model.refresh(b.x_unlabelled).items():
                model.get_buffer(buffer).copy_(value)
        return torch.stack([model(b, *loss_weights(name, progress, 0.2, **settings), key(7))[0] for progress in (0.0, 0.5, 0.6, 0.9)])

    reference = losses(base)
    ignored = models.MODELS[name].ignored(base)
    for hp, h in taken.items():
        if hp in models.OPTIMISER:  # the optimiser's (lr, its schedule, clipping), not the loss's
            continue
        changed = losses({**base, hp: STAGE_ALTERNATIVES.get(hp, alternative(h, base[hp]))})
        if hp in ignored:
            torch.testing.assert_close(changed, reference, msg=f"{name} says it ignores {hp}, yet its loss changed")
        else:
            assert not torch.allclose(changed, reference), f"{name} takes {hp} but its loss does not change with it"


@pytest.mark.parametrize("name", [n for n, cls in models.MODELS.items() if cls.built_on])
def test_a_model_built_on_another_takes_all_of_its_hyperparameters(name):
    for inner in models.MODELS[name].built_on:
        assert set(models.hyperparameters(inner)) <= set(models.hyperparameters(name)), (name, inner)


def test_m1m2_hands_alpha_scale_kl_warmup_and_weighting_to_its_m2():
    model = build("m1m2", alpha_scale="dataset", kl_warmup=4, weighting="dataset_sum")
    assert (model.m2.alpha_scale, model.m2.kl_warmup, model.m2.weighting) == ("dataset", 4, "dataset_sum")
    assert models.MODELS["m1m2"].ignored({"likelihood": "bernoulli"}) == set()  # its M2 is Gaussian: sigma2 counts
    assert models.MODELS["m2"].ignored({"likelihood": "bernoulli"}) == {"sigma2"}


def test_m1m2_schedules_its_m2_from_the_start_of_its_own_stage():
    model = build("m1m2", vae_fraction=0.5, pretrain=0.2)
    # epoch 60 of 100: 10 epochs into M2's 50, progress 0.2 of its stage: pretraining has just ended there
    stage = model.stages.after_vae(Schedule(epoch=60, epochs=100, data_ratio=1.0, labelled_share=0.5, unlabelled_count=100.0))
    assert stage == Schedule(epoch=10.0, epochs=50.0, data_ratio=1.0, labelled_share=0.5, unlabelled_count=100.0)
    assert stage.progress == pytest.approx(0.2)
    assert model.stages.after_vae(Schedule(epoch=0, epochs=100, data_ratio=1.0, labelled_share=0.5, unlabelled_count=100.0)).progress < 0  # still M1's stage
