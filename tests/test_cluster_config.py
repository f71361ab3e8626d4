import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def ray_schema() -> dict:
    ray = pytest.importorskip("ray")
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def test_cluster_yaml_validates_against_rays_own_schema():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    schema = ray_schema()
    assert {"cluster_name", "provider", "available_node_types"} <= set(schema["properties"])  # Ray's, not an empty one
    jsonschema.validate(config, schema)
    assert config["available_node_types"]["gpu_worker"]["max_workers"] >= 1
    assert any("pip install" in c and "sweeper" in c for c in config["setup_commands"])
