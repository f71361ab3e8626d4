import math

import pytest
import torch

from sweeper import models
from sweeper.models import Batch, Schedule
from sweeper.models.bounds import bernoulli_log_likelihood, log_normal
from sweeper.models.enumeration import one_hot
from sweeper.models.networks import ImageDecoder, ImageFeatures, JointLinear, reverse_gradient
from sweeper.models.noise import fold_in, key, normal, normal_at

SHAPE, N_CLASSES = (1, 4, 4), 4  # tiny 4x4 "images", so the CNN runs too
N_FEATURES = 16
GRADIENT_MODELS = sorted(name for name, cls in models.MODELS.items() if cls.fitted_by == "gradient")
ENUMERATING = sorted(name for name, cls in models.MODELS.items() if cls.enumerates)


def tiny(name: str, seed: int = 0, **settings) -> models.Model:
    torch.manual_seed(seed)
    return models.build(name, SHAPE, N_CLASSES, {"hidden": 8, "latent": 3, "auxiliary": 3, "features": 5, **settings})


def batch(seed: int = 0, n_labelled: int = 6, n_unlabelled: int = 5) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.rand(n_labelled, N_FEATURES, generator=g),
        torch.randint(0, N_CLASSES, (n_labelled,), generator=g),
        torch.rand(n_unlabelled, N_FEATURES, generator=g),
    )


def weights(model: str, progress: float = 0.9, **values) -> tuple[dict, Schedule]:
    """Every loss weight at its default (or as given), and a schedule at `progress` (forward's second and third arguments)."""
    w = {name: torch.tensor(float(values.get(name, h.default))) for name, h in models.MODELS[model].loss_weights.items()}
    return w, Schedule(epoch=10 * progress, epochs=10, data_ratio=10.0, labelled_share=0.2, unlabelled_count=100.0)


def test_the_bernoulli_likelihood_is_minus_the_cross_entropy_for_every_label_and_member():
    """x l - softplus(l), with x broadcast against every label's logits; grey levels too, extreme logits too."""
    g = torch.Generator().manual_seed(0)
    logits = 8 * torch.randn(3, 5, 4, 16, generator=g)  # members, rows, labels, features
    logits[0, 0, 0, :2] = torch.tensor([60.0, -60.0])
    x = torch.rand(3, 5, 1, 16, generator=g)
    x[1] = x[1].round()
    expected = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), expected, rtol=1e-5, atol=1e-4)
    assert torch.allclose(torch.func.vmap(bernoulli_log_likelihood)(logits, x), expected, rtol=1e-5, atol=1e-4)


def test_a_joint_linear_is_a_linear_over_the_concatenation():
    """Whichever input is the larger after broadcasting (the terms are summed smallest first)."""
    torch.manual_seed(0)
    joint = JointLinear((6, 4), 5)
    torch.nn.init.normal_(joint.bias)
    weight = torch.cat(list(joint.weights), 1)
    for x, labels in [(torch.randn(7, 1, 6), torch.eye(4).expand(1, 4, 4)),  # each x against every label
                      (torch.randn(1, 1, 6), torch.randn(7, 4, 4))]:
        whole = torch.cat([x.expand(7, 4, 6), labels.expand(7, 4, 4)], -1) @ weight.T + joint.bias
        assert joint(x, labels).shape == (7, 4, 5) and torch.allclose(joint(x, labels), whole, atol=1e-5)


def test_under_bfloat16_autocast_a_joint_linear_stays_in_bfloat16_as_a_linear_does():
    """A float32 bias must not promote the (B, K, H) sum back to float32: the activation after it would
    run in float32 and be cast back for the next matmul, which cost a third of the step."""
    torch.manual_seed(0)
    joint, linear = JointLinear((6, 4), 5), torch.nn.Linear(6, 5)
    x, labels = torch.randn(7, 1, 6), torch.eye(4).expand(1, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = joint(x, labels)
        assert out.dtype == linear(x).dtype == torch.bfloat16
    assert joint(x, labels).dtype == torch.float32 and torch.allclose(out.float(), joint(x, labels), rtol=0.02, atol=0.02)
    out.float().sum().backward()
    assert joint.bias.grad.dtype == torch.float32 and torch.allclose(joint.bias.grad, torch.full((5,), 28.0))


def test_noise_is_a_pure_function_of_the_key():
    k = key(7)
    assert torch.equal(normal(k, (3, 4)), normal(k, (3, 4)))
    assert not torch.equal(normal(k, (3, 4)), normal(fold_in(k, 1), (3, 4)))
    assert not torch.equal(normal(key(7), (8,)), normal(key(8), (8,)))
    sample = normal(key(0), (200_000,))
    assert abs(sample.mean().item()) < 0.01 and abs(sample.std().item() - 1) < 0.01
    assert abs(((sample > 1.96).float().mean().item()) - 0.025) < 0.002  # the tail, not just the moments
    assert abs(torch.corrcoef(torch.stack([sample[::2], sample[1::2]]))[0, 1].item()) < 0.01  # a hash's two halves
    index = torch.tensor([[0, 1, 2], [91, 90, 59]])
    assert torch.equal(normal_at(k, index), normal(k, (8, 4, 3)).flatten()[index])  # a few of a large draw, the same


def test_compiled_noise_is_the_same_noise():
    """The draws inside a compiled loss (Stack(compile=True)) are the eager draws bit for bit, at sizes that leave
    a tail past the vector width: the normals too, as inductor does not lower erfinv (noise._erfinv)."""
    from sweeper.models.noise import uniform

    def draws(k):
        return uniform(fold_in(k, 0), (100,)), uniform(k, (7, 37)), normal(fold_in(k, 1), (13, 10, 5)), \
            normal_at(k, torch.arange(3, 300, 7))

    for draw, k in ((draws, key(3)), (torch.func.vmap(draws), torch.stack([key(0), key(1), key(2)]))):
        eager, compiled = draw(k), torch.compile(draw, fullgraph=True)(k)
        assert all(torch.equal(a, b) for a, b in zip(eager, compiled, strict=True))


@pytest.mark.parametrize("name", GRADIENT_MODELS)
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_loss_is_finite_and_falls_on_a_tiny_problem(name, network):
    model, b = tiny(name, network=network), batch(n_labelled=16, n_unlabelled=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        loss, parts = model(b, *weights(name), key(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.99 * sum(losses[:5]) / 5  # the CNN (ReLU, shared trunk) starts nearer the floor of noise data
    assert model.classify(b.x_unlabelled).shape == (16, N_CLASSES)


@pytest.mark.parametrize("name", ENUMERATING)
def test_batched_label_enumeration_equals_a_loop_over_labels(name):
    model, b = tiny(name), batch()
    batched, batched_parts = model(b, *weights(name), key(3))
    looped, looped_parts = model.enumerate_labels("sequential")(b, *weights(name), key(3))
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched_parts["recon"], looped_parts["recon"], rtol=1e-5, atol=1e-5)


def test_m2_unlabelled_term_sends_gradient_to_the_classifier():
    # alpha = 0: the cross-entropy is switched off and L(x, y) does not involve q(y|x),
    # so any gradient reaching the classifier comes through U(x)
    model, b = tiny("m2"), batch()
    loss, _ = model(b, *weights("m2", alpha=0.0), key(0))
    classifier = list(model.classifier.parameters())
    assert sum(g.abs().sum() for g in torch.autograd.grad(loss, classifier)) > 0
    labelled = model.elbo(b.x_labelled, one_hot(b.y_labelled, N_CLASSES, torch.float32), torch.zeros(6, 3), weights("m2")[0]).value
    assert torch.autograd.grad(labelled.sum(), classifier, allow_unused=True) == (None,) * len(classifier)


def importance_sampled_log_px_y(model, x, y, samples=4000):
    """log p(x, y) of an M2 by importance sampling from q(z|x,y): tight with many samples."""
    with torch.no_grad():
        y_hot = one_hot(y, N_CLASSES, x.dtype)
        mu, log_var = model.encoder(x, y_hot)
        z = mu + (0.5 * log_var).exp() * normal(key(11), (samples, *mu.shape))
        decoded = model.decoder(z, y_hot.expand(samples, -1, -1))
        log_px = (x * decoded - torch.nn.functional.softplus(decoded)).sum(-1)
        log_w = log_px + log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) - log_normal(z, mu, log_var) + model.log_prior_y
        return torch.logsumexp(log_w, 0) - math.log(samples)


def test_m2_bounds_are_not_above_log_likelihood():
    model, b = tiny("m2", seed=1), batch(n_labelled=6, n_unlabelled=6)
    with torch.no_grad():
        expected_elbo = []
        for s in range(300):  # E_q[L] by Monte Carlo over the noise
            bound = model.elbo(b.x_labelled, one_hot(b.y_labelled, N_CLASSES, torch.float32),
                               normal(key(100 + s), (6, 3)), weights("m2")[0]).value
            expected_elbo.append(bound)
        elbo = torch.stack(expected_elbo).mean(0)
    log_pxy = importance_sampled_log_px_y(model, b.x_labelled, b.y_labelled)
    assert (elbo <= log_pxy + 0.05).all()
    assert (log_pxy - elbo).max() > 0.01  # the bound is a real bound here, not an identity

    # unlabelled: U(x) <= log p(x) = logsumexp_y log p(x, y)
    x = b.x_unlabelled
    log_px = torch.logsumexp(torch.stack([importance_sampled_log_px_y(model, x, torch.full((6,), k)) for k in range(N_CLASSES)]), 0)
    with torch.no_grad():
        every = torch.stack([model.every_label(x, key(200 + s), weights("m2")[0])[0] for s in range(300)]).mean(0)
        logits = model.classifier(x)
        q = logits.softmax(-1)
        u = (q * every).sum(-1) - (q * logits.log_softmax(-1)).sum(-1)
    assert (u <= log_px + 0.05).all()


def test_optimized_elbo_with_beta_gamma_epsilon_zero_is_m2():
    m2, optimized = tiny("m2"), tiny("optimized_elbo")
    optimized.load_state_dict(m2.state_dict())
    b = batch()
    expected, _ = m2(b, *weights("m2", alpha=2.0), key(5))
    got, _ = optimized(b, *weights("optimized_elbo", alpha=2.0, beta=0, gamma=0, epsilon=0), key(5))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    changed, _ = optimized(b, *weights("optimized_elbo", alpha=2.0, beta=1.0, gamma=1.0, epsilon=0.1), key(5))
    assert not torch.isclose(changed, got)


def test_jurasinski_simplified_splits_into_a_vae_and_a_classifier():
    model, b = tiny("jurasinski_simplified"), batch()
    w, now = weights("jurasinski_simplified", lam=0.5)
    loss, parts = model(b, w, now, key(4))
    vae_l, _, _, z_l = model.vae.bound(b.x_labelled, fold_in(key(4), 0), w)
    vae_u, _, _, _ = model.vae.bound(b.x_unlabelled, fold_in(key(4), 1), w)
    classifier = torch.nn.functional.cross_entropy(model.label_given_z(z_l), b.y_labelled)
    torch.testing.assert_close(loss, -(0.5 * vae_l.mean() + vae_u.mean()) + 0.5 * classifier)


def test_adgm_with_1_and_10_samples_differ_only_in_the_sample_count():
    one, ten = tiny("adgm", mc_samples=1), tiny("adgm", mc_samples=10)
    assert one.state_dict().keys() == ten.state_dict().keys()
    assert all(torch.equal(one.state_dict()[k], ten.state_dict()[k]) for k in one.state_dict())
    b = batch()
    spread = lambda m: torch.stack([m(b, *weights("adgm"), key(s))[0] for s in range(30)]).detach().std()  # noqa: E731
    assert spread(ten) < 0.6 * spread(one)  # more samples, a less noisy estimate of the same bound


def test_the_activation_option_sets_every_mlp_hidden_nonlinearity_of_the_adgm():
    kinds = lambda m: {type(module) for module in m.modules()} & {torch.nn.Softplus, torch.nn.ReLU}  # noqa: E731
    assert kinds(tiny("adgm", depth=2, generative_a="conditional")) == {torch.nn.Softplus}
    relu = tiny("adgm", depth=2, generative_a="conditional", activation="relu")
    assert kinds(relu) == {torch.nn.ReLU}
    softplus = tiny("adgm", depth=2, generative_a="conditional")
    b = batch()
    assert not torch.equal(relu(b, *weights("adgm"), key(0))[0], softplus(b, *weights("adgm"), key(0))[0])
    assert models.MODELS["adgm"].ignored({"network": "cnn"}) >= {"activation"}  # the CNN's layers are ReLU whatever it says


def test_the_adgm_weight_prior_adds_minus_its_weight_times_log_n01_of_the_weight_matrices_per_unlabelled_point():
    model, b = tiny("adgm", depth=2, generative_a="conditional", z_given_a="yes"), batch()
    w, now = weights("adgm")
    without, _ = model(b, w, now, key(2))
    with_prior, parts = model(b, w | {"weight_prior": torch.tensor(2.0)}, now, key(2))
    matrices = [p for name, p in model.named_parameters() if "bias" not in name]
    assert all(p.dim() == 2 for p in matrices) and len(matrices) > 10
    log_prior = sum(torch.distributions.Normal(0.0, 1.0).log_prob(p).sum() for p in matrices)
    torch.testing.assert_close(with_prior - without, -2.0 * log_prior / now.unlabelled_count)
    assert set(parts) == {"recon", "kl", "ce"}
    # its gradient is the prior's: 2 W / N_u on a weight matrix, nothing on a bias
    bias = model.q_a.body.first.bias
    gradient = lambda loss, p: torch.autograd.grad(loss, p, retain_graph=True)[0]  # noqa: E731
    torch.testing.assert_close(gradient(with_prior, bias), gradient(without, bias))
    weight = model.q_a.body.first.weights[0]
    torch.testing.assert_close(gradient(with_prior, weight) - gradient(without, weight), 2.0 * weight / now.unlabelled_count)


def test_adversarial_m2_plays_the_adversary_against_the_encoder():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    (reverse_gradient(x) * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-3.0, -4.0]
    model, b = tiny("m2_adversarial"), batch()
    _, parts = model(b, *weights("m2_adversarial"), key(0))
    grad = torch.autograd.grad(parts["adversary"], [model.adversary[0].weight, model.encoder.body.first.weights[0]])
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0


def test_m1_trains_the_vae_first_then_only_the_classifier():
    model, b = tiny("m1", vae_fraction=0.5), batch()
    vae_loss, vae_parts = model(b, *weights("m1", progress=0.2), key(0))
    assert set(vae_parts) == {"recon", "kl"}
    assert torch.autograd.grad(vae_loss, list(model.head.parameters()), allow_unused=True) == (None,) * 4
    head_loss, _ = model(b, *weights("m1", progress=0.5), key(0))
    assert torch.autograd.grad(head_loss, list(model.vae.parameters()), allow_unused=True) == (None,) * len(list(model.vae.parameters()))
    for kind in ("logistic", "svm"):
        linear = tiny("m1", classifier=kind)
        loss, _ = linear(b, *weights("m1", progress=0.9), key(0))
        assert isinstance(linear.head, torch.nn.Linear) and math.isfinite(loss.item())


def test_ssgmm_log_likelihood_never_falls_and_it_separates_two_blobs_from_4_labels():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [4.0, 1.0]])
    y = torch.arange(400) % 2
    x = centres[y] + torch.randn(400, 2, generator=g) @ torch.tensor([[1.0, 0.3], [0.0, 0.6]])
    labelled = torch.tensor([0, 1, 2, 3])
    for covariance in ("full", "diag"):
        model = models.build("ssgmm", (2,), 2, {"covariance": covariance})
        nll = [model.em_step(x[labelled], y[labelled], x[4:]).item() for _ in range(15)]
        assert all(later <= earlier + 1e-9 for earlier, later in zip(nll, nll[1:]))
        accuracy = (model.classify(x[4:]).argmax(-1) == y[4:]).float().mean().item()
        assert accuracy > 0.95


def test_cnn_networks_keep_raj_shapes():
    """conv 32, conv 64 (stride 2), FC 512; decoder FC 512, FC 3136 (MNIST) / 4096 (CIFAR), two transposed convs."""
    for image in ((1, 28, 28), (3, 32, 32)):
        trunk = ImageFeatures(image)
        assert trunk(torch.zeros(2, math.prod(image))).shape == (2, 512)
        assert trunk.dense[0].in_features == 64 * (image[1] // 4) * (image[2] // 4)
        decoder = ImageDecoder((50, 10), image)
        assert decoder.dense[1].out_features == {1: 3136, 3: 4096}[image[0]]
        assert decoder(torch.zeros(2, 5, 50), torch.zeros(1, 5, 10)).shape == (2, 5, math.prod(image))
    m2 = models.build("m2", (1, 28, 28), 10, {"hidden": 512, "latent": 50, "network": "cnn"})
    assert m2.classifier[0] is m2.encoder.trunk  # one trunk for the z and y heads, as in the paper
    assert isinstance(m2.classifier[1], torch.nn.Linear) and m2.classifier[1].in_features == 512


def test_baseline_ignores_unlabelled_data():
    model, b = tiny("baseline"), batch()
    loss, parts = model(b, *weights("baseline"), key(0))
    other, _ = model(b._replace(x_unlabelled=torch.rand(9, N_FEATURES)), *weights("baseline"), key(1))
    torch.testing.assert_close(loss, other)
    assert set(parts) == {"ce"}


def test_every_model_declares_the_hyperparameters_it_takes():
    assert {"alpha", "sigma2", "likelihood", "kl_warmup", "alpha_scale", "lr"} <= set(models.hyperparameters("m2"))
    assert {"lam"} <= set(models.hyperparameters("jurasinski")) and {"beta", "gamma", "epsilon"} <= set(models.hyperparameters("optimized_elbo"))
    assert "lr" not in models.hyperparameters("ssgmm") and "mc_samples" in models.hyperparameters("adgm")
    assert models.hyperparameters("m2")["alpha"].check(-1) == "must be >= 0, got -1"
    assert models.hyperparameters("m2")["likelihood"].check("poisson") == "expected one of bernoulli, gaussian, got 'poisson'"


def test_m1_stages_by_m1_epochs_train_the_vae_first_then_the_next_stage_for_the_spec_epochs():
    """m1_epochs 3 and a spec of 10 epochs: the trial runs 13, the VAE the first 3, the next stage the 10 after."""
    from sweeper.models.m1 import Stages

    assert models.MODELS["m1m2"].trial_epochs({"m1_epochs": 3}, 10) == models.MODELS["m1"].trial_epochs({"m1_epochs": 3}, 10) == 13
    assert models.MODELS["m1m2"].trial_epochs({}, 10) == models.MODELS["m2"].trial_epochs({"m1_epochs": 3}, 10) == 10
    stages = Stages(vae_fraction=0.5, m1_epochs=3)  # vae_fraction has no say once m1_epochs is given
    at = [Schedule(epoch=e, epochs=13, data_ratio=10.0, labelled_share=0.2, unlabelled_count=100.0) for e in range(13)]
    assert [stages.training_vae(s) for s in at] == [True] * 3 + [False] * 10
    assert stages.after_vae(at[3]) == Schedule(epoch=0, epochs=10, data_ratio=10.0, labelled_share=0.2, unlabelled_count=100.0)
    assert stages.after_vae(at[12]).progress == 0.9
    by_share = Stages(vae_fraction=0.5, m1_epochs=0)  # as before m1_epochs: half of the trial's epochs
    assert [by_share.training_vae(s._replace(epochs=10)) for s in at[:10]] == [True] * 5 + [False] * 5
    model, b = tiny("m1m2", m1_epochs=3), batch()
    _, vae_parts = model(b, *weights("m1m2", progress=0.2), key(0))  # epoch 2: M1's
    assert set(vae_parts) == {"recon", "kl"}
    _, m2_parts = model(b, *weights("m1m2", progress=0.4), key(0))  # epoch 4: M2's, where vae_fraction 0.5 would say M1's
    assert "ce" in m2_parts


def test_m1_widths_of_its_own_reach_the_vae_and_leave_the_rest_at_hidden_and_depth():
    def widths(net) -> list[int]:
        return [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] + [
            m.weights[0].shape[0] for m in net.modules() if isinstance(m, JointLinear)]

    model = tiny("m1m2", m1_hidden=7, m1_depth=2)  # hidden 8, depth 1 for M2
    assert sorted(widths(model.m1.encoder)) == [7, 7, 2 * 5] and sorted(widths(model.m1.decoder)) == [7, 7, N_FEATURES]
    assert sorted(widths(model.m2.encoder)) == [2 * 3, 8] and sorted(widths(model.m2.classifier)) == [N_CLASSES, 8]
    m1 = tiny("m1", m1_hidden=7, m1_depth=2)
    assert sorted(widths(m1.vae.encoder)) == [2 * 3, 7, 7] and sorted(widths(m1.head)) == [N_CLASSES, 8]
    default = tiny("m1m2")  # 0: M1 as wide and deep as M2
    assert sorted(widths(default.m1.encoder)) == [8, 2 * 5]


def test_active_features_are_those_whose_posterior_mean_varies_over_x_above_the_threshold():
    """Kingma's rule: np.std over the unlabelled x (no Bessel correction) of q(z1|x)'s mean, kept when above 0.1;
    measured once, as M2's stage begins."""
    from sweeper.models.m1m2 import active_features

    means = torch.tensor([[0.3, -0.1, -1.0, 5.0], [0.3, 0.1, 1.0, 5.0]])  # stds 0, 0.1 (0.14 with Bessel's), 1, 0
    assert active_features(means, 0.12).tolist() == [0.0, 0.0, 1.0, 0.0]
    model = tiny("m1m2", drop_inactive=1e-3)
    with torch.no_grad():  # features 1 and 3 of q(z1|x)'s mean no longer depend on x
        model.m1.encoder.body.rest[-2].weight[[1, 3]] = 0.0
    x = torch.rand(50, N_FEATURES, generator=torch.Generator().manual_seed(0))
    assert model.refresh(x)["m2.observed"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert tiny("m1m2").refresh(x) == {}  # drop_inactive 0: nothing to refresh
    at = [Schedule(epoch=e, epochs=6, data_ratio=10.0, labelled_share=0.2, unlabelled_count=100.0) for e in range(6)]
    assert [tiny("m1m2", drop_inactive=0.1, m1_epochs=3).refresh_due(s) for s in at] == [False] * 3 + [True] + [False] * 2
    assert [tiny("m1m2", drop_inactive=0.1).refresh_due(s) for s in at] == [False] * 3 + [True] + [False] * 2  # vae_fraction 0.5
    assert not any(tiny("m1m2", m1_epochs=3).refresh_due(s) for s in at)


def test_a_dropped_feature_is_left_out_of_m2_and_dropping_none_changes_nothing():
    w, at_m2 = weights("m1m2", progress=0.9)
    kept_all = tiny("m1m2", drop_inactive=0.1)
    loss, parts = kept_all(batch(), w, at_m2, key(0))
    today, today_parts = tiny("m1m2")(batch(), w, at_m2, key(0))  # same seed: the same weights, without the mask
    assert torch.equal(loss, today) and all(torch.equal(parts[k], today_parts[k]) for k in parts)

    for variance in ("sigma2", "learned"):
        model = tiny("m1m2", drop_inactive=0.1, feature_variance=variance)
        model.m2.observed.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0]))
        loss, _ = model(batch(), w, at_m2, key(0))
        first_layers = [model.m2.encoder.body.first.weights[0], model.m2.classifier[1][0].weight]
        decoder = model.m2.decoder.body if variance == "learned" else model.m2.decoder
        grads = torch.autograd.grad(loss, first_layers + [decoder.rest[-2].weight])
        for grad in grads[:2]:  # the dropped features' input weights learn nothing, the others do
            assert grad[:, [1, 3]].abs().sum() == 0 and grad[:, [0, 2, 4]].abs().sum() > 0
        out = grads[2]  # p(z1|y,z2)'s outputs for them (the mean, and the log-variance when learned) neither
        dropped_rows = [1, 3] + ([5 + 1, 5 + 3] if variance == "learned" else [])
        assert out[dropped_rows].abs().sum() == 0 and out[[0, 2, 4]].abs().sum() > 0
    observed = torch.tensor([1.0, 0.0, 1.0])
    mean, log_var, x = torch.zeros(3), torch.tensor([0.5, -2.0, 0.1]), torch.tensor([0.3, 9.0, -0.2])
    from sweeper.models.bounds import gaussian_log_likelihood, gaussian_log_likelihood_learned

    kept = [0, 2]
    torch.testing.assert_close(gaussian_log_likelihood_learned(mean, log_var, x, observed),
                               gaussian_log_likelihood_learned(mean[kept], log_var[kept], x[kept]))
    torch.testing.assert_close(gaussian_log_likelihood(mean, x, 0.5, observed), gaussian_log_likelihood(mean[kept], x[kept], 0.5))


def test_every_mlp_of_the_adgm_takes_depth_hidden_layers():
    """Maaløe's code gives q(y|a,x) and p(a|x,y,z) the two hidden layers of its other networks (qy_hid, pa_hid,
    run_mnist.py:27-28): at depth 2 each has three linear maps, one more than at depth 1."""
    def linear_maps(module: torch.nn.Module) -> int:
        return sum(isinstance(m, (torch.nn.Linear, JointLinear)) for m in module.modules())

    for depth in (1, 2):
        adgm = tiny("adgm", depth=depth, generative_a="conditional")
        assert linear_maps(adgm.q_y_body) == linear_maps(adgm.p_a) == linear_maps(adgm.q_a) == depth + 1
