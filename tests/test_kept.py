"""Kept models: each seed's weights at its best validation epoch, loaded back as a module without Ray."""
import pytest
import torch

from helpers import tiny_spec
from sweeper import kept, load, results, space
from sweeper.data import load as load_data
from sweeper.spec import parse
from sweeper.packing import plan_of
from sweeper.train import Training
from sweeper.trainable import epoch_and_trial_rows, keep_improved


def train_and_keep(tmp_path, point, epochs=3, **overrides):
    spec = parse(tiny_spec(epochs=epochs, **overrides))
    data = load_data(spec.datasets[0])
    trial = Training(plan_of(spec, space.configuration(spec, point)), data)
    for _ in trial.epochs():
        keep_improved(str(tmp_path), "c", trial, 0, data)
        epochs_rows, trial_rows = epoch_and_trial_rows("c", trial, spec, point)
        results.write_configuration(tmp_path, "c", epochs_rows, trial_rows, spec.hyperparameter_columns())
    return results.read(tmp_path).set_index("trial_id"), data


@pytest.mark.parametrize("point, overrides", [
    ({"model": "m2", "alpha": 5.0}, {}),
    ({"model": "m2", "alpha": 5.0}, {"fixed": {"hidden": 16, "latent": 4, "network": "cnn"}}),  # a trunk tied to two heads
    ({"model": "adgm"}, {"models": ["adgm"], "search": {}, "fixed": {"hidden": 16, "latent": 4, "auxiliary": 4}}),
    ({"model": "ssgmm"}, {"models": ["ssgmm"], "search": {}, "fixed": {"covariance": "diag"}}),
])
def test_a_loaded_model_classifies_the_test_set_as_its_row_says(tmp_path, point, overrides):
    rows_by_trial, data = train_and_keep(tmp_path, point, **overrides)
    assert kept.files(tmp_path) == ["c-seed0", "c-seed1"]  # one file per seed, rewritten as it improved
    for trial_id, row in rows_by_trial.iterrows():
        model = load(tmp_path, trial_id)
        assert model.about["epoch"] == row["best_epoch"] and model.about["model"] == point["model"]
        with torch.no_grad():
            accuracy = (model.classify(torch.as_tensor(data.x_test)).argmax(-1) == torch.as_tensor(data.y_test)).float().mean().item()
        assert accuracy == pytest.approx(row["test_acc"], abs=1e-6)
        raw = torch.load(tmp_path / "models" / f"{trial_id}.pt", weights_only=True)  # plain tensors and text: no pickled code
        assert set(raw) == {"weights", "about"}


def test_nothing_is_kept_before_an_epoch_and_a_rerun_leaves_one_file(tmp_path):
    spec = parse(tiny_spec(epochs=2))
    data = load_data("digits")
    trial = Training(plan_of(spec, space.configuration(spec, {"model": "m2", "alpha": 5.0})), data)
    keep_improved(str(tmp_path), "c", trial, 0, data)
    assert kept.files(tmp_path) == []
    for _ in range(2):  # a retried trial runs its epochs again under the same id
        again = Training(plan_of(spec, space.configuration(spec, {"model": "m2", "alpha": 5.0})), data)
        for _ in again.epochs():
            keep_improved(str(tmp_path), "c", again, 0, data)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["c-seed0.json", "c-seed0.pt", "c-seed1.json", "c-seed1.pt"]
    results.remove_configuration(tmp_path, "c")
    assert kept.files(tmp_path) == []


def test_loading_a_trial_that_kept_nothing_says_so(tmp_path):
    with pytest.raises(results.SweeperError, match="no kept model for trial x-seed0"):
        load(tmp_path, "x-seed0")


def test_inspect_draws_what_fits_the_model_and_counts_active_units(tmp_path):
    from sweeper import inspection

    train_and_keep(tmp_path, {"model": "m2", "alpha": 5.0})
    (tmp_path / "spec.yaml").write_text("name: tiny\ndataset: digits\nmodels: [m2]\nseeds: [0, 1]\nepochs: 3\n")
    found = inspection.inspect(tmp_path, ["c-seed0"])["c-seed0"]
    assert found["figures"] == ["active_units.png", "reconstructions.png", "samples.png", "analogies.png"]
    assert found["analogy_columns"] == 10  # one column per label
    assert 0.0 <= found["probe_accuracy"] <= 1.0
    assert found["active_units"] == sum(v > inspection.ACTIVE_KL for v in found["kl_per_unit"]) and len(found["kl_per_unit"]) == 4
    for name in found["figures"]:
        assert (tmp_path / "inspect" / "c-seed0" / name).stat().st_size > 1000
        assert (tmp_path / "inspect" / "c-seed0" / name).with_suffix(".svg").is_file()
    assert found["test_acc"] == pytest.approx(results.read(tmp_path).set_index("trial_id").loc["c-seed0", "test_acc"], abs=1e-6)


def test_active_units_against_a_known_threshold():
    from sweeper.inspection import active_units, kl_per_unit

    mu = torch.tensor([[0.0, 0.2, 3.0], [0.0, -0.2, -3.0]])  # unit 0 collapsed; unit 1 KL 0.02; unit 2 KL 4.5
    kl = kl_per_unit(mu, torch.zeros_like(mu))
    torch.testing.assert_close(kl, torch.tensor([0.0, 0.02, 4.5]))
    assert active_units(kl) == 2 and active_units(kl, threshold=0.05) == 1


def test_inspect_on_two_dimensional_data_draws_the_confidence_panel(tmp_path):
    from sweeper import inspection

    spec = {"dataset": "circles", "label_count": 50, "batch": {"labelled": 25, "unlabelled": 100},
            "fixed": {"hidden": 16, "latent": 1, "likelihood": "gaussian"}, "search": {}, "models": ["m2"]}
    train_and_keep(tmp_path, {"model": "m2"}, epochs=2, **spec)
    (tmp_path / "spec.yaml").write_text("name: t\ndataset: circles\nmodels: [m2]\nseeds: [0, 1]\nepochs: 2\nlabel_count: 50\n")
    found = inspection.inspect(tmp_path, ["c-seed1"])["c-seed1"]
    assert found["figures"] == ["active_units.png", "two_d.png"]


def test_weights_once_kept_leave_memory_and_the_checkpoint():
    """A checkpoint after an improving epoch holds no copy of the kept weights: they are on disk already."""
    import tempfile

    spec = parse(tiny_spec(epochs=1))
    data = load_data("digits")
    trial = Training(plan_of(spec, space.configuration(spec, {"model": "m2", "alpha": 5.0})), data)
    next(trial.epochs())
    assert all(m.best_weights is not None for m in trial.members)  # epoch 1 improves on nothing
    with tempfile.TemporaryDirectory() as d:
        keep_improved(d, "c", trial, 0, data)
        assert kept.files(d) == ["c-seed0", "c-seed1"]
    assert [m["best_weights"] for m in trial.state_dict()["members"]] == [None, None]
