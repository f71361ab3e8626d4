"""What several test files build: rows as a sweep writes them, and a spec that trains in a second."""

# Rows as a sweep writes them, for tests of the results store, reports and progress.
HYPER = {"alpha": "number", "hidden": "number", "lr": "number"}


def trial_row(config_id, model, seed, status="completed", test_acc=0.9, **hyper):
    return {"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": model, "seed": seed,
            "dataset": "digits", "label_count": 100, "hidden": 16.0, "lr": 1e-3, **hyper,
            "status": status, "best_val_acc": test_acc, "test_acc": test_acc, "best_epoch": 2, "epochs": 2, "wall_s": 1.0}


def epoch_rows(config_id, model, seed, epochs=2, loss=1.0):
    return [{"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": model, "seed": seed,
             "epoch": e, "loss": loss, "ce": 0.5, "val_acc": 0.8, "test_acc": 0.8, "wall_s": 0.1} for e in range(1, epochs + 1)]


def tiny_spec(**overrides) -> dict:
    """A spec that trains in a second: digits, tiny networks, two epochs."""
    spec = {
        "name": "tiny",
        "dataset": "digits",
        "label_count": 50,
        "models": ["m2", "baseline"],
        "seeds": [0, 1],
        "epochs": 2,
        "batch": {"labelled": 25, "unlabelled": 200},
        "fixed": {"hidden": 16, "latent": 4},
        "search": {"alpha": [0.5, 5.0]},
        "sampler": "grid",
        "resources": {"cpu": 1, "gpu": 0},
    }
    spec.update(overrides)
    return spec
