import os

import pytest
import yaml

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec (a dict, or YAML text) to a file; returns its path."""

    def write(content, name="spec.yaml"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


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
