"""A spec file (YAML) → a validated, typed Spec. Nothing here runs anything, and nothing imports torch.

The pydantic models are the schema. Spec's fields are the top-level keys of a spec file, and each mapping
under a key is a small Section of its own (Resources, Study, Step, Scheduler, a Batch, and the data
package's DataOptions for `data:`), so `spec.resources.cpu` is `resources: {cpu: ...}` in the file,
`resources.cpu=2` on the command line and `resources.cpu` in a message. A field says its key, its
default (none: required), the values it takes and how they are checked, once (schema.py); the keys a file
may hold, the JSON Schema (`sweeper schema`) and the YAML written back (to_yaml) follow from the fields.
What no key says alone (the data, the sampler, the pack) is checked after the keys (_check).

Every problem is a SpecError that carries its key; the file is added where a spec is read (Spec.parse,
load), so a message is one line: "FILE: KEY: what is wrong; what to do".
"""
from __future__ import annotations

import errno
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import ConfigDict, Field, model_validator

from . import hyperparameters
from .data.base import DataOptions
from .errors import SpecError, first_line
from .schema import (
    INTEGER_LIMIT,
    Boolean,
    Choice,
    Integer,
    Section,
    as_list,
    at,
    boolean,
    checked,
    choice,
    given,
    integer,
    naming,
    number,
    shape,
    shown,
    shown_key,
    text,
)
from .spec_reader import override, read_text, read_yaml

SAMPLERS = ("grid", "random", "tpe", "cmaes", "nsga2")
OBJECTIVES = {"val_acc": "max", "wall_s": "min"}  # what a sampler optimises: the first, or both (nsga2)
SCHEDULERS = ("asha", "median")
DATA_AXES = ("dataset", "label_count", "batch")  # data settings that may be lists, i.e. grid axes
MAX_SEED = 2**63 - 1  # a training seed becomes an int64 noise key and torch's manual_seed
MAX_SAMPLER_SEED = 2**32 - 1  # Optuna's samplers seed NumPy's RandomState, which takes 32 bits
MAX_NAME = 150  # bytes: a folder name is at most 255 on common filesystems, and sweeper adds suffixes
MAX_CONFIGURATIONS = 100_000  # every grid point becomes an Optuna trial and a results file
MAX_BATCH = 2**20  # points of one step; no dataset of sweeper's has more (the data's own size is checked too)


# ---------------------------------------------------------------------------- sections


BatchSize = Integer(1, MAX_BATCH)


class Batch(Section):
    """`batch: {labelled: N, unlabelled: N}`: the points of one step."""

    labelled: BatchSize = 100
    unlabelled: BatchSize = 100


class Scheduler(Section):
    """`scheduler: {type, grace_period, reduction_factor}` or `scheduler: asha`: early stopping on validation
    accuracy, by a Ray Tune scheduler for a configuration trained alone, by the same rule for each member of a pack."""

    shorthands: ClassVar[tuple[str, ...]] = SCHEDULERS
    kind: Choice(SCHEDULERS, "scheduler") = Field(alias="type")  # asha or median
    grace_period: Integer(1) = 1  # epochs before a trial may be stopped
    reduction_factor: Integer(2) = 3  # asha only

    @classmethod
    def shorthand(cls, raw):
        if isinstance(raw, str):  # `scheduler: asha`: the defaults otherwise
            return {"type": raw}
        if not isinstance(raw, dict):
            raise SpecError(f"expected {', '.join(SCHEDULERS)}, or {shape(cls.keys())}")
        return raw


MAX_RESOURCE = 10_000  # CPUs or GPUs one trial may ask for: more than any node has (Ray's own bound is near 1e15)


def _cpu(value) -> float:
    if number(value) <= 0 or value > MAX_RESOURCE:
        raise SpecError(f"must be > 0 and <= {MAX_RESOURCE}, got {shown(value)}")
    return value


def _gpu(value) -> float:
    if number(value) < 0 or value > MAX_RESOURCE:
        raise SpecError(f"must be >= 0 (a fraction shares one GPU between trials) and <= {MAX_RESOURCE}, got {shown(value)}")
    return value


class Resources(Section):
    """`resources: {cpu: N, gpu: N}`: what each Ray trial reserves."""

    cpu: checked(float, _cpu, Annotated[float, Field(gt=0, le=MAX_RESOURCE)]) = 1.0
    # a fraction shares one GPU between trials
    gpu: checked(float, _gpu, Annotated[float, Field(ge=0, le=MAX_RESOURCE)]) = 0.0


class Study(Section):
    """`study: {heartbeat_s: N, reclaim_after_s: N}`: a study shared by several drivers (--study)."""

    heartbeat_s: Integer(1) = 10  # how often a driver says its configurations are alive
    reclaim_after_s: Integer(1) = 60  # how long after its last word another driver takes them over; left out: 6 heartbeats

    @classmethod
    def shorthand(cls, raw):
        heartbeat_s = raw.get("heartbeat_s") if isinstance(raw, dict) else None
        if isinstance(heartbeat_s, int) and "reclaim_after_s" not in raw:  # left out: 6 heartbeats
            return {**raw, "reclaim_after_s": 6 * heartbeat_s}
        return raw

    @model_validator(mode="after")
    def _reclaim_after_heartbeats(self):
        if self.reclaim_after_s < 2 * self.heartbeat_s:  # one late heartbeat must not hand a live configuration to another driver
            raise SpecError(f"must be at least twice heartbeat_s ({2 * self.heartbeat_s}), got {self.reclaim_after_s}", "reclaim_after_s")
        return self


def _true_false_auto(value) -> bool | str:
    if value != "auto" and not isinstance(value, bool):
        raise SpecError(f"expected true, false or auto, got {shown(value)}")
    return value


TrueFalseAuto = checked(bool | str, _true_false_auto, bool | Literal["auto"])


class Step(Section):
    """`step: {bf16: true|false|auto, compile: true|false|auto}`: how the training step runs."""

    # The step's matmuls in bfloat16. auto (the default): where the device multiplies bfloat16
    # natively, since there it cost no accuracy beyond seed noise (docs/performance.md); float32 elsewhere.
    bf16: TrueFalseAuto = "auto"
    # The step's loss through torch.compile. auto (the default): where the trial's work left earns the compile
    # back twenty times over (train.compile_pays); never for a smoke run or a test's tiny trials.
    compile: TrueFalseAuto = "auto"


TRACKERS = {"mlflow": ("uri", "experiment"), "wandb": ("project", "entity", "mode")}  # each tracker's own keys
WANDB_MODES = ("online", "offline", "disabled")
OptionalText = checked(str | None, text, str)


class Tracking(Section):
    """`tracking: mlflow|wandb`, `{kind: mlflow, uri, experiment}` or `{kind: wandb, project, entity, mode}`: a tracker
    run per seed, grouped by configuration (tracking.py). Left out: none."""

    shorthands: ClassVar[tuple[str, ...]] = tuple(TRACKERS)
    kind: Choice(tuple(TRACKERS), "tracker")  # mlflow or wandb
    uri: OptionalText = None  # mlflow: a server or store; left out: a SQLite store in the results directory
    experiment: OptionalText = None  # mlflow; left out: the spec's name
    project: OptionalText = None  # wandb; left out: the spec's name
    entity: OptionalText = None  # wandb; left out: the account's default
    mode: Choice(WANDB_MODES, "W&B mode") | None = None  # wandb; left out: $WANDB_MODE

    @classmethod
    def shorthand(cls, raw):
        if isinstance(raw, str):  # `tracking: mlflow`: the defaults otherwise
            raw = {"kind": raw}
        if not isinstance(raw, dict):
            raise SpecError(f"expected {', '.join(TRACKERS)}, or {shape(cls.keys())}")
        kind = given(cls.keys(), raw)["kind"]
        if kind in TRACKERS:
            for key in raw:
                if key != "kind" and key not in TRACKERS[kind]:
                    raise SpecError(f"is not a key of {kind}; {kind} takes: kind, {', '.join(TRACKERS[kind])}", shown_key(key))
        return raw

    @model_validator(mode="after")
    def _no_secret(self):
        from . import redact

        if self.uri and redact.secrets(self.uri):  # the spec is saved with the results, and shown
            raise SpecError(f"{redact.url(self.uri)} holds a password or token, and the spec is saved with the results; "
                            "give it as $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD (or $MLFLOW_TRACKING_TOKEN)", "uri")
        return self


# ---------------------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Grid:
    """A searched hyperparameter's list of values: each is a configuration."""

    values: tuple[float | str, ...]


class Range(Section):
    """`{low, high, log}`: a searched hyperparameter's interval, sampled (never by a grid)."""

    low: float
    high: float
    log: Boolean = False


def _taken(model_names) -> dict[str, list[str]]:
    """Each hyperparameter the models take, with the models that take it."""

    taken: dict[str, list[str]] = {}
    for m in model_names:
        for hp in hyperparameters.of(m):
            taken.setdefault(hp, []).append(m)
    return taken


def _definition(hp, taken: dict[str, list[str]], model_names):
    """What the first model taking `hp` says of it (bounds, choices, default); refused if no model takes it."""

    if hp not in taken:
        if len(model_names) == 1:
            problem = f"{model_names[0]} takes no hyperparameter {shown(hp)}"
            listing = f"{model_names[0]} takes: {', '.join(sorted(taken))}"
        else:
            problem = f"none of {', '.join(model_names)} takes the hyperparameter {shown(hp)}"
            listing = f"they take: {', '.join(sorted(taken))}"
        raise SpecError(f"{problem}; remove it or add a model that takes it ({listing})")
    return hyperparameters.of(taken[hp][0])[hp]


def _hyper_value(definition, value, key=None):
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    problem = definition.check(value)
    if problem:
        raise SpecError(problem, key)
    return value


def _fixed(raw, info) -> dict[str, float | str | tuple]:
    """`fixed: {hyperparameter: value}`: each taken by a model of the spec, and valid for it. A zipped one is a
    list of numbers, paired element by element with the other zipped lists (a size per label count)."""
    zipped = info.data.get("zip", ())

    def value(hp, value, definition):
        if hp not in zipped and isinstance(value, list):
            raise SpecError(f"a list is fixed only when zipped with data axes (zip: [label_count, {hp}]); "
                            f"for a grid over its values, use search: {{{hp}: [...]}}")
        if hp not in zipped:
            return _hyper_value(definition, value)
        if definition.choices is not None:
            raise SpecError("is an option (text choices); zip pairs numbers only")
        if not isinstance(value, list) or not value:
            raise SpecError(f"is zipped, so it takes a list of values, one per element of the other zipped lists; got {shown(value)}")
        return tuple(_hyper_value(definition, v) for v in value)

    return _per_hyperparameter(raw, info.data["models"], "values", value)


def _search(raw, info) -> dict[str, Grid | Range]:
    """`search: {hyperparameter: [values] or {low, high, log}}`: each taken by a model, and not also fixed."""
    def domain(hp, value, definition) -> Grid | Range:
        if hp in info.data.get("fixed", {}):
            raise SpecError("is also under 'fixed'; a hyperparameter is either fixed or searched")
        return _domain(value, definition)

    return _per_hyperparameter(raw, info.data["models"], "a list (grid) or {low, high, log} (range)", domain)


def _per_hyperparameter(raw, model_names, what: str, parse) -> dict:
    """A mapping of hyperparameter names, each taken by a model of the spec, to `parse(name, value, definition)`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(f"expected a mapping of hyperparameter names to {what}")
    taken = _taken(model_names)
    parsed = {}
    for hp, value in raw.items():
        with at(hp):
            parsed[hp] = parse(hp, value, _definition(hp, taken, model_names))
    return parsed


def _domain(domain, definition) -> Grid | Range:
    """A list of values (a Grid) or {low, high, log} (a Range), each value valid for the hyperparameter."""
    if isinstance(domain, list):
        if not domain:
            raise SpecError("empty grid; list at least one value")
        values = tuple(_hyper_value(definition, v) for v in domain)
        if len(set(values)) != len(values):
            raise SpecError("a grid value is listed twice")
        return Grid(values)
    if not isinstance(domain, dict):
        raise SpecError(f"expected a list of values (grid) or {{low, high, log}} (range), got {shown(domain)}")
    if definition.choices is not None:
        raise SpecError("is an option (text choices), so it takes a list of choices, not a range {low, high}")
    values = {**Range.keys(), **given(Range.keys(), domain)}
    low = _hyper_value(definition, values["low"], "low")
    high = _hyper_value(definition, values["high"], "high")
    log = boolean(values["log"], "log")
    if low > high:
        raise SpecError(f"low {shown(low)} is above high {shown(high)}")
    if log and low <= 0:
        raise SpecError(f"a log range needs low > 0, got {shown(low)}")
    return Range(low=float(low), high=float(high), log=log)


def _hyperparameters_schema(schema: dict, searched: bool = False) -> None:
    """The JSON Schema of `fixed` (or `search`): every hyperparameter of every model, with its bounds or choices."""

    properties = {}
    for m in sorted(hyperparameters.MODELS):
        for name, h in hyperparameters.of(m).items():
            value = {"enum": list(h.choices)} if h.choices else {"type": "integer" if h.integer else "number"}
            value.update({k: v for k, v in (("minimum", h.low), ("maximum", h.high)) if v is not None and not h.choices})
            value["description"] = h.help
            interval = {"type": "object", "properties": {"low": value, "high": value, "log": {"type": "boolean"}},
                        "required": ["low", "high"], "additionalProperties": False}
            as_list = {"type": "array", "items": value, "minItems": 1}  # searched: a grid; fixed: zipped with the data axes
            if searched:
                properties[name] = {"anyOf": [as_list, interval]}
            else:
                properties[name] = value if h.choices else {"anyOf": [value, as_list], "description": h.help}
    schema.update(type="object", properties=dict(sorted(properties.items())), additionalProperties=False)


# ---------------------------------------------------------------------------- top-level keys


def _name(value) -> str:
    name = text(value)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise SpecError(f"must be letters, digits, '-', '_' or '.', got {shown(name)}")
    if len(name.encode()) > MAX_NAME:  # it names folders (results/<name>-smoke-<driver>, Tune's), with room to spare
        raise SpecError(f"is {len(name.encode())} bytes long; keep it to {MAX_NAME} (it names the results folders)")
    return name


def _description(value) -> str:
    if not isinstance(value, str):
        raise SpecError("expected text")
    return value


def _datasets(value) -> tuple[str, ...]:
    from .data import DATASETS

    datasets = as_list(value)
    if not datasets:
        raise SpecError("empty list; give a dataset or a list of datasets")
    for d in datasets:
        if not isinstance(d, str) or d not in DATASETS:
            raise SpecError(f"unknown dataset {shown(d)}; known datasets: {', '.join(sorted(DATASETS))}")
    if len(set(datasets)) != len(datasets):
        raise SpecError("a dataset is listed twice")
    return tuple(datasets)


def _label_counts(value) -> tuple[int, ...]:
    counts = as_list(value)
    if not counts:
        raise SpecError("empty list; give a number or a list of numbers")
    for count in counts:
        integer(count, low=1)
    if len(set(counts)) != len(counts):
        raise SpecError("a label count is listed twice; it would train the same configurations twice")
    return tuple(counts)


def _models(value) -> tuple[str, ...]:

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise SpecError("expected a non-empty list of model names")
    for m in names:
        if not isinstance(m, str) or m not in hyperparameters.MODELS:
            raise SpecError(f"unknown model {shown(m)}; registered models: {', '.join(sorted(hyperparameters.MODELS))}")
    if len(set(names)) != len(names):
        raise SpecError("a model is listed twice")
    return tuple(names)


def _seeds(value) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError("expected a non-empty list of integers, e.g. [0, 1, 2]")
    for seed in value:
        integer(seed, low=0, high=MAX_SEED)
    if len(set(value)) != len(value):
        twice = next(s for s in value if value.count(s) > 1)
        raise SpecError(f"seed {twice} is listed twice; each seed runs once per configuration")
    return tuple(value)


def _batches(value) -> tuple[Batch, ...]:
    if value == []:
        raise SpecError("empty list; give {labelled: N, unlabelled: N} or a list of them")
    batches = []
    for raw in as_list(value):
        if not isinstance(raw, (dict, Batch)):
            raise SpecError(f"expected {shape(Batch.keys())}, or a list of them")
        batches.append(Batch.model_validate(raw))
    if len(set(batches)) != len(batches):
        raise SpecError("a batch size is listed twice; it would train the same configurations twice")
    return tuple(batches)


ZIPPABLE = f"zip pairs lists of: {', '.join(DATA_AXES)}, or of numbers under fixed"


def _zip(value) -> tuple[str, ...]:
    """Data axes, and hyperparameters fixed to lists (checked once `fixed` is read: _check_data), paired."""
    zipped = tuple(as_list(value))
    for axis in zipped:
        if not isinstance(axis, str):
            raise SpecError(f"{shown(axis)} cannot be zipped; {ZIPPABLE}")
    if len(set(zipped)) != len(zipped):
        raise SpecError("a list is zipped twice; name each once")
    return zipped


def _pack(value) -> int | str:
    """`pack: auto` (sized to the machine: packing.auto_packs, sampled_pack_size) or at most K configurations per pack."""
    if value == "auto":
        return value
    if isinstance(value, str):
        raise SpecError(f"expected auto or an integer >= 1, got {shown(value)}")
    return integer(value, low=1, high=INTEGER_LIMIT)


def _objectives(value) -> tuple[str, ...]:
    objectives = tuple(choice(o, tuple(OBJECTIVES), "objective") for o in as_list(value))
    if not objectives or len(objectives) > 2 or len(set(objectives)) != len(objectives):
        raise SpecError("give one objective, or two different ones for nsga2")
    return objectives


def _one_or_list(item):
    """A data axis in the file: one value, or a list of them (each list is a grid axis)."""
    return item | list[item]


def _parsed(kind, parse, written_as, **field):
    """A Spec field's type, `checked`, with pydantic's Field arguments (default, alias)."""
    return Annotated[checked(kind, parse, written_as), Field(**field)]


def _file_schema(schema: dict) -> None:
    """The JSON Schema of a spec file, from pydantic's: the `source` field is not a key; `metric` (older specs) is."""
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["properties"].pop("source", None)
    schema["properties"]["metric"] = {"const": "val_acc", "deprecated": True,
                                      "description": "older specs: configurations are always selected by val_acc"}


def _names_schema(names):
    """The JSON Schema of a key that takes one name of `names()` or a list of them."""
    def complete(schema: dict) -> None:
        known = {"enum": sorted(names())}
        schema["anyOf"] = [known, {"type": "array", "items": known, "minItems": 1}]
    return complete


def _dataset_names():
    from .data import DATASETS

    return DATASETS


def _model_names():
    return hyperparameters.MODELS


# keys added later: at their default, to_yaml leaves them out, so older specs save (and fingerprint) as before
WRITTEN_WHEN_SET = ("pack", "patience", "eval_every")


class Spec(Section):
    """A sweep as its spec file says it: one field per top-level key, in the order docs/spec.md lists them."""

    model_config = ConfigDict(json_schema_extra=_file_schema, title="sweeper spec")

    name: _parsed(str, _name, Annotated[str, Field(min_length=1, max_length=MAX_NAME)])  # it names the results folder
    description: _parsed(str, _description, str, default="")
    datasets: _parsed(tuple[str, ...], _datasets, _one_or_list(str), alias="dataset",  # more than one: a grid axis
                      json_schema_extra=_names_schema(_dataset_names))
    data: DataOptions = DataOptions()
    label_counts: _parsed(tuple[int, ...], _label_counts, _one_or_list(Annotated[int, Field(ge=1)]), default=(100,),
                          alias="label_count")  # an axis too
    models: _parsed(tuple[str, ...], _models, _one_or_list(str), json_schema_extra=_names_schema(_model_names))
    seeds: _parsed(tuple[int, ...], _seeds, Annotated[list[Annotated[int, Field(ge=0, le=MAX_SEED)]], Field(min_length=1)])
    epochs: Integer(1)
    batches: _parsed(tuple[Batch, ...], _batches, _one_or_list(Batch), default=(Batch(),), alias="batch")  # an axis too
    # data axes paired element by element, not crossed, and numbers fixed as lists beside them
    zip: _parsed(tuple[str, ...], _zip, list[str], default=())
    # a zipped one (a tuple) pairs with the zipped data axes: each configuration gets its element
    fixed: _parsed(dict[str, float | str | tuple], _fixed, dict[str, float | str | list[float]], default_factory=dict,
                   json_schema_extra=_hyperparameters_schema)  # checked against the models: after them
    search: _parsed(dict[str, Grid | Range], _search, dict[str, list[float | str] | Range], default_factory=dict,
                    json_schema_extra=partial(_hyperparameters_schema, searched=True))
    objectives: _parsed(tuple[str, ...], _objectives, _one_or_list(Literal[tuple(OBJECTIVES)]), default=("val_acc",))
    sampler: Choice(SAMPLERS, "sampler") = "grid"
    sampler_seed: Integer(0, MAX_SAMPLER_SEED) = 0
    trials: Integer(1) | None = None  # configurations to sample; a grid runs all its points
    scheduler: Scheduler | None = None
    resources: Resources = Resources()
    max_concurrent: Integer(1) | None = None
    retries: Integer(0) = 2  # a crashed trial is retried from its last checkpoint
    study: Study = Study()
    # configurations trained as one vectorised model
    pack: _parsed(int | str, _pack, Literal["auto"] | Annotated[int, Field(ge=1, le=INTEGER_LIMIT)], default="auto")
    patience: Integer(0) = 0  # epochs without a better validation accuracy before a seed stops (0: never)
    eval_every: Integer(1) = 1  # evaluate (validation, test, q(y|x) on the unlabelled set) every E epochs and at the last
    step: Step = Step()  # always written: its default has changed
    tracking: Tracking | None = None  # an experiment tracker (tracking.py)
    source: str = Field("<spec>", exclude=True)  # where it was read (not a key): messages name it

    @classmethod
    def parse(cls, raw: Any, source: str = "<spec>") -> Spec:
        """A spec from its YAML, already read: each key checked by its field, in field order, then the keys against
        each other. A problem is a SpecError that names `source` and the key."""
        with naming(source):
            if not isinstance(raw, dict):
                raise SpecError(f"a spec must be a mapping of keys to values, got {type(raw).__name__}; see docs/spec.md, 'Spec format'")
            spec = super().parse(_without_metric(raw))
            _check(spec)
            return spec.model_copy(update={"source": source})

    @classmethod
    def field_named(cls, key: str) -> str:
        """The field a file's key is (dataset: datasets)."""
        return next(name for name, field in cls.model_fields.items() if (field.alias or name) == key)

    def replace(self, **changes) -> Spec:
        """This spec with some fields changed, as dataclasses.replace (not checked again)."""
        return self.model_copy(update=changes)

    def data_axes(self) -> dict[str, tuple]:
        """Every data setting, as the tuple of its values (one value: not an axis)."""
        return {**_axes(self), "batch": tuple(f"{b.labelled}:{b.unlabelled}" for b in self.batches)}

    def hyperparameters(self, model: str) -> dict[str, float | str | tuple]:
        """The fixed hyperparameters of `model`: defaults overridden by the spec's `fixed` (a zipped one: its whole
        list; space.configuration picks a configuration's element)."""

        taken = hyperparameters.of(model)
        return {name: self.fixed.get(name, h.default) for name, h in taken.items()}

    def searched(self, model: str) -> dict[str, Grid | Range]:
        """The searched hyperparameters `model` takes, in spec order."""

        taken = hyperparameters.of(model)
        return {name: domain for name, domain in self.search.items() if name in taken}

    def grid_blocks(self, model: str) -> list[tuple[dict, dict]]:
        """A model's grid as blocks, the one rule that both lists and counts it: per combination of the searched
        options (text choices), (those options, the other searched hyperparameters that matter with them, by
        name, with their values). A hyperparameter the model ignores with those options (sigma2 with a
        Bernoulli likelihood) is no axis of the block, so no two points of the grid coincide."""
        import itertools

        searched = self.searched(model)
        options = {k: d.values for k, d in searched.items() if hyperparameters.of(model)[k].choices}
        blocks = []
        for chosen in itertools.product(*options.values()):
            picked = dict(zip(options, chosen))
            ignored = hyperparameters.MODELS[model].ignored({**self.fixed, **picked})
            blocks.append(({k: v for k, v in picked.items() if k not in ignored},
                           {k: d.values for k, d in searched.items() if k not in options and k not in ignored}))
        return blocks

    def grid_size(self) -> int:
        """How many configurations the grid holds, counted from grid_blocks without listing them."""
        per_data = sum(math.prod(len(values) for values in axes.values()) for model in self.models
                       for _, axes in self.grid_blocks(model))
        return per_data * len(_data_combinations(self))

    def hyperparameter_columns(self) -> dict[str, str]:
        """Every hyperparameter of every model in the sweep, sorted, as "number" or "text": the results' columns."""

        kinds = {name: "text" if h.choices else "number" for m in self.models for name, h in hyperparameters.of(m).items()}
        return dict(sorted(kinds.items()))


def json_schema() -> str:
    """The JSON Schema of a spec file, as the text `sweeper schema` prints and docs/spec.schema.json holds."""
    import json

    return json.dumps(Spec.model_json_schema(), indent=1, ensure_ascii=False) + "\n"


def parse(raw: Any, source: str = "<spec>") -> Spec:
    """Validate a spec already read from YAML."""
    return Spec.parse(raw, source)


def _without_metric(raw: dict) -> dict:
    """The spec without `metric: val_acc`. Older specs and the spec.yaml of older results directories hold it;
    a configuration is always selected by validation accuracy (test accuracy is read at its best epoch), so
    it is accepted, with that one value, and nothing keeps it."""
    if "metric" not in raw:
        return raw
    if raw["metric"] != "val_acc":
        raise SpecError(f"configurations are selected by val_acc only, not {shown(raw['metric'])}; remove the key", "metric")
    return {key: value for key, value in raw.items() if key != "metric"}


# ---------------------------------------------------------------------------- keys against each other


def _check(spec: Spec) -> None:
    """What no key says alone: the data, hyperparameters and sampler checked against each other."""
    _check_data(spec)
    _check_ignored(spec)
    _check_stages(spec)
    _check_scheduler(spec)
    _check_evaluation(spec)
    _check_sampler(spec)
    if spec.sampler == "grid" and spec.grid_size() > MAX_CONFIGURATIONS:
        raise SpecError(f"the grid holds {spec.grid_size():,} configurations, more than {MAX_CONFIGURATIONS:,} "
                        "(each is a study trial and a results file); use fewer values, or a sampler with trials: N", "search")


def _axes(spec: Spec) -> dict[str, tuple]:
    """The values of each data axis, by its key (DATA_AXES), and of each hyperparameter zipped with them."""
    data = {"dataset": spec.datasets, "label_count": spec.label_counts, "batch": spec.batches}
    return {**data, **{hp: spec.fixed[hp] for hp in spec.zip if hp not in DATA_AXES and hp in spec.fixed}}


def _data_combinations(spec: Spec) -> list[tuple]:
    """Every (dataset, label_count, batch) the sweep trains: zipped axes paired, the rest crossed."""
    import itertools

    axes, zipped = _axes(spec), spec.zip
    groups = [list(zip(*(axes[a] for a in zipped)))] if zipped else []
    free = [a for a in axes if a not in zipped]
    combos = []
    for values in itertools.product(*groups, *(axes[a] for a in free)):
        chosen = dict(zip(zipped, values[0])) if zipped else {}
        chosen.update(zip(free, values[1:] if zipped else values))
        combos.append((chosen["dataset"], chosen["label_count"], chosen["batch"]))
    return combos


def _check_data(spec: Spec) -> None:
    """Noise for toy sets only; zipped axes of one length; every data combination trainable."""
    from .data import TOY

    other = [d for d in spec.datasets if d not in TOY]
    for option, default in (("noise", None), ("factor", None), ("coordinates", "unit")):
        if getattr(spec.data, option) != default and other:
            raise SpecError(f"only the toy sets ({', '.join(TOY)}) take {option}, not {other[0]}", f"data.{option}")
    if spec.data.factor is not None and set(spec.datasets) != {"circles"}:
        raise SpecError(f"only circles take factor, not {next(d for d in spec.datasets if d != 'circles')}", "data.factor")
    axes = _axes(spec)
    for name in spec.zip:
        if name not in axes:
            raise SpecError(f"{shown(name)} cannot be zipped; {ZIPPABLE}", "zip")
    lengths = {axis: len(axes[axis]) for axis in spec.zip}
    if len(set(lengths.values())) > 1:
        raise SpecError("zipped lists differ in length (" + ", ".join(f"{a}: {n}" for a, n in lengths.items())
                        + "); pair them element by element", "zip")
    combinations = len(spec.datasets) * len(spec.label_counts) * len(spec.batches)  # an upper bound (zipped axes pair up)
    if combinations > MAX_CONFIGURATIONS:  # before listing them: that alone would take minutes
        raise SpecError(f"the data axes make {combinations:,} combinations, more than {MAX_CONFIGURATIONS:,}; use fewer values",
                        "batch" if len(spec.batches) > len(spec.label_counts) else "label_count")
    for dataset, label_count, batch in _data_combinations(spec):
        _check_combination(dataset, label_count, batch, spec.data.labelled_in_unlabelled)


def _check_combination(dataset: str, label_count: int, batch: Batch, labelled_in_unlabelled: bool) -> None:
    """`label_count` class-balanced labels of `dataset` leave unlabelled data for `batch`."""
    from .data import DATASETS

    info = DATASETS[dataset]
    if label_count % info.n_classes:
        raise SpecError(f"{label_count} is not a multiple of the {info.n_classes} classes of {dataset}; "
                        "labelled subsets are class-balanced", "label_count")
    if label_count >= info.n_train:
        raise SpecError(f"{label_count} leaves no unlabelled data: {dataset} has {info.n_train} training points", "label_count")
    if info.smallest_class is not None and label_count // info.n_classes > info.smallest_class:
        raise SpecError(f"{label_count} needs {label_count // info.n_classes} labels per class, but the rarest class of "
                        f"{dataset} has {info.smallest_class} training points; choose at most {info.smallest_class * info.n_classes}",
                        "label_count")
    if batch.labelled > info.n_train:
        raise SpecError(f"{batch.labelled} is more than the {info.n_train} training points of {dataset}", "batch.labelled")
    n_unlabelled = info.n_train if labelled_in_unlabelled else info.n_train - label_count
    if batch.unlabelled > n_unlabelled:
        raise SpecError(f"{batch.unlabelled} is more than the {n_unlabelled} unlabelled points of {dataset}", "batch.unlabelled")


def _check_ignored(spec: Spec) -> None:
    """A hyperparameter that every model taking it would ignore (sigma2 with a Bernoulli likelihood) is refused."""

    taken = _taken(spec.models)
    for key, hp in [(f"fixed.{hp}", hp) for hp in spec.fixed] + [(f"search.{hp}", hp) for hp in spec.search]:
        definitions = hyperparameters.of(taken[hp][0])
        condition = definitions[hp].applies_if
        if condition is None or condition[0] in spec.search:
            continue
        if all(hp in hyperparameters.MODELS[m].ignored(spec.fixed) for m in taken[hp]):
            option, needed = condition
            has = "has" if len(taken[hp]) == 1 else "have"
            raise SpecError(f"would be ignored: {hp} applies only with {option}: {needed}, and {', '.join(taken[hp])} "
                            f"{has} {option} {spec.fixed.get(option, definitions[option].default)}; "
                            f"set fixed.{option}: {needed} or remove {hp}", key)


def _check_scheduler(spec: Spec) -> None:
    """A scheduler judges a configuration from grace_period on, before its last epoch: past the epochs it never would."""
    if spec.scheduler is not None and spec.scheduler.grace_period >= spec.epochs:
        raise SpecError(f"{spec.scheduler.grace_period} is not below epochs ({spec.epochs}), so the scheduler would never "
                        f"stop a configuration; set grace_period below {spec.epochs}, or remove the scheduler",
                        "scheduler.grace_period")


def _check_evaluation(spec: Spec) -> None:
    """Validation accuracy exists at evaluated epochs only: a scheduler judging every epoch, or a patience shorter
    than the gap between evaluations, would read epochs that have none."""
    if spec.eval_every == 1:
        return
    if spec.scheduler is not None:
        raise SpecError(f"the scheduler judges validation accuracy at every epoch, and eval_every {spec.eval_every} "
                        f"measures it once in {spec.eval_every} epochs; set eval_every: 1 or remove the scheduler", "eval_every")
    if 0 < spec.patience < spec.eval_every:
        raise SpecError(f"patience {spec.patience} is shorter than the {spec.eval_every} epochs between evaluations "
                        f"(eval_every); set patience to at least {spec.eval_every}", "patience")


def _check_stages(spec: Spec) -> None:
    """m1_epochs trains M1 before the spec's epochs: a trial of m1 or m1m2 then runs longer than the others, which a
    scheduler would compare epoch by epoch, patience would count from M1's epochs, and vae_fraction, the other way
    to place M1's stage, no longer applies."""
    given, searched = spec.fixed.get("m1_epochs", 0), spec.search.get("m1_epochs")
    fixed = max(given) if isinstance(given, tuple) else given  # zipped: the longest
    if searched is not None:  # searched: the longest it may draw
        fixed = int(max(searched.values) if isinstance(searched, Grid) else searched.high)
    if not fixed and searched is None:
        return
    if spec.scheduler is not None:
        raise SpecError("m1_epochs makes trials of M1's models longer than the others, which a scheduler cannot compare "
                        "epoch by epoch; remove the scheduler or m1_epochs", "scheduler")
    if fixed and 0 < spec.patience <= fixed:
        raise SpecError(f"{spec.patience} would stop seeds within M1's own {fixed} epochs (m1_epochs), where the classifier "
                        "does not train yet; set patience above m1_epochs, or 0", "patience")
    for where in ("fixed", "search"):
        if fixed and "vae_fraction" in getattr(spec, where):
            raise SpecError(f"would be ignored: m1_epochs {fixed} places M1's stage before the spec's epochs; "
                            "remove vae_fraction or m1_epochs", f"{where}.vae_fraction")


def _check_sampler(spec: Spec) -> None:
    """The sampler can sample this search space, for these objectives, with a number of trials."""
    sampler, objectives = spec.sampler, spec.objectives
    ranges = [hp for hp, d in spec.search.items() if isinstance(d, Range)]
    if sampler == "grid" and ranges:
        raise SpecError(f"grid cannot sample the range of {shown(ranges[0])}; give it a list of values or use sampler: tpe or random", "sampler")
    if sampler == "nsga2" and len(objectives) != 2:
        raise SpecError("nsga2 optimises two objectives; add objectives: [val_acc, wall_s]", "sampler")
    if len(objectives) == 2 and sampler not in ("nsga2", "tpe", "random"):
        raise SpecError(f"sampler {sampler} optimises one objective; use nsga2, tpe or random for two", "objectives")
    if sampler == "cmaes":
        categorical = [hp for hp, d in spec.search.items() if isinstance(d, Grid)] + (["models"] if len(spec.models) > 1 else [])
        categorical += [axis for axis, values in _axes(spec).items() if len(values) > 1]
        if categorical:
            raise SpecError(f"cmaes samples continuous ranges only, but {shown(categorical[0])} is a list; use tpe, or one value", "sampler")
        if not ranges:
            raise SpecError("cmaes needs at least one range to sample", "sampler")
    if sampler != "grid" and spec.trials is None:
        raise SpecError(f"sampler {sampler} needs the number of configurations to try, e.g. trials: 20", "trials")


# ---------------------------------------------------------------------------- scale, pack, YAML


SMOKE_SIZES = {"hidden": 16, "latent": 4, "auxiliary": 4, "features": 4}
SMOKE_IF_FIXED = {"m1_epochs": 1, "m1_hidden": 16, "m2_hidden": 16}  # only where the spec sets them: their default defers to another


def _at_most(limit: int, value):
    """min(limit, value), elementwise for a zipped list."""
    return tuple(min(limit, v) for v in value) if isinstance(value, tuple) else min(limit, value)


def at_scale(spec: Spec, scale: str) -> Spec:
    """The spec itself ("full"), or its "smoke" version: the same models, grids, axes and seeds axis,
    trained in seconds on embedded data (image sets become digits) with tiny networks."""
    if scale == "full":
        return spec
    if scale != "smoke":
        raise SpecError("unknown scale; allowed: full, smoke", f"--scale {scale}")
    from .data import TOY

    counts = {count: 10 * (i + 2) for i, count in enumerate(sorted(set(spec.label_counts)))}  # 20, 30, ...: fit every set
    taken = {name for m in spec.models for name in hyperparameters.of(m)}
    sizes = {k: _at_most(v, spec.fixed.get(k, v)) for k, v in SMOKE_SIZES.items() if k in taken and k not in spec.search}
    sizes |= {k: _at_most(v, spec.fixed[k]) for k, v in SMOKE_IF_FIXED.items() if k in spec.fixed}
    scheduler = spec.scheduler and spec.scheduler.model_copy(update={"grace_period": 1})
    datasets = tuple(d if d in TOY else "digits" for d in spec.datasets)
    if "dataset" not in spec.zip:  # image sets all become digits: one axis value, not several
        datasets = tuple(dict.fromkeys(datasets))
    return spec.replace(
        datasets=datasets,
        label_counts=tuple(counts[c] for c in spec.label_counts),
        batches=tuple(Batch(labelled=min(b.labelled, 10), unlabelled=min(b.unlabelled, 100)) for b in spec.batches),
        epochs=2, seeds=spec.seeds[:2], trials=spec.trials and min(spec.trials, 3),
        fixed={**spec.fixed, **sizes}, scheduler=scheduler,
    )


SMOKE_SETS = {"epochs": "epochs", "seeds": "seeds", "trials": "trials", "batch": "batches", "label_count": "label_counts",
              "dataset": "datasets"}  # an override's key -> the Spec field at_scale sets itself


def scaled(spec: Spec, scale: str, overrides: list[str] | None = None) -> tuple[Spec, str | None]:
    """at_scale(spec, scale), and a note naming the command line's overrides the smoke scale set its own values over
    (epochs=1 under smoke trains its 2 epochs): said, not dropped without a word."""
    small = at_scale(spec, scale)
    replaced = []
    for item in overrides or []:
        top, _, rest = item.split("=", 1)[0].strip().partition(".")
        if top in SMOKE_SETS and not rest and getattr(spec, SMOKE_SETS[top]) != getattr(small, SMOKE_SETS[top]) or \
                top == "fixed" and rest and spec.fixed.get(rest) != small.fixed.get(rest):
            replaced.append(item)
    note = (f"--scale smoke sets its own values over {', '.join(replaced)[:200]}; drop --scale smoke to run them as given"
            if replaced else None)
    return small, note


def with_pack(spec: Spec, pack: int | str) -> Spec:
    """The spec with `pack` (--pack), checked as if the file said so."""
    return parse({**yaml.safe_load(to_yaml(spec)), "pack": pack}, source=f"{spec.source} with --pack {pack}")


def to_yaml(spec: Spec) -> str:
    """The spec as YAML that parse() reads back to the same Spec: what a sweep actually ran. Every key is
    written but one not set (None) and, at its default, one of WRITTEN_WHEN_SET."""
    raw = {}
    for key, default in Spec.keys().items():
        value = getattr(spec, Spec.field_named(key))
        if value is None or (key in WRITTEN_WHEN_SET and value == default):
            continue
        one = key in DATA_AXES and len(value) == 1  # an axis of one value is written as that value
        raw[key] = _plain(value[0] if one else value)
    return yaml.safe_dump(raw, sort_keys=False)


def _plain(value):
    """A value as YAML writes it: a section as the mapping of its keys (but those that are None), tuples as lists."""
    if isinstance(value, Grid):
        return list(value.values)
    if isinstance(value, Section):
        return {key: _plain(v) for key, v in value.model_dump(by_alias=True, exclude_none=True, round_trip=True).items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- reading a file


def read_ran(location: str | Path) -> dict:
    """The spec a results location says it ran, as its YAML mapping: the one reader of DIR/spec.yaml (a regular
    file inside the directory, read by results.read_bytes; the hardened YAML reader). No torch: reports read it."""
    from . import results

    try:
        text = results.read_bytes(location, "spec.yaml").decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise SpecError(f"{location}: not a sweep's results directory (no spec.yaml); give the --out of a 'sweeper run'") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{location}/spec.yaml: is not UTF-8 text (byte {e.start}); was it written by sweeper?") from None
    except OSError as e:  # a store that does not answer, a file this user may not read
        if e.errno == errno.ELOOP:  # the command line says it as it says every symlink loop
            raise
        hint = "check the URI, and that its store answers from this machine" if "://" in str(location) else \
            "check that this user may read it"
        raise SpecError(f"{location}/spec.yaml: cannot read it ({first_line(e)}); {hint}") from None
    with naming(f"{location}/spec.yaml"):
        raw = read_yaml(text)
    if not isinstance(raw, dict):
        raise SpecError(f"{location}/spec.yaml: not a spec's mapping of keys; was it written by sweeper?")
    return raw


def load_ran(location: str | Path) -> Spec:
    """The spec a results location ran (read_ran), parsed. One with no `step` was written while float32 and an
    eager step were the defaults (before `bf16: auto` and `compile: auto`), so it resumes so, as it started."""
    raw = _without_idle_scheduler(read_ran(location))
    spec = parse(raw, source=f"{location}/spec.yaml")
    return spec if "step" in raw else spec.replace(step=spec.step.model_copy(update={"bf16": False, "compile": False}))


def _without_idle_scheduler(raw: dict) -> dict:
    """The spec a results location ran, without a scheduler whose grace_period is not below its epochs: such a
    scheduler never stopped anything, and specs saying so ran before _check_scheduler refused them."""
    scheduler, epochs = raw.get("scheduler"), raw.get("epochs")
    grace = scheduler.get("grace_period") if isinstance(scheduler, dict) else None
    idle = isinstance(grace, int) and isinstance(epochs, int) and grace >= epochs
    return {key: value for key, value in raw.items() if key != "scheduler"} if idle else raw


def _read_spec(path: Path) -> dict:
    with naming(path):
        return read_yaml(read_text(path, "spec"))


def load(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """The spec in the file at `path`, with the command line's `key=value` overrides applied."""
    path = Path(path)
    raw = _read_spec(path)
    with naming(path):
        raw = override(raw, overrides or [])
    if overrides:
        return parse(raw, source=f"{path} (with {', '.join(o.split('=', 1)[0] for o in overrides)} overridden)")
    return parse(raw, source=str(path))
