import math

import pytest
import torch

from sweeper import models
from sweeper.models import Batch
from sweeper.models.parts import fold_in, key, normal, one_hot

N_FEATURES, N_CLASSES = 12, 4


def tiny(name: str, seed: int = 0) -> models.Model:
    torch.manual_seed(seed)
    return models.build(name, N_FEATURES, N_CLASSES, {"hidden": 8, "latent": 3})


def batch(seed: int = 0, n_labelled: int = 6, n_unlabelled: int = 5) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.rand(n_labelled, N_FEATURES, generator=g),
        torch.randint(0, N_CLASSES, (n_labelled,), generator=g),
        torch.rand(n_unlabelled, N_FEATURES, generator=g),
    )


def weights(**values):
    return {name: torch.tensor(float(v)) for name, v in values.items()}


def test_noise_is_a_pure_function_of_the_key():
    k = key(7)
    assert torch.equal(normal(k, (3, 4)), normal(k, (3, 4)))
    assert not torch.equal(normal(k, (3, 4)), normal(fold_in(k, 1), (3, 4)))
    assert not torch.equal(normal(key(7), (8,)), normal(key(8), (8,)))
    sample = normal(key(0), (200_000,))
    assert abs(sample.mean().item()) < 0.01 and abs(sample.std().item() - 1) < 0.01
    assert abs(((sample > 1.96).float().mean().item()) - 0.025) < 0.002  # the tail, not just the moments


def test_m2_enumerates_every_label_in_one_pass_equal_to_a_loop():
    model, b, k = tiny("m2"), batch(), key(3)
    loss, parts = model(b, weights(alpha=2.0), k)

    # the same objective, label by label, with the same noise
    eps_l = normal(fold_in(k, 0), (6, 3))
    eps_u = normal(fold_in(k, 1), (5, N_CLASSES, 3))
    labelled, _, _ = model.elbo(b.x_labelled, one_hot(b.y_labelled, N_CLASSES, torch.float32), eps_l)
    q_y = model.classifier(b.x_unlabelled).softmax(-1)
    unlabelled = torch.zeros(5)
    for y in range(N_CLASSES):
        y_onehot = one_hot(torch.full((5,), y), N_CLASSES, torch.float32)
        elbo_y, _, _ = model.elbo(b.x_unlabelled, y_onehot, eps_u[:, y])
        unlabelled += q_y[:, y] * (elbo_y - torch.log(q_y[:, y]))
    ce = torch.nn.functional.cross_entropy(model.classifier(b.x_labelled), b.y_labelled)
    expected = -labelled.mean() - unlabelled.mean() + 2.0 * ce
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(parts["ce"], ce)


def test_m2_unlabelled_term_sends_gradient_to_the_classifier():
    # alpha = 0: the cross-entropy is switched off and L(x, y) does not involve q(y|x),
    # so any gradient reaching the classifier comes through U(x)
    model, b = tiny("m2"), batch()
    loss, _ = model(b, weights(alpha=0.0), key(0))
    classifier = list(model.classifier.parameters())
    from_unlabelled = torch.autograd.grad(loss, classifier)
    assert sum(g.abs().sum() for g in from_unlabelled) > 0

    labelled_only, _, _ = model.elbo(b.x_labelled, one_hot(b.y_labelled, N_CLASSES, torch.float32), torch.zeros(6, 3))
    assert torch.autograd.grad(labelled_only.sum(), classifier, allow_unused=True) == (None,) * len(classifier)


def test_baseline_ignores_unlabelled_data():
    model, b = tiny("baseline"), batch()
    loss, parts = model(b, {}, key(0))
    other, _ = model(b._replace(x_unlabelled=torch.rand(9, N_FEATURES)), {}, key(1))
    torch.testing.assert_close(loss, other)
    assert set(parts) == {"ce"}


@pytest.mark.parametrize("name, w", [("m2", {"alpha": 1.0}), ("baseline", {})])
def test_loss_is_finite_and_falls_on_a_tiny_problem(name, w):
    model, b = tiny(name), batch(n_labelled=16, n_unlabelled=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        loss, _ = model(b, weights(**w), key(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0]


def test_every_model_declares_the_hyperparameters_it_takes():
    assert set(models.hyperparameters("m2")) == {"alpha", "hidden", "latent", "lr"}
    assert set(models.hyperparameters("baseline")) == {"hidden", "lr"}
    assert models.hyperparameters("m2")["alpha"].check(-1) == "must be >= 0, got -1"
