"""The spec's JSON Schema: what `sweeper schema` prints, what editors read, and what the checks accept."""
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers import tiny_spec
from sweeper import spec as spec_module
from sweeper.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "search_spaces").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../docs/spec.schema.json\n"


def validator():
    return jsonschema.Draft202012Validator(json.loads(spec_module.json_schema()))


def test_the_schema_file_editors_read_is_what_sweeper_schema_prints(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == (ROOT / "docs" / "spec.schema.json").read_text(), "regenerate: sweeper schema > docs/spec.schema.json"
    schema = json.loads(printed)
    assert set(schema["properties"]) == set(spec_module.Spec.keys()) | {"metric"}
    assert schema["required"] == ["name", "dataset", "models", "seeds", "epochs"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_names_the_schema_and_meets_it(path):
    text = path.read_text()
    assert text.startswith(MODELINE)
    assert [e.message for e in validator().iter_errors(yaml.safe_load(text))] == []


@pytest.mark.parametrize("change, where", [
    ({"sampler": "tpee"}, "sampler"),
    ({"fixed": {"hidden": 0}}, "hidden"),
    ({"fixed": {"likelihood": "poisson"}}, "likelihood"),
    ({"search": {"alpha": {"low": 0, "hi": 1}}}, "alpha"),
    ({"resources": {"cpu": 0}}, "cpu"),
    ({"batch": {"labelled": 5}, "epochs": 0}, "epochs"),
    ({"scheduler": "hyperband"}, "scheduler"),
    ({"models": ["m3"]}, "models"),
    ({"tracking": {"kind": "mlflow", "url": "x"}}, "tracking"),
    ({"zip": [1]}, "zip"),
])
def test_the_schema_refuses_what_the_checks_refuse(change, where):
    raw = tiny_spec(**change)
    with pytest.raises(Exception):  # noqa: B017 - the checks' own message is tested in test_spec and test_hostile
        spec_module.parse(raw)
    problems = list(validator().iter_errors(raw))
    assert problems and any(where in json.dumps(list(p.absolute_path)) + p.message for p in problems), [p.message for p in problems]


def test_the_schema_accepts_the_shorthands_and_both_forms_of_an_axis():
    raw = tiny_spec(scheduler="asha", tracking="mlflow", dataset=["digits"], batch=[{"labelled": 5, "unlabelled": 50}],
                    search={"alpha": [0.1, 1]}, sampler="tpe", trials=3, pack=1)
    spec_module.parse(raw)
    assert list(validator().iter_errors(raw)) == []
