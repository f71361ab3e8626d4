"""What the paper specs promise about their setup: the toy data on the thesis' scale, arms that differ only in
what a paper studies, and reading each seed at its final epoch beside its best validation epoch."""
from pathlib import Path

import numpy as np
import pytest
from helpers import HYPER, epoch_rows, tiny_spec, trial_row

from sweeper import report, results, space
from sweeper.data import load as load_data
from sweeper.data.base import DataOptions
from sweeper.spec import load, parse
from sweeper.train import schedule

SPECS = Path(__file__).resolve().parent.parent / "search_spaces"


def test_circles_in_raw_coordinates_keep_the_generators_radii():
    raw = load_data("circles", options=DataOptions(coordinates="raw", factor=0.5, noise=0.0))
    radii = np.linalg.norm(raw.x_train, axis=1)
    assert np.allclose(np.sort(np.unique(radii.round(3))), [0.5, 1.0])  # the inner circle at factor x the outer
    assert np.allclose(radii[raw.y_train == 1], 0.5, atol=1e-3)
    unit = load_data("circles", options=DataOptions(factor=0.5, noise=0.0))
    assert unit.x_train.min() == 0.0 and unit.x_train.max() == 1.0  # min-max scaled, the default


@pytest.mark.parametrize("data, says", [
    ({"coordinates": "raw"}, "data.coordinates: only the toy sets (moons, circles) take coordinates, not digits"),
    ({"factor": 0.3}, "data.factor: only the toy sets (moons, circles) take factor, not digits"),
    ({"coordinates": "polar"}, "data.coordinates: unknown coordinates"),
])
def test_the_toy_options_are_refused_elsewhere(data, says):
    with pytest.raises(Exception, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse(tiny_spec(data=data))


def test_sigma_toy_runs_on_the_generators_scale():
    spec = load(SPECS / "sigma-toy.yaml")
    assert spec.data.coordinates == "raw" and spec.data.factor == 0.5 and spec.data.noise == 0.05 and len(spec.seeds) >= 3


def test_the_batch_ratio_arms_differ_only_in_the_batch_and_weigh_the_classifier_alike():
    weights = {}
    for name in ("batch-ratio.yaml", "batch-ratio-dataset-sum.yaml"):
        spec = load(SPECS / name)
        points = [space.configuration(spec, p) for p in space.grid_points(spec)]
        assert [(c.batch_labelled, c.batch_unlabelled) for c in points] == [(100, 100), (1, 499)]
        assert all(c.hyper == points[0].hyper for c in points)  # nothing else differs between the arms
        hyper = points[0].hyper
        n_unlabelled = 50_000 - 100
        share = schedule(0.0, spec.epochs, 50_000, 100, n_unlabelled)
        scale = share.data_ratio if hyper["alpha_scale"] == "dataset" else 1.0
        labelled_weight = share.labelled_share if hyper["weighting"] == "dataset_sum" else 1.0
        weights[name] = hyper["alpha"] * scale * labelled_weight  # the cross-entropy's weight in the loss
    assert weights["batch-ratio.yaml"] == pytest.approx(weights["batch-ratio-dataset-sum.yaml"]) == 1.0


def test_a_report_at_the_final_epoch_reads_each_seeds_last_epoch(tmp_path):
    trials = [trial_row("c0", "baseline", seed, test_acc=0.9) for seed in (0, 1)]  # best at epoch 2: 90 %
    epochs = []
    for seed, last in ((0, 0.70), (1, 0.74)):  # drawn away afterwards
        rows = epoch_rows("c0", "baseline", seed, epochs=4)
        rows[-1] = {**rows[-1], "test_acc": last, "val_acc": last}
        epochs += rows
    results.write_configuration(tmp_path, "c0", epochs, trials, HYPER)
    best = report.table([tmp_path])
    final = report.table([tmp_path], at="final")
    assert "90.00 ± 0.00 (2)" in best and "at the epoch of best validation accuracy" in best
    assert "72.00 ± 2.83 (2)" in final and "at the final epoch" in final and "chosen by final-epoch validation accuracy" in final


def test_a_learned_output_variance_is_the_gaussian_density_per_dimension():
    import torch

    from sweeper.models.bounds import gaussian_log_likelihood_learned

    generator = torch.Generator().manual_seed(0)
    mean, log_var, x = (torch.randn(4, 3, 6, generator=generator) for _ in range(3))
    expected = torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_likelihood_learned(mean, log_var, x), expected)


def test_m1m2_with_a_learned_variance_gives_its_m2_a_gaussian_head_that_trains():
    import torch

    from sweeper import models
    from sweeper.models.base import Batch, Schedule
    from sweeper.models.noise import key

    model = models.build("m1m2", (64,), 10, {"hidden": 16, "latent": 4, "features": 6, "feature_variance": "learned", "vae_fraction": 0.0})
    generator = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(5, 64, generator=generator), torch.arange(5), torch.rand(7, 64, generator=generator))
    weights = {"alpha": torch.tensor(0.1), "sigma2": torch.tensor(1.0)}
    loss, _ = model(batch, weights, Schedule(epoch=1, epochs=2, data_ratio=10.0, labelled_share=0.1, unlabelled_count=100.0), key(7))
    loss.backward()
    head = model.m2.decoder.body
    assert torch.isfinite(loss) and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    mean, log_var = model.m2.decoder(torch.zeros(2, 4), torch.eye(10)[:2])
    assert mean.shape == log_var.shape == (2, 6)


def raj(**options):
    import torch

    from sweeper import models

    torch.manual_seed(0)
    return models.build("optimized_elbo", (16,), 3, {"hidden": 8, "latent": 2, **options})


def raj_loss(model, seed=7, **weights):
    import torch

    from sweeper.models.base import Batch, Schedule
    from sweeper.models.noise import key

    generator = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(4, 16, generator=generator), torch.tensor([0, 1, 2, 0]), torch.rand(6, 16, generator=generator))
    values = {"alpha": 1.0, "sigma2": 1.0, "beta": 0.0, "gamma": 0.0, "epsilon": 0.1, "temperature": 1.0, **weights}
    return model(batch, {k: torch.tensor(v) for k, v in values.items()}, Schedule(epoch=1, epochs=2, data_ratio=2.5, labelled_share=0.4, unlabelled_count=100.0),
                 key(seed))[0]


def test_raj_posterior_x_draws_z_from_the_image_alone():
    import torch

    model = raj(posterior="x")
    assert model.encoder.body.first.weights[0].shape[-1] == 16 and len(model.encoder.body.first.weights) == 1  # x only, no y
    log_px, kl = model.per_label(torch.rand(5, 16), torch.tensor(3), {"sigma2": torch.tensor(1.0)})
    assert log_px.shape == kl.shape == (5, 3) and torch.equal(kl, kl[:, :1].expand_as(kl))  # one z, whatever the label
    assert not torch.allclose(raj_loss(model), raj_loss(raj()))


def test_raj_gumbel_draws_one_label_from_the_key():
    import torch

    model = raj(label_sampling="gumbel")
    same, other = raj_loss(model, seed=7), raj_loss(model, seed=8)
    assert torch.isfinite(same) and torch.equal(same, raj_loss(model, seed=7)) and not torch.equal(same, other)
    cold = raj_loss(model, temperature=0.01)
    assert torch.isfinite(cold) and not torch.allclose(cold, same)


def test_raj_labelled_kl_terms_read_as_the_sections_write_them():
    import torch
    from torch.distributions import Categorical, kl_divergence

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.5, 0.0]])
    smoothed = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])
    q, p_hat, prior = Categorical(logits=logits), Categorical(probs=smoothed), Categorical(probs=torch.full((2, 3), 1 / 3))
    expected = {"smoothed": kl_divergence(p_hat, prior), "section_3_4": kl_divergence(q, prior) + kl_divergence(p_hat, prior),
                "section_3_6": kl_divergence(q, prior) + kl_divergence(q, p_hat)}
    for option, value in expected.items():
        torch.testing.assert_close(raj(labelled_kl=option).label_terms(smoothed, logits), value)


def test_the_raj_spec_states_each_reading_it_takes():
    spec = load(SPECS / "raj-optimized-elbo.yaml")
    assert spec.fixed["posterior"] == "x" and spec.fixed["labelled_kl"] == "section_3_6"
    text = (SPECS / "raj-optimized-elbo.yaml").read_text()
    assert "Gumbel" in text and "alpha = 1 is an assumption" in text
