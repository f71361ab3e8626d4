"""A spec file (YAML) → a validated, typed Spec. Nothing here runs anything.

Every problem is a SpecError whose message names the file and the key, says what is
wrong and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .data.base import PREPROCESS, DataOptions
from .errors import SpecError

SAMPLERS = ("grid", "random", "tpe", "cmaes", "nsga2")
METRICS = ("val_acc",)  # selection metric: maximised; test accuracy is read at its best epoch
OBJECTIVES = {"val_acc": "max", "wall_s": "min"}  # what a sampler optimises: the first, or both (nsga2)
SCHEDULERS = ("asha", "median")
DATA_AXES = ("dataset", "label_count", "batch")  # data settings that may be lists, i.e. grid axes
TOP_KEYS = (
    "name", "description", "dataset", "data", "label_count", "models", "seeds", "epochs", "batch", "zip",
    "fixed", "search", "metric", "objectives", "sampler", "sampler_seed", "trials", "scheduler",
    "resources", "max_concurrent", "retries", "study", "pack", "step",
)
REQUIRED = ("name", "dataset", "models", "seeds", "epochs")
MAX_SEED = 2**63 - 1  # a training seed becomes an int64 noise key and torch's manual_seed
MAX_SAMPLER_SEED = 2**32 - 1  # Optuna's samplers seed NumPy's RandomState, which takes 32 bits
MAX_NAME = 150  # bytes: a folder name is at most 255 on common filesystems, and sweeper adds suffixes
MAX_CONFIGURATIONS = 100_000  # every grid point becomes an Optuna trial and a results file


@dataclass(frozen=True)
class Grid:
    values: tuple[float, ...]


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Scheduler:
    """Early stopping by a Ray Tune scheduler on validation accuracy."""

    kind: str  # asha or median
    grace_period: int = 1  # epochs before a trial may be stopped
    reduction_factor: int = 3  # asha only


@dataclass(frozen=True)
class Spec:
    name: str
    datasets: tuple[str, ...]  # more than one: a grid axis
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    label_counts: tuple[int, ...] = (100,)  # more than one: a grid axis
    data: DataOptions = DataOptions()
    batches: tuple[tuple[int, int], ...] = ((100, 100),)  # (labelled, unlabelled) per batch; an axis too
    zip: tuple[str, ...] = ()  # data axes paired element by element instead of crossed
    fixed: dict[str, float | str] = field(default_factory=dict)
    search: dict[str, Grid | Range] = field(default_factory=dict)
    metric: str = "val_acc"
    objectives: tuple[str, ...] = ("val_acc",)
    sampler: str = "grid"
    sampler_seed: int = 0
    trials: int | None = None  # configurations to sample; a grid runs all of its points
    scheduler: Scheduler | None = None
    cpu: float = 1.0
    gpu: float = 0.0
    max_concurrent: int | None = None
    retries: int = 2  # a trial that crashes is retried from its last checkpoint this many times
    pack: int = 1  # grid points trained together as one vectorised model, in one Ray trial
    bf16: bool = False  # the step's matmuls under bfloat16 autocast (meant for a GPU)
    compile: bool = False  # the step's loss through torch.compile (meant for a GPU)
    heartbeat_s: int = 10  # shared study (--study): how often a driver says its configurations are alive
    reclaim_after_s: int = 60  # ... and how long after its last word another driver takes them over
    description: str = ""
    source: str = "<spec>"

    def data_axes(self) -> dict[str, tuple]:
        """Every data setting, as the tuple of its values (one value: not an axis)."""
        return {"dataset": self.datasets, "label_count": self.label_counts,
                "batch": tuple(f"{labelled}:{unlabelled}" for labelled, unlabelled in self.batches)}

    def hyperparameters(self, model: str) -> dict[str, float]:
        """The fixed hyperparameters of `model`: defaults overridden by the spec's `fixed`."""
        from . import models

        taken = models.hyperparameters(model)
        return {name: self.fixed.get(name, h.default) for name, h in taken.items()}

    def searched(self, model: str) -> dict[str, Grid | Range]:
        """The searched hyperparameters `model` takes, in spec order."""
        from . import models

        taken = models.hyperparameters(model)
        return {name: domain for name, domain in self.search.items() if name in taken}

    def grid_size(self) -> int:
        """How many configurations the grid holds, counted without listing them: data combinations times,
        per model, the product of its grids; a hyperparameter the model ignores at a point (sigma2 with a
        Bernoulli likelihood) is no axis of that point (as space.grid_points lists them)."""
        import itertools

        from . import models

        total = 0
        for model in self.models:
            searched = self.searched(model)
            options = {k: d.values for k, d in searched.items() if models.hyperparameters(model)[k].choices}
            for chosen in itertools.product(*options.values()):
                ignored = models.MODELS[model].ignored({**self.fixed, **dict(zip(options, chosen))})
                total += math.prod(len(d.values) for k, d in searched.items() if k not in options and k not in ignored)
        return total * len(_data_combinations(self.datasets, self.label_counts, self.batches, self.zip))

    def hyperparameter_columns(self) -> dict[str, str]:
        """Every hyperparameter of every model in the sweep, sorted, as "number" or "text": the results' columns."""
        from . import models

        kinds = {name: "text" if h.choices else "number" for m in self.models for name, h in models.hyperparameters(m).items()}
        return dict(sorted(kinds.items()))


# ---------------------------------------------------------------------------- loading


SMOKE_SIZES = {"hidden": 16, "latent": 4, "auxiliary": 4, "features": 4}


def at_scale(spec: Spec, scale: str) -> Spec:
    """The spec itself ("full"), or its "smoke" version: the same models, grids, axes and seeds axis,
    trained in seconds on embedded data (image sets become digits) with tiny networks."""
    if scale == "full":
        return spec
    if scale != "smoke":
        raise SpecError(f"--scale {scale}: unknown scale; allowed: full, smoke")
    from .data import TOY

    from . import models

    counts = {count: 10 * (i + 2) for i, count in enumerate(sorted(set(spec.label_counts)))}  # 20, 30, ...: fit every set
    taken = {name for m in spec.models for name in models.hyperparameters(m)}
    sizes = {k: min(v, spec.fixed.get(k, v)) for k, v in SMOKE_SIZES.items() if k in taken and k not in spec.search}
    scheduler = spec.scheduler and replace(spec.scheduler, grace_period=1)
    datasets = tuple(d if d in TOY else "digits" for d in spec.datasets)
    if "dataset" not in spec.zip:  # image sets all become digits: one axis value, not several
        datasets = tuple(dict.fromkeys(datasets))
    return replace(
        spec,
        datasets=datasets,
        label_counts=tuple(counts[c] for c in spec.label_counts),
        batches=tuple((min(labelled, 10), min(unlabelled, 100)) for labelled, unlabelled in spec.batches),
        epochs=2, seeds=spec.seeds[:2], trials=spec.trials and min(spec.trials, 3),
        fixed={**spec.fixed, **sizes}, scheduler=scheduler,
    )


def with_pack(spec: Spec, pack: int) -> Spec:
    """The spec with `pack` (--pack), checked as if the file said so."""
    return parse({**yaml.safe_load(to_yaml(spec)), "pack": pack}, source=f"{spec.source} with --pack {pack}")


def to_yaml(spec: Spec) -> str:
    """The spec as YAML that parse() reads back to the same Spec: what a sweep actually ran."""
    one = lambda values: values[0] if len(values) == 1 else list(values)  # noqa: E731
    raw = {
        "name": spec.name, "description": spec.description, "dataset": one(spec.datasets),
        "data": {"preprocess": spec.data.preprocess, "labelled_in_unlabelled": spec.data.labelled_in_unlabelled,
                 **({"noise": spec.data.noise} if spec.data.noise is not None else {})},
        "label_count": one(spec.label_counts), "models": list(spec.models), "seeds": list(spec.seeds),
        "epochs": spec.epochs, "batch": one([{"labelled": b[0], "unlabelled": b[1]} for b in spec.batches]),
        "zip": list(spec.zip), "fixed": dict(spec.fixed),
        "search": {k: list(d.values) if isinstance(d, Grid) else {"low": d.low, "high": d.high, "log": d.log}
                   for k, d in spec.search.items()},
        "metric": spec.metric, "objectives": list(spec.objectives), "sampler": spec.sampler,
        "sampler_seed": spec.sampler_seed, "resources": {"cpu": spec.cpu, "gpu": spec.gpu}, "retries": spec.retries,
    }
    if spec.trials is not None:
        raw["trials"] = spec.trials
    if spec.scheduler is not None:
        raw["scheduler"] = {"type": spec.scheduler.kind, "grace_period": spec.scheduler.grace_period,
                            "reduction_factor": spec.scheduler.reduction_factor}
    if spec.max_concurrent is not None:
        raw["max_concurrent"] = spec.max_concurrent
    if spec.pack > 1:
        raw["pack"] = spec.pack
    if spec.bf16 or spec.compile:
        raw["step"] = {"bf16": spec.bf16, "compile": spec.compile}
    raw["study"] = {"heartbeat_s": spec.heartbeat_s, "reclaim_after_s": spec.reclaim_after_s}
    return yaml.safe_dump(raw, sort_keys=False)


MAX_SPEC_BYTES = 1 << 20  # a spec is a page of YAML; more is not a spec
MAX_ALIASES = 100  # YAML aliases (*name) a spec may use: enough for sharing
MAX_NODES = 100_000  # values in a spec once its aliases are expanded: an alias bomb has billions


def _expanded_size(node, memo: dict) -> int:
    """How many values `node` stands for with every alias written out (each shared node counted once per use)."""
    if id(node) not in memo:
        memo[id(node)] = 0  # a node that holds itself (a recursive alias) counts once
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        memo[id(node)] = 1 + sum(_expanded_size(child, memo) for child in children)
    return memo[id(node)]


class _SpecLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping, a flood of aliases, and a document whose
    aliases expand to more values than any spec holds."""

    aliases = 0

    def compose_document(self):
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise yaml.YAMLError(f"its aliases expand to more than {MAX_NODES:,} values; write the values out")
        return node

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged below, not a key of its own
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader says so itself
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"the key {shown(key)} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_text(path: Path, what: str, limit: int = MAX_SPEC_BYTES) -> str:
    """A small text file, read only if it is a regular file (never a FIFO or a device, which could block
    or never end) of at most `limit` bytes, as UTF-8: else one clear SpecError."""
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file; give the path of a {what}, e.g. search_spaces/quickstart.yaml") from None
    except OSError as e:  # a symlink loop, a name too long, a path through a file
        raise SpecError(f"{path}: cannot read the {what} ({e.strerror or type(e).__name__}); give a readable YAML file") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe or a device)"
        raise SpecError(f"{path}: is {kind}; give a YAML file")
    if info.st_size > limit:
        raise SpecError(f"{path}: {info.st_size:,} bytes is too large for a {what} (at most {limit:,}); give the spec's YAML file")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew since stat
            raise SpecError(f"{path}: more than {limit:,} bytes is too large for a {what}; give the spec's YAML file")
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: is not UTF-8 text (byte {e.start}); save the {what} as UTF-8") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the {what} ({e.strerror or type(e).__name__}); give a readable YAML file") from None


def override(raw: Any, assignments: list[str], source: str) -> Any:
    """The spec's YAML with command-line overrides applied: each `key=value`, a dotted key for a nested
    one (`batch.labelled=50`, `search.alpha=[1, 10]`), the value read as YAML. What results is checked
    exactly as a file would be."""
    if not assignments:
        return raw
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a spec must be a mapping of keys to values before overrides apply")
    raw = dict(raw)
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key or any(not part for part in key.split(".")):
            raise SpecError(f"override {shown(assignment)}: expected key=value, e.g. epochs=20 or batch.labelled=50")
        try:
            value = yaml.load(text, Loader=_SpecLoader) if text else ""  # noqa: S506 - a SafeLoader
        except RecursionError:
            raise SpecError(f"override {key}: the value is nested too deeply to be a spec's") from None
        except yaml.YAMLError as e:
            raise SpecError(f"override {key}: the value {shown(text)} is not valid YAML ({str(e).splitlines()[0][:80]})") from None
        *parents, last = key.split(".")
        node = raw
        for depth, part in enumerate(parents):
            child = node.get(part, {})
            if child is None:
                child = {}
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise SpecError(f"override {key}: {where} is not a mapping here; set it whole ({where}=...)")
            node[part] = child = dict(child)
            node = child
        node[last] = value
    return raw


def load(path: str | Path, overrides: list[str] | None = None) -> Spec:
    path = Path(path)
    text = read_text(path, "spec")
    try:
        raw = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a spec; fix the YAML") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = (getattr(e, "problem", None) or str(e).splitlines()[0])[:200]
        raise SpecError(f"{path}: {where}not valid YAML ({problem}); fix the syntax there") from None
    if overrides:
        return parse(override(raw, overrides, str(path)), source=f"{path} (with {', '.join(o.split('=', 1)[0] for o in overrides)} overridden)")
    return parse(raw, source=str(path))


def parse(raw: Any, source: str = "<spec>") -> Spec:
    """Validate a spec already read from YAML."""
    from . import models
    from .data import DATASETS, TOY

    def fail(key: str, problem: str) -> SpecError:
        return SpecError(f"{source}: {key}: {problem}")

    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a spec must be a mapping of keys to values, got {type(raw).__name__}; see README 'Spec format'")
    for k in raw:
        if k not in TOP_KEYS:
            raise fail(shown(k) if not isinstance(k, str) else k[:40], f"unknown key; allowed keys: {', '.join(TOP_KEYS)}")
    for k in REQUIRED:
        if k not in raw:
            raise SpecError(f"{source}: missing required key '{k}'; required keys: {', '.join(REQUIRED)}")

    name = _string(raw["name"], "name", fail)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise fail("name", f"must be letters, digits, '-', '_' or '.', got {shown(name)}")
    if len(name.encode()) > MAX_NAME:  # it names folders (results/<name>-smoke-<driver>, Tune's), with room to spare
        raise fail("name", f"is {len(name.encode())} bytes long; keep it to {MAX_NAME} (it names the results folders)")

    datasets = _as_list(raw["dataset"])
    if not datasets:
        raise fail("dataset", "empty list; give a dataset or a list of datasets")
    for d in datasets:
        if not isinstance(d, str) or d not in DATASETS:
            raise fail("dataset", f"unknown dataset {shown(d)}; known datasets: {', '.join(sorted(DATASETS))}")
    if len(set(datasets)) != len(datasets):
        raise fail("dataset", "a dataset is listed twice")

    model_names = raw["models"]
    if isinstance(model_names, str):
        model_names = [model_names]
    if not isinstance(model_names, list) or not model_names:
        raise fail("models", "expected a non-empty list of model names")
    for m in model_names:
        if not isinstance(m, str) or m not in models.MODELS:
            raise fail("models", f"unknown model {shown(m)}; registered models: {', '.join(sorted(models.MODELS))}")
    if len(set(model_names)) != len(model_names):
        raise fail("models", "a model is listed twice")

    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise fail("seeds", "expected a non-empty list of integers, e.g. [0, 1, 2]")
    for s in seeds:
        _integer(s, "seeds", fail, low=0, high=MAX_SEED)
    if len(set(seeds)) != len(seeds):
        dup = next(s for s in seeds if seeds.count(s) > 1)
        raise fail("seeds", f"seed {dup} is listed twice; each seed runs once per configuration")

    epochs = _integer(raw["epochs"], "epochs", fail, low=1)
    label_counts = _as_list(raw.get("label_count", 100))
    if not label_counts:
        raise fail("label_count", "empty list; give a number or a list of numbers")
    for count in label_counts:
        _integer(count, "label_count", fail, low=1)
    if len(set(label_counts)) != len(label_counts):
        raise fail("label_count", "a label count is listed twice; it would train the same configurations twice")
    data = _data_options(raw.get("data", {}) or {}, datasets, TOY, fail)

    batches = []
    if raw.get("batch", {}) == []:
        raise fail("batch", "empty list; give {labelled: N, unlabelled: N} or a list of them")
    for batch in _as_list(raw.get("batch", {})):
        if not isinstance(batch, dict):
            raise fail("batch", "expected a mapping {labelled: N, unlabelled: N}, or a list of them")
        for k in batch:
            if k not in ("labelled", "unlabelled"):
                raise fail(f"batch.{str(k)[:40]}", "unknown key; allowed keys: labelled, unlabelled")
        batches.append((_integer(batch.get("labelled", 100), "batch.labelled", fail, low=1),
                        _integer(batch.get("unlabelled", 100), "batch.unlabelled", fail, low=1)))

    if len(set(batches)) != len(batches):
        raise fail("batch", "a batch size is listed twice; it would train the same configurations twice")

    zipped = tuple(_as_list(raw.get("zip", [])))
    for axis in zipped:
        if axis not in DATA_AXES:
            raise fail("zip", f"{shown(axis)} cannot be zipped; zip pairs lists of: {', '.join(DATA_AXES)}")
    lengths = {axis: len({"dataset": datasets, "label_count": label_counts, "batch": batches}[axis]) for axis in zipped}
    if len(set(lengths.values())) > 1:
        raise fail("zip", "zipped lists differ in length (" + ", ".join(f"{a}: {n}" for a, n in lengths.items()) + "); pair them element by element")

    combinations = len(datasets) * len(label_counts) * len(batches)  # an upper bound (zipped axes pair up): known before listing
    if combinations > MAX_CONFIGURATIONS:  # before listing them: that alone would take minutes
        raise fail("batch" if len(batches) > len(label_counts) else "label_count",
                   f"the data axes make {combinations:,} combinations, more than {MAX_CONFIGURATIONS:,}; use fewer values")
    for combination in _data_combinations(datasets, label_counts, batches, zipped):
        dataset, label_count, (batch_labelled, batch_unlabelled) = combination
        info = DATASETS[dataset]
        if label_count % info.n_classes:
            raise fail("label_count", f"{label_count} is not a multiple of the {info.n_classes} classes of {dataset}; labelled subsets are class-balanced")
        if label_count >= info.n_train:
            raise fail("label_count", f"{label_count} leaves no unlabelled data: {dataset} has {info.n_train} training points")
        if info.smallest_class is not None and label_count // info.n_classes > info.smallest_class:
            raise fail("label_count", f"{label_count} needs {label_count // info.n_classes} labels per class, but the rarest class of "
                                      f"{dataset} has {info.smallest_class} training points; choose at most {info.smallest_class * info.n_classes}")
        n_unlabelled = info.n_train if data.labelled_in_unlabelled else info.n_train - label_count
        if batch_unlabelled > n_unlabelled:
            raise fail("batch.unlabelled", f"{batch_unlabelled} is more than the {n_unlabelled} unlabelled points of {dataset}")

    taken: dict[str, list[str]] = {}
    for m in model_names:
        for hp in models.hyperparameters(m):
            taken.setdefault(hp, []).append(m)

    def check_value(key: str, hp: str, value) -> float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        problem = models.hyperparameters(taken[hp][0])[hp].check(value)
        if problem:
            raise fail(key, problem)
        return value

    def check_taken(key: str, hp: str) -> None:
        if hp not in taken:
            if len(model_names) == 1:
                problem = f"{model_names[0]} takes no hyperparameter {shown(hp)}"
                listing = f"{model_names[0]} takes: {', '.join(sorted(taken))}"
            else:
                problem = f"none of {', '.join(model_names)} takes the hyperparameter {shown(hp)}"
                listing = f"they take: {', '.join(sorted(taken))}"
            raise fail(key, f"{problem}; remove it or add a model that takes it ({listing})")

    fixed_raw = raw.get("fixed", {}) or {}
    if not isinstance(fixed_raw, dict):
        raise fail("fixed", "expected a mapping of hyperparameter names to values")
    fixed = {}
    for hp, value in fixed_raw.items():
        check_taken(f"fixed.{hp}", hp)
        fixed[hp] = check_value(f"fixed.{hp}", hp, value)

    search_raw = raw.get("search", {}) or {}
    if not isinstance(search_raw, dict):
        raise fail("search", "expected a mapping of hyperparameter names to a list (grid) or {low, high, log} (range)")
    search: dict[str, Grid | Range] = {}
    for hp, domain in search_raw.items():
        key = f"search.{hp}"
        check_taken(key, hp)
        if hp in fixed:
            raise fail(key, "is also under 'fixed'; a hyperparameter is either fixed or searched")
        search[hp] = _domain(domain, key, hp, fail, check_value, models.hyperparameters(taken[hp][0])[hp].choices is not None)

    for key, hp in [(f"fixed.{hp}", hp) for hp in fixed] + [(f"search.{hp}", hp) for hp in search]:
        condition = models.hyperparameters(taken[hp][0])[hp].applies_if
        if condition is None or condition[0] in search:
            continue
        if all(hp in models.MODELS[m].ignored(fixed) for m in taken[hp]):
            option, needed = condition
            raise fail(key, f"would be ignored: {hp} applies only with {option}: {needed}, and {', '.join(taken[hp])} "
                            f"{'has' if len(taken[hp]) == 1 else 'have'} {option} {fixed.get(option, models.hyperparameters(taken[hp][0])[option].default)}; "
                            f"set fixed.{option}: {needed} or remove {hp}")

    sampler = _string(raw.get("sampler", "grid"), "sampler", fail)
    if sampler not in SAMPLERS:
        raise fail("sampler", f"unknown sampler {shown(sampler)}; allowed: {', '.join(SAMPLERS)}")
    objectives = tuple(_as_list(raw.get("objectives", ["val_acc"])))
    for o in objectives:
        if not isinstance(o, str) or o not in OBJECTIVES:
            raise fail("objectives", f"unknown objective {shown(o)}; allowed: {', '.join(OBJECTIVES)}")
    if not objectives or len(objectives) > 2 or len(set(objectives)) != len(objectives):
        raise fail("objectives", "give one objective, or two different ones for nsga2")
    ranges = [hp for hp, d in search.items() if isinstance(d, Range)]
    if sampler == "grid" and ranges:
        raise fail("sampler", f"grid cannot sample the range of {shown(ranges[0])}; give it a list of values or use sampler: tpe or random")
    if sampler == "nsga2" and len(objectives) != 2:
        raise fail("sampler", "nsga2 optimises two objectives; add objectives: [val_acc, wall_s]")
    if len(objectives) == 2 and sampler not in ("nsga2", "tpe", "random"):
        raise fail("objectives", f"sampler {sampler} optimises one objective; use nsga2, tpe or random for two")
    if sampler == "cmaes":
        categorical = [hp for hp, d in search.items() if isinstance(d, Grid)] + (["models"] if len(model_names) > 1 else [])
        categorical += [axis for axis, values in (("dataset", datasets), ("label_count", label_counts), ("batch", batches)) if len(values) > 1]
        if categorical:
            raise fail("sampler", f"cmaes samples continuous ranges only, but {shown(categorical[0])} is a list; use tpe, or one value")
        if not ranges:
            raise fail("sampler", "cmaes needs at least one range to sample")
    trials = raw.get("trials")
    if trials is not None:
        trials = _integer(trials, "trials", fail, low=1)
    if sampler != "grid" and trials is None:
        raise fail("trials", f"sampler {sampler} needs the number of configurations to try, e.g. trials: 20")
    scheduler = _scheduler(raw.get("scheduler"), fail)

    resources = raw.get("resources", {}) or {}
    if not isinstance(resources, dict):
        raise fail("resources", "expected a mapping {cpu: N, gpu: F}")
    for k in resources:
        if k not in ("cpu", "gpu"):
            raise fail(f"resources.{k}", "unknown key; allowed keys: cpu, gpu")
    cpu = _number(resources.get("cpu", 1), "resources.cpu", fail)
    gpu = _number(resources.get("gpu", 0), "resources.gpu", fail)
    if cpu <= 0:
        raise fail("resources.cpu", f"must be > 0, got {shown(cpu)}")
    if gpu < 0:
        raise fail("resources.gpu", f"must be >= 0 (a fraction shares one GPU between trials), got {shown(gpu)}")
    max_concurrent = raw.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = _integer(max_concurrent, "max_concurrent", fail, low=1)

    heartbeat_s, reclaim_after_s = _study(raw.get("study", {}), fail)
    pack = _integer(raw.get("pack", 1), "pack", fail, low=1)
    if pack > 1 and sampler != "grid":
        raise fail("pack", f"packs the points of a grid; sampler {sampler} asks for one configuration at a time; use pack: 1")
    if pack > 1 and scheduler is not None:
        raise fail("pack", "a scheduler stops configurations one at a time, and a pack trains as one; drop one of the two")

    bf16, compile = _step(raw.get("step", {}), fail)

    metric = _string(raw.get("metric", "val_acc"), "metric", fail)
    if metric not in METRICS:
        raise fail("metric", f"unknown selection metric {shown(metric)}; allowed: {', '.join(METRICS)}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "expected text")

    spec = Spec(
        name=name, datasets=tuple(datasets), models=tuple(model_names), seeds=tuple(seeds), epochs=epochs,
        label_counts=tuple(label_counts), data=data, batches=tuple(batches), zip=zipped,
        fixed=fixed, search=search, metric=metric, objectives=objectives, sampler=sampler,
        sampler_seed=_integer(raw.get("sampler_seed", 0), "sampler_seed", fail, low=0, high=MAX_SAMPLER_SEED),
        trials=trials, scheduler=scheduler, cpu=cpu, gpu=gpu, max_concurrent=max_concurrent,
        retries=_integer(raw.get("retries", 2), "retries", fail, low=0), heartbeat_s=heartbeat_s,
        reclaim_after_s=reclaim_after_s, pack=pack, bf16=bf16, compile=compile, description=description, source=source,
    )
    if sampler == "grid" and spec.grid_size() > MAX_CONFIGURATIONS:
        raise fail("search", f"the grid holds {spec.grid_size():,} configurations, more than {MAX_CONFIGURATIONS:,} "
                             "(each is a study trial and a results file); use fewer values, or a sampler with trials: N")
    return spec


def _step(raw, fail) -> tuple[bool, bool]:
    """step: {bf16: bool, compile: bool}: how the training step runs."""
    if not isinstance(raw, dict):
        raise fail("step", "expected a mapping {bf16: true|false, compile: true|false}")
    for k, value in raw.items():
        if k not in ("bf16", "compile"):
            raise fail(f"step.{k}", "unknown key; allowed keys: bf16, compile")
        if not isinstance(value, bool):
            raise fail(f"step.{k}", f"expected true or false, got {shown(value)}")
    return raw.get("bf16", False), raw.get("compile", False)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _data_combinations(datasets, label_counts, batches, zipped) -> list[tuple]:
    """Every (dataset, label_count, batch) the sweep trains: zipped axes paired, the rest crossed."""
    import itertools

    axes = {"dataset": datasets, "label_count": label_counts, "batch": batches}
    groups = [list(zip(*(axes[a] for a in zipped)))] if zipped else []
    free = [a for a in axes if a not in zipped]
    combos = []
    for values in itertools.product(*groups, *(axes[a] for a in free)):
        chosen = dict(zip(zipped, values[0])) if zipped else {}
        chosen.update(zip(free, values[1:] if zipped else values))
        combos.append((chosen["dataset"], chosen["label_count"], chosen["batch"]))
    return combos


def _scheduler(raw, fail) -> Scheduler | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise fail("scheduler", "expected asha, median, or a mapping {type, grace_period, reduction_factor}")
    for k in raw:
        if k not in ("type", "grace_period", "reduction_factor"):
            raise fail(f"scheduler.{k}", "unknown key; allowed keys: type, grace_period, reduction_factor")
    kind = raw.get("type")
    if kind not in SCHEDULERS:
        raise fail("scheduler.type", f"unknown scheduler {shown(kind)}; allowed: {', '.join(SCHEDULERS)}")
    return Scheduler(kind, _integer(raw.get("grace_period", 1), "scheduler.grace_period", fail, low=1),
                     _integer(raw.get("reduction_factor", 3), "scheduler.reduction_factor", fail, low=2))


def _study(raw, fail) -> tuple[int, int]:
    """(heartbeat_s, reclaim_after_s) for a study shared by several drivers."""
    if not isinstance(raw, dict):
        raise fail("study", "expected a mapping {heartbeat_s: N, reclaim_after_s: N}")
    for k in raw:
        if k not in ("heartbeat_s", "reclaim_after_s"):
            raise fail(f"study.{k}", "unknown key; allowed keys: heartbeat_s, reclaim_after_s")
    heartbeat_s = _integer(raw.get("heartbeat_s", 10), "study.heartbeat_s", fail, low=1)
    reclaim_after_s = _integer(raw.get("reclaim_after_s", 6 * heartbeat_s), "study.reclaim_after_s", fail, low=1)
    if reclaim_after_s < 2 * heartbeat_s:  # one late heartbeat must not hand a live configuration to another driver
        raise fail("study.reclaim_after_s", f"must be at least twice heartbeat_s ({2 * heartbeat_s}), got {reclaim_after_s}")
    return heartbeat_s, reclaim_after_s


def _data_options(raw, datasets: list[str], toy: tuple[str, ...], fail) -> DataOptions:
    if not isinstance(raw, dict):
        raise fail("data", "expected a mapping {preprocess: ..., labelled_in_unlabelled: ..., noise: ...}")
    for k in raw:
        if k not in ("preprocess", "labelled_in_unlabelled", "noise"):
            raise fail(f"data.{k}", "unknown key; allowed keys: preprocess, labelled_in_unlabelled, noise")
    preprocess = raw.get("preprocess", "scale")
    if preprocess not in PREPROCESS:
        raise fail("data.preprocess", f"unknown preprocessing {shown(preprocess)}; allowed: {', '.join(PREPROCESS)}")
    both = raw.get("labelled_in_unlabelled", False)
    if not isinstance(both, bool):
        raise fail("data.labelled_in_unlabelled", f"expected true or false, got {shown(both)}")
    noise = raw.get("noise")
    if noise is not None:
        other = [d for d in datasets if d not in toy]
        if other:
            raise fail("data.noise", f"only the toy sets ({', '.join(toy)}) take noise, not {other[0]}")
        if _number(noise, "data.noise", fail) < 0:
            raise fail("data.noise", f"must be >= 0, got {shown(noise)}")
    return DataOptions(preprocess, both, None if noise is None else float(noise))


def _domain(domain, key, hp, fail, check_value, is_option: bool = False) -> Grid | Range:
    if isinstance(domain, dict) and is_option:
        raise fail(key, "is an option (text choices), so it takes a list of choices, not a range {low, high}")
    if isinstance(domain, list):
        if not domain:
            raise fail(key, "empty grid; list at least one value")
        values = tuple(check_value(key, hp, v) for v in domain)
        if len(set(values)) != len(values):
            raise fail(key, "a grid value is listed twice")
        return Grid(values)
    if isinstance(domain, dict):
        for k in domain:
            if k not in ("low", "high", "log"):
                raise fail(f"{key}.{k}", "unknown key; a range has low, high and optionally log")
        if "low" not in domain or "high" not in domain:
            raise fail(key, "a range needs both low and high")
        low = check_value(f"{key}.low", hp, domain["low"])
        high = check_value(f"{key}.high", hp, domain["high"])
        log = domain.get("log", False)
        if not isinstance(log, bool):
            raise fail(f"{key}.log", f"expected true or false, got {shown(log)}")
        if low > high:
            raise fail(key, f"low {shown(low)} is above high {shown(high)}")
        if log and low <= 0:
            raise fail(key, f"a log range needs low > 0, got {shown(low)}")
        return Range(float(low), float(high), log)
    raise fail(key, f"expected a list of values (grid) or {{low, high, log}} (range), got {shown(domain)}")


def shown(value) -> str:
    """A value as a message shows it: its repr, cut to a few dozen characters."""
    from .models.parts import shown as cut

    return cut(value)


def _string(value, key, fail) -> str:
    if not isinstance(value, str) or not value:
        raise fail(key, f"expected text, got {shown(value)}")
    return value


def _number(value, key, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(key, f"expected a number, got {shown(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise fail(key, f"expected a finite number, got {shown(value)}")
    return value


def _integer(value, key, fail, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(key, f"expected an integer, got {shown(value)}")
    if value < low:
        raise fail(key, f"must be >= {low}, got {shown(value)}")
    if high is not None and value > high:
        raise fail(key, f"must be <= {high}, got {shown(value)}")
    return value
