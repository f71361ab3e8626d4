"""Ray Tune runs a spec: a Tuner with OptunaSearch, storage under the results directory.

    DIR/spec.yaml        the spec as it was run
    DIR/optuna.journal   the Optuna study: a finished trial per configuration (optuna-dashboard DIR/optuna.journal)
    DIR/tune/            Ray Tune's experiment state and checkpoints
    DIR/epochs, trials   results (results.py), written by the trials themselves

With --study URL the searcher's study is shared with other drivers instead (study.py), and
DIR/study.txt says which study and which driver this is; DIR/optuna.journal then records this
driver's configurations. A grid's packs, which no searcher hands out, are recorded there as they end.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
from ray.tune.search import ConcurrencyLimiter

from . import allocator, data, footprint, kept, progress, provenance, redact, results, searchers, space, study, tracking
from .errors import Interrupted, SweeperError, first_line
from .packing import auto_packs, pack_limit, packs, sampled_pack_size
from .spec import OBJECTIVES, Spec, load_ran, read_ran, to_yaml
from .ids import CLAIM_KEYS, RERUN_KEY, config_ids, trial_config_ids
from .trainable import Setup, train_configuration

STUDY_FILE = "optuna.journal"
TUNE_DIR = "tune"
SPEC_FILE = "spec.yaml"
SHARED_FILE = results.SHARED_STUDY_FILE
LOST_CHECKPOINT = "does not exist on storage anymore"  # Ray Tune's words when a trial's checkpoint is gone


@dataclass(frozen=True)
class Outcome:
    out_dir: Path
    configurations: int
    errored: int
    wall_s: float
    errors: tuple[str, ...] = ()  # the first line of each errored configuration's error
    location: str = ""  # where the results are: the results directory, or <storage>/<name>


def run(spec: Spec, out_dir: str | Path, address: str | None = None, quiet: bool = False,
        num_cpus: int | None = None, data_dir: str | Path | None = None, storage: str | None = None,
        study_url: str | None = None, driver: str | None = None, trainable=train_configuration, bar: bool = False) -> Outcome:
    """Run a spec into a new results directory.

    `storage` (a path every node reaches, or a URI such as s3://bucket/sweeps) takes the results and
    Ray Tune's checkpoints, under <storage>/<name>; `out_dir` on the driver keeps the Optuna study.
    `study_url` shares the study with other drivers, this one named `driver` (study.py).
    `trainable` is for tests that inject faults. `bar`: progress as a tqdm.auto bar (a widget in a notebook)
    instead of lines.
    """
    results.results_folder(out_dir)
    results.no_dangling_link(out_dir)
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out_dir}: is a file, not a folder; give a new folder for the results")
    with results.one_driver(out, "run"):  # before anything else, held for the driver's life
        if any((out / part).exists() for part in ("trials", "epochs", TUNE_DIR, STUDY_FILE, SHARED_FILE)):
            raise SweeperError(f"{out}: already holds a sweep; continue it with 'sweeper resume {out_dir}', or choose another --out")
        shown = None if quiet else "bar" if bar else "lines"
        return _start(spec, out, address, shown, num_cpus, data_dir, storage, study_url, driver, trainable)


def _start(spec: Spec, out: Path, address: str | None, shown: str | None, num_cpus: int | None, data_dir, storage: str | None,
           study_url: str | None, driver: str | None, trainable) -> Outcome:
    if study_url is not None and not study_url.strip():  # an unset $STUDY: not a sweep of its own, silently
        raise SweeperError("--study: empty; give the shared study's URL or journal path, or leave --study out")
    if study_url and spec.pack not in (1, "auto") and spec.sampler == "grid":
        raise SweeperError(f"{spec.source}: pack: a shared study (--study) hands out one grid point at a time; "
                           "use pack: 1 with --study, or a sampler")
    if driver is not None:
        study.checked_driver(driver)
    location = _location(out, storage, spec.name)
    with _held(location, out, "run"):
        return _started(spec, out, location, address, shown, num_cpus, data_dir, study_url, driver, trainable)


def _started(spec: Spec, out: Path, location: str, address: str | None, shown: str | None, num_cpus: int | None, data_dir,
             study_url: str | None, driver: str | None, trainable) -> Outcome:
    datasets = _datasets(spec, data_dir)  # first: a bad file stops the sweep before anything starts
    if not address:  # a joined cluster's nodes are not this machine
        footprint.check_memory(spec)
    tracking.check(spec)  # a tracker's library missing: one line, nothing written
    shared = study.open_shared(spec, study_url) if study_url else None  # before writing anything: a bad URL leaves nothing
    how_to_continue = ("its unfinished configurations go back to the shared study: run the same 'sweeper run ... --study URL' again"
                       if study_url else f"the rows so far are kept; continue with: sweeper resume {out}")
    with _ray(address, num_cpus, how_to_continue) as signals:  # packs are sized to the resources it reports
        _fits_a_node(spec, joined=bool(address))
        return _run(spec, out, location, datasets, shared, study_url, driver, shown, trainable, signals)


def _run(spec: Spec, out: Path, location: str, datasets: dict, shared, study_url: str | None, driver: str | None,
         shown: str | None, trainable, signals: StopSignals) -> Outcome:
    grouped, spec = (None, spec) if shared else _packs(spec)
    out.mkdir(parents=True, exist_ok=True)
    for where in {str(out), location}:  # the spec as run (after --scale), for reports and resume
        results.write_text(where, SPEC_FILE, f"# run from {spec.source}\n" + to_yaml(spec))
    board, param_space, recorders = None, None, []
    size = _pack_size(spec)  # once: the slots it reads may change while a cluster grows
    if shared:  # the shared study ends the sweep itself, when every driver's configurations are done
        board = study.SharedStudyDriver(study_url, spec, driver or default_driver())
        results.write_text(str(out), SHARED_FILE, f"study: {study.describe(study_url)}\nname: {spec.name}\ndriver: {board.driver}\n")
        searcher, count, progress = _shared_searcher(spec, board, shared, location, size), -1, Progress(spec, trials=_sampled_packs(spec, size))
        recorders = [_recorder(spec, out, location)]  # this driver's configurations, in its own study too
    elif grouped is not None:  # a grid in packs: Tune's own grid over the packs, one Tune trial each
        param_space = {"pack": tune.grid_search(grouped)}
        searcher, count, recorders = None, 1, [_recorder(spec, out, location)]
        small, large = min(map(len, grouped)), max(map(len, grouped))
        sizes = f"{small}" if small == large else f"{small}-{large}"
        progress = Progress(spec, trials=len(grouped),
                            unit=f"configurations (in {len(grouped)} packs of {sizes}, {spec.resources.cpu:g} CPU each)")
    else:  # the searcher records each configuration in its own study
        searcher, progress = _searcher(spec, out, location, size), Progress(spec, trials=_sampled_packs(spec, size))
        count = -1 if size > 1 else space.configuration_count(spec)  # packs: the searcher says when it is done

    def tuner() -> tune.Tuner:
        return tune.Tuner(
            _runnable(spec, location, datasets, trainable),
            param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=None if grouped or size > 1 else _scheduler(spec), num_samples=count,
                                        reuse_actors=True),  # a trial reuses a worker: ~0.6 s a trial instead of ~5 s
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=location,
                verbose=0,
                callbacks=[MarkStopped(location), *recorders, *tracking.callbacks(spec, location, out)] + ([progress] if shown else []),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=spec.retries),
            ),
        )

    progress.bar = shown == "bar"
    heartbeats = study.Heartbeats(board) if board else None
    if heartbeats:
        heartbeats.start()
    provenance.start(location, "run", spec.resources.gpu > 0, _spec_digest(out))
    try:
        return replace(_fit(tuner, out, signals)[0], location=location)
    finally:
        provenance.finish(location)
        if heartbeats:
            heartbeats.stop()


def _packs(spec: Spec) -> tuple[list[list[dict]] | None, Spec]:
    """A grid's packs, sized to the slots of the Ray this driver is in (packing.auto_packs), or None where
    each configuration trains alone; and the spec its trials run with (with pack: auto, slots the packs
    leave over go to them as threads)."""
    limit = pack_limit(spec)
    if limit == 1 or spec.sampler != "grid":  # a sampled search asks for its packs as it goes (PackSearch)
        return None, spec
    slots = _slots(spec)
    memory = ray.cluster_resources().get("memory", 0.0)
    at_most = limit
    if limit is None and spec.resources.gpu == 0 and memory > 0:  # auto: no pack above a slot's share of the memory Ray reports
        at_most = footprint.configurations_that_fit(spec, memory / slots)
    grouped, spare = auto_packs(spec, space.grid_points(spec), slots, at_most)
    if limit is None and spec.resources.gpu == 0 and spare > 1:
        spec = spec.replace(resources=spec.resources.model_copy(update={"cpu": spec.resources.cpu * spare}))
    return (None if all(len(p) == 1 for p in grouped) else grouped), spec


def _slots(spec: Spec) -> int:
    """How many trials of `spec` the Ray this driver is in runs at once."""
    available = ray.cluster_resources()
    if spec.resources.gpu > 0:
        return max(1, int(available.get("GPU", 0) // spec.resources.gpu))
    return max(1, int(available.get("CPU", 1) // spec.resources.cpu))


def _pack_size(spec: Spec) -> int:
    """How many configurations a sampled search asks for at once (packing.sampled_pack_size); 1 for a grid,
    whose packs are made up front (_packs)."""
    return 1 if spec.sampler == "grid" else sampled_pack_size(spec, _slots(spec))


def _sampled_packs(spec: Spec, size: int) -> int | None:
    """The Tune trials a sampled search in packs of `size` runs, at the fewest (a pack splits where network shapes differ)."""
    return -(-spec.trials // size) if size > 1 else None


def default_driver() -> str:
    """This driver's name in a shared study: host and process, unique among drivers running at once."""
    host = socket.gethostname()
    if len(host) > 40:  # within a driver name's 64 characters, and still one name a host (pods differ at their ends)
        host = f"{host[:32]}-{hashlib.sha256(host.encode()).hexdigest()[:7]}"
    return f"{host}-{os.getpid()}"


def resume(out_dir: str | Path, address: str | None = None, num_cpus: int | None = None,
           data_dir: str | Path | None = None, storage: str | None = None, trainable=train_configuration) -> Outcome:
    """Continue a sweep whose driver stopped: finished configurations stay as they are, unfinished
    ones continue from their last checkpoint, and the Optuna study goes on where it was."""
    out = results.results_folder(out_dir, "sweeper resume").resolve()
    read_ran(out)  # a results directory (before the lock, which would make one)
    with results.one_driver(out, "resume"):
        return _resume(out, address, num_cpus, data_dir, storage, trainable)


def _resume(out: Path, address: str | None, num_cpus: int | None, data_dir, storage: str | None, trainable) -> Outcome:
    if (out / SHARED_FILE).is_file():
        raise SweeperError(f"{out}: this driver took its work from a shared study ({out / SHARED_FILE}); its unfinished "
                           "configurations go back to that study: run 'sweeper run SPEC --study URL' again, into a new --out")
    if (out / STUDY_FILE).is_symlink():  # Optuna appends to it: never through a link out of the directory
        raise SweeperError(f"{out / STUDY_FILE}: is a link; resume appends only to the results directory's own study: "
                           "put the file itself there, or resume a copy")
    spec = load_ran(out)  # the precision it started in, whatever today's default
    location = _location(out, storage, spec.name)
    ran = provenance.spec_digest_ran(location)
    if ran and ran != _spec_digest(out):  # the rows, Tune's state and the study all belong to the spec that ran
        raise SweeperError(f"{out}/{SPEC_FILE}: changed since the sweep started; resume goes on with the sweep as it ran: put "
                           "its spec back, or run the changed spec into a new --out")
    with _held(location, out, "resume"):
        return _resumed_at(spec, out, location, address, num_cpus, data_dir, trainable)


def _resumed_at(spec: Spec, out: Path, location: str, address: str | None, num_cpus: int | None, data_dir, trainable) -> Outcome:
    datasets = _datasets(spec, data_dir)
    tracking.check(spec, reach=False)
    _trusted_state(location)
    if not _can_restore(location):
        raise SweeperError(f"{redact.url(location)}/{TUNE_DIR}: Ray Tune left no state to resume from; give the same --storage "
                           "as the run, or start the sweep again into a new --out")

    def tuner() -> tune.Tuner:
        return tune.Tuner.restore(f"{location}/{TUNE_DIR}", _runnable(spec, location, datasets, trainable),
                                  resume_unfinished=True, resume_errored=True)

    provenance.start(location, "resume", spec.resources.gpu > 0, _spec_digest(out))
    try:
        with _ray(address, num_cpus, f"the rows so far are kept; continue with: sweeper resume {out}") as signals:
            _fits_a_node(spec, joined=bool(address))
            outcome = _resumed(spec, out, location, datasets, tuner, trainable, signals)
    finally:
        provenance.finish(location)
    return replace(outcome, location=location)


def _resumed(spec: Spec, out: Path, location: str, datasets: dict, tuner, trainable, signals: StopSignals) -> Outcome:
    outcome, grid = _fit(tuner, out, signals)
    again, kept_errors = _unfinished(spec, location, grid)
    if again:
        def rerun_configuration(config, **parameters):
            return trainable(config[RERUN_KEY], **parameters)

        def rerun() -> tune.Tuner:
            return tune.Tuner(
                _runnable(spec, location, datasets, rerun_configuration),
                param_space={RERUN_KEY: tune.grid_search(again)},
                tune_config=tune.TuneConfig(reuse_actors=True),
                run_config=tune.RunConfig(name=f"{TUNE_DIR}-rerun-{int(time.time())}", storage_path=location, verbose=0,
                                          callbacks=[MarkStopped(location), _recorder(spec, out, location),
                                                     *tracking.callbacks(spec, location, out)],
                                          failure_config=tune.FailureConfig(max_failures=spec.retries)),
            )

        rerun_outcome, _ = _fit(rerun, out, signals)
        outcome = Outcome(out, outcome.configurations, kept_errors + rerun_outcome.errored,
                          outcome.wall_s + rerun_outcome.wall_s, outcome.errors + rerun_outcome.errors)
    return outcome


@dataclass(frozen=True)
class TuneTrial:
    """What resume needs of one trial of Ray Tune's resumed experiment."""

    path: str  # the trial's directory: what tells trials apart
    config: dict
    trial_id: str
    error: str | None  # the text of its error, if it ended in one

    @property
    def config_ids(self) -> list[str]:
        return config_ids(self.config, self.trial_id)

    @property
    def size(self) -> int:
        """Configurations it trains: a pack counts each of its own."""
        return len(self.config.get("pack", [None]))


@dataclass(frozen=True)
class Rerun:
    """What resume does after Tune's resumed experiment (rerun_plan)."""

    again: list[dict]  # configurations (or packs) to run again from scratch
    stale: set[str]  # configuration ids whose rows go first, so that each configuration keeps one set
    failed: int  # configurations that still count as failed


def _unfinished(spec: Spec, location: str, grid: tune.ResultGrid) -> tuple[list[dict], int]:
    """After a resumed experiment: the configurations to run again, from scratch (their unfinished rows
    deleted first), and how many configurations still count as failed."""
    trials = [TuneTrial(r.path, dict(r.config), _trial_id(r), None if r.error is None else str(r.error)) for r in grid]
    plan = rerun_plan(spec, results.configurations(location), trials)
    for config_id in plan.stale:
        results.remove_configuration(location, config_id)
    return plan.again, plan.failed


def rerun_plan(spec: Spec, found: dict[str, tuple[str | None, bool]], trials: list[TuneTrial]) -> Rerun:
    """What to run again after a resumed experiment, from the rows written (`found`, as
    results.configurations gives them: config id → (point, every seed ended)) and Tune's trials.

    Ray Tune's saved state can lag what happened before the kill:
    - a trial whose checkpoint Tune deleted (num_to_keep) before saving its state points at nothing:
      Tune can neither resume it nor restart it under its searcher;
    - the Optuna study is written as it goes, Tune's state only now and then: grid points the study
      handed out after Tune last saved are no longer in its queue, and Tune never heard of them;
    - a trial Tune started but never saved left rows no resumed trial owns (an orphan's).
    The rows are the truth: a configuration whose every seed ended is done, whatever Tune remembers.
    """
    finished = lambda ids: all(found.get(i, (None, False))[1] for i in ids)  # noqa: E731
    lost = [t for t in trials if t.error is not None and LOST_CHECKPOINT in t.error]
    errored = [t for t in trials if t.error is not None and t not in lost]
    if spec.sampler == "grid" and None not in {point for point, _ in found.values()}:  # None: rows from before points were kept
        done = {point for point, ended in found.values() if ended}
        missing = [p for p in space.grid_points(spec) if space.point_key(p) not in done]
        limit = spec.pack if isinstance(spec.pack, int) else 1  # auto: the few points left run alone
        again = [{"pack": group} for group in packs(spec, missing, limit)] if limit > 1 else missing
        rerun = {space.point_key(p) for p in missing}
        stale = {i for i, (point, ended) in found.items() if not ended and point in rerun}
        kept_failed = [t for t in errored if finished(t.config_ids)]
    else:
        again = [t.config for t in lost if not finished(t.config_ids)]
        stale = {i for t in lost for i in t.config_ids if not found.get(i, (None, True))[1]}
        kept_failed = errored
    owned = {i for t in trials for i in t.config_ids}
    stale |= {i for i, (_, ended) in found.items() if not ended and i not in owned}  # orphans
    return Rerun(again, stale, sum(t.size for t in kept_failed))


def _trial_id(result) -> str:
    """The Tune trial id of a result: its metrics carry it; its directory name too (name_<id>_...)."""
    return result.metrics.get("trial_id") or Path(result.path).name.split("_")[2]


@contextmanager
def _held(location: str, out: Path, command: str) -> Iterator[None]:
    """The results location, where --storage puts it outside the results directory, for the block. A new run
    refuses one that already holds a sweep (two sweeps' rows would mix there); a local one is held by one
    driver at a time, as the results directory is. (An object store has no lock: there, the first driver's
    files refuse a second run, and two drivers resuming one location at once are the user's to avoid.)"""
    local = results.local_path(location)
    if local == out:  # --storage names the results directory itself, however spelt: held already
        yield
        return
    if local is None:
        _fresh(location, command)
        yield
        return
    results.no_dangling_link(location.removeprefix("file://"), "--storage")  # as given: its resolved path hides the link
    inside = results.inside_results(local)
    if inside:
        raise SweeperError(f"--storage {location}: is inside the results of {inside[0]} ({inside[1]}); give a location of your own")
    with results.one_driver(local, command):
        _fresh(location, command)  # once held: no other driver can start writing there in between
        yield


def _fresh(location: str, command: str) -> None:
    if command == "run" and results.holds_any(location, (*results.TABLES, TUNE_DIR)):
        raise SweeperError(f"--storage: {redact.url(location)} already holds a sweep of this name; give another --storage, "
                           f"or rename the spec (name:)")


def _spec_digest(out: Path) -> str:
    """The SHA-256 of the results directory's spec.yaml, as written at the sweep's start."""
    return hashlib.sha256(results.read_bytes(out, SPEC_FILE)).hexdigest()


def _can_restore(location: str) -> bool:
    """Whether Ray Tune left state to resume at the location: one line, not pyarrow's error, for a URI it cannot
    open, and no silent wait on one that does not answer."""
    import pyarrow as pa

    results.filesystem(location)  # a scheme pyarrow has no filesystem for: one line
    try:
        return results.answered_in_time(lambda: tune.Tuner.can_restore(f"{location}/{TUNE_DIR}"), location) \
            if "://" in location else tune.Tuner.can_restore(f"{location}/{TUNE_DIR}")
    except (OSError, pa.ArrowException, ValueError) as e:
        raise SweeperError(f"--storage {redact.url(location)}: cannot be read ({redact.message(first_line(e), location)}); "
                           "check the URI and its credentials") from None


def _trusted_state(location: str) -> None:
    """Ray Tune's saved state is pickles (tune/tuner.pkl, the searcher's, the trials' checkpoints): restoring
    it runs code the files hold. So resume refuses state that someone else could have written: a file or
    folder under tune* that another user owns, or that others may write to. (Local results only: an object
    store's objects have no owner here.)"""
    local = results.local_path(location)
    if local is None:
        return
    me = os.getuid()
    # rewritten and deleted where they lie: never through a link out of the directory (the trackers' too)
    for name in (*results.TABLES, kept.FOLDER, tracking.RECORDS, "mlflow.db", "mlruns", "wandb"):
        if (local / name).is_symlink():
            raise SweeperError(f"{local / name}: is a link; resume writes only into the results directory's own "
                               "folders: put the folder itself there, or resume a copy")
    for folder in sorted(local.glob(f"{TUNE_DIR}*")):
        for path in [folder, *folder.rglob("*")]:
            info = path.lstat()
            if path.is_symlink():  # restored from and rewritten there: Tune's state is the directory's own files
                raise SweeperError(f"{path}: is a link in Ray Tune's saved state; resume reads and rewrites only the results "
                                   "directory's own files: put the folder itself there, or resume a copy")
            if info.st_uid != me or info.st_mode & 0o022:
                whose = "another user's" if info.st_uid != me else "writable by others"
                raise SweeperError(f"{path}: Ray Tune's saved state here is {whose}; resuming runs code from these files "
                                   "(they are pickles), so only your own are resumed: check where this directory came from, "
                                   "and if you trust it, take it over (chown -R, chmod -R go-w)")


def _fits_a_node(spec: Spec, joined: bool) -> None:
    """Refuse a trial that no node of this Ray can hold, which Tune would wait for for ever. A cluster
    joined with --address may still grow (an autoscaler): there Progress says what the trials wait for."""
    missing = _unfit(spec)
    if missing and not joined:
        key, nodes = missing
        raise SweeperError(f"{spec.source}: {key}: each trial asks for {getattr(spec.resources, key.split('.')[1]):g}, "
                           f"but no node of this Ray has as much ({nodes}); lower {key}, or join a cluster that has it with --address")


def _unfit(spec: Spec) -> tuple[str, str] | None:
    """(the resources key, what the nodes have) when no alive node holds one trial's resources; else None."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu}
    if any(all(node.get(kind, 0.0) >= amount for kind, amount in need.items() if amount > 0) for node in nodes):
        return None
    short = "GPU" if need["GPU"] > 0 and not any(node.get("GPU", 0.0) >= need["GPU"] for node in nodes) else "CPU"
    has = "; ".join(f"{node.get('CPU', 0.0):g} CPU, {node.get('GPU', 0.0):g} GPU" for node in nodes[:4]) or "none"
    return f"resources.{short.lower()}", f"its nodes have: {has}"


def _location(out: Path, storage: str | None, name: str) -> str:
    """Where results and checkpoints go: <storage>/<name>, else the results directory itself."""
    return f"{storage.rstrip('/')}/{name}" if storage else str(out)


def _enough_of_each_class(spec: Spec, datasets: dict) -> None:
    """Every label count against the real class counts of the loaded data (for sets the spec check cannot know)."""
    import numpy as np

    for name, loaded in datasets.items():
        rarest = int(np.bincount(loaded.y_train, minlength=loaded.n_classes).min())
        for count in spec.label_counts:
            if count // loaded.n_classes > rarest:
                raise SweeperError(f"{spec.source}: label_count: {count} needs {count // loaded.n_classes} labels per class, but the "
                                   f"rarest class of {name} has {rarest} training points; choose at most {rarest * loaded.n_classes}")


def _datasets(spec: Spec, data_dir) -> dict:
    """Every dataset of the spec, read and verified once, here in the driver, before anything is written."""
    loaded = {name: data.load(name, data_dir, spec.data) for name in spec.datasets}
    _enough_of_each_class(spec, loaded)
    return loaded


def _runnable(spec: Spec, location: str, datasets: dict, trainable):
    """The trainable with its resources; the datasets go into this Ray session's object store,
    so each node fetches them once (call it with Ray started: with_parameters puts them there)."""
    return tune.with_resources(tune.with_parameters(trainable, setup=Setup(spec, location), data=datasets),
                               {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def _fit(tuner, out: Path, signals: StopSignals) -> tuple[Outcome, tune.ResultGrid]:
    start = time.monotonic()
    grid = signals.fit(tuner())
    errors = tuple((str(e).strip().splitlines() or [type(e).__name__])[-1] for e in grid.errors)
    sizes = [len(r.config.get("pack", [None])) for r in grid]  # a pack counts each of its configurations
    failed = sum(size for size, r in zip(sizes, grid) if r.error is not None)
    return Outcome(out, sum(sizes), failed, time.monotonic() - start, errors), grid


def _local_study(spec: Spec, out: Path) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """This driver's own study, a journal file in the results directory (made if it is not there yet)."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / STUDY_FILE)))
    return optuna.create_study(storage=storage, study_name=spec.name, directions=space.directions(spec), load_if_exists=True), storage


def _searcher(spec: Spec, out: Path, location: str, size: int):
    """OptunaSearch over this driver's own study; a grid is enqueued there first, and the sweep ends
    when its queue is empty. It records each configuration as its trial ends."""
    local, storage = _local_study(spec, out)
    if size > 1:
        return _pack_search(spec, storage, location, size)
    options = dict(space=space.DefineByRun(spec), study_name=spec.name, storage=storage, spec=spec, location=location,
                   **_objectives(spec))
    if spec.sampler != "grid":
        return _limited(spec, searchers.LocalSearch(**options))
    space.enqueue_grid(local, spec)
    return _limited(spec, searchers.GridSearch(**options))


def _shared_searcher(spec: Spec, board: study.SharedStudyDriver, storage, location: str, size: int):
    """OptunaSearch over a study other drivers share; the grid is already enqueued there. A sampled search
    in packs asks for a pack at a time there (PackSearch)."""
    if size > 1:
        return _pack_search(spec, storage, location, size, board)
    return _limited(spec, searchers.SharedSearch(board, storage, location, space=searchers.ClaimingDefineByRun(spec, board.driver),
                                                 **_objectives(spec)))


def _pack_search(spec: Spec, storage, location: str, size: int, board: study.SharedStudyDriver | None = None):
    """A sampled search asking for a pack at a time, over this driver's study or (`board`) a shared one."""
    return _limited(spec, searchers.PackSearch(spec=spec, storage=storage, location=location, size=size, board=board,
                                               **_tune_objectives(spec)))


def _recorder(spec: Spec, out: Path, location: str) -> RecordConfigurations:
    """What records the configurations that no searcher of this driver's own study hands out."""
    _local_study(spec, out)
    return RecordConfigurations(spec, location, str(out / STUDY_FILE))


def _objectives(spec: Spec) -> dict:
    return dict(**_tune_objectives(spec), sampler=space.sampler(spec))


def _tune_objectives(spec: Spec) -> dict:
    """The metrics Tune's searcher follows and their modes. objective: mean over seeds of the best val_acc."""
    metrics = searchers.TUNE_METRICS
    return dict(metric=[metrics[o] for o in spec.objectives] if len(spec.objectives) > 1 else "objective",
                mode=[OBJECTIVES[o] for o in spec.objectives] if len(spec.objectives) > 1 else "max")


def _limited(spec: Spec, searcher):
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent) if spec.max_concurrent else searcher


def _scheduler(spec: Spec):
    """Early stopping on the epoch's mean validation accuracy, or none: for trials of one configuration. A pack's
    trial (a grid's, or a sampler's asked at once) has none, as it would stop every member on their mean: the pack
    applies the rule to each member itself (stopping.py)."""
    if spec.scheduler is None:
        return None
    options = dict(time_attr="training_iteration", metric="val_acc", mode="max", grace_period=spec.scheduler.grace_period)
    if spec.scheduler.kind == "asha":
        return ASHAScheduler(max_t=spec.epochs, reduction_factor=spec.scheduler.reduction_factor, **options)
    return MedianStoppingRule(min_samples_required=2, **options)


class MarkStopped(tune.Callback):
    """A trial the scheduler ended never finishes its epochs: its rows say so."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def on_trial_complete(self, iteration, trials, trial, **info):
        for config_id in trial_config_ids(trial.config, trial.trial_id):
            results.mark_stopped(self.out_dir, config_id)


class RecordConfigurations(tune.Callback):
    """Each configuration a Tune trial trains, recorded in the results directory's study once its rows
    say it ended (study.summarise), with its curve of intermediate values (study.objective_curve): a pack's
    members each as a trial of their own, a diverged or stopped member as soon as the pack reports it. A
    configuration already recorded stays as it is (study.RecordedConfigurations), so a retry or a resume
    never records one twice. For trials no searcher of that study tells: packs, a shared
    study's configurations, resume's reruns.

    Holds no open storage: Tune pickles its callbacks with the experiment state."""

    def __init__(self, spec: Spec, location: str, journal: str):
        self.spec, self.location, self.journal = spec, location, journal
        self.ended: dict[str, int] = {}  # Tune trial id → diverged and stopped members last reported
        self._ledger: study.RecordedConfigurations | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ledger": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("ended", state.get("diverged", {}))  # pickled before stopped members counted

    def on_trial_result(self, iteration, trials, trial, result, **info):
        ended = result.get("diverged", 0) + result.get("stopped", 0)
        if ended > self.ended.get(trial.trial_id, 0):  # a member may have ended early
            self.ended[trial.trial_id] = ended
            self._record(trial, tune_finished=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record(trial, tune_finished=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record(trial, tune_finished=False)

    def _record(self, trial, tune_finished: bool) -> None:
        for config_id in trial_config_ids(trial.config, trial.trial_id):
            rows = results.configuration_rows(self.location, config_id)
            summary = study.summarise(self.spec, rows, tune_finished)
            if summary is not None:
                epochs = results.configuration_epoch_rows(self.location, config_id, range(1, (summary.epochs or 0) + 1))
                summary = replace(summary, curve=study.objective_curve(self.spec, epochs))
                self.ledger().record(study.point_of(rows[0]), summary, config_id)

    def ledger(self) -> study.RecordedConfigurations:
        if self._ledger is None:
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(self.journal))
            self._ledger = study.RecordedConfigurations(optuna.load_study(study_name=self.spec.name, storage=storage), storage, self.spec)
        return self._ledger


@contextmanager
def _ray(address: str | None, num_cpus: int | None, how_to_continue: str) -> Iterator[StopSignals]:
    """Join `address`, or start Ray in this process, for the block; and stop on SIGINT and SIGTERM there
    (StopSignals). Where Ray was already running (the caller's Ray), its signals stay the caller's too."""
    if ray.is_initialized():
        yield StopSignals(how_to_continue)  # not entered: no handler of its own
        return
    starting = "Ray was still starting, nothing had run; give the same command again"
    with StopSignals(starting) as signals:  # from before Ray starts until it has stopped: a signal is one line throughout
        try:
            try:
                _start_ray(address, num_cpus)
            except SystemExit as e:  # Ray's SIGTERM handler, set first thing in ray.init, exits with code 15 and no word
                if e.code != signal.SIGTERM:
                    raise
                raise Interrupted(signal.SIGTERM, starting) from None
            signals.take_over(how_to_continue)  # from ray.init's handler
            yield signals
        finally:
            ray.shutdown()


# Ray tries to reach a cluster's GCS this many times before giving up (its default: 20; 120 where RAY_gcs_storage is
# rocksdb, whose head replays its store on a restart). A try lasts about a second where nothing listens, and about 30 s
# where something takes the connection and never answers.
JOIN_ATTEMPTS = 4


def _start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join `address`, or start Ray in this process. Nothing may touch Ray before this (ray.put would
    start a Ray with default options). A cluster's address whose GCS never answers (a wrong port that something
    else holds, a head that hangs) is given up on after JOIN_ATTEMPTS tries, about two minutes, rather than Ray's
    twenty (over ten minutes): RAY_gcs_server_port_wait_time_s, Ray's own budget for them, unless set already. Not
    for "local" (a head started here, whose processes would inherit it), nor ray:// (Ray Client, which ignores it),
    nor where RAY_gcs_storage is rocksdb (Ray allows a head replaying its store 120 tries; this would cut them)."""
    options = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                   runtime_env={"env_vars": allocator.worker_env()})  # workers start with malloc keeping freed memory
    budget = "RAY_gcs_server_port_wait_time_s"
    joining = bool(address) and address != "local" and not address.startswith("ray://")  # "local" starts a head here
    ours = joining and budget not in os.environ and os.environ.get("RAY_gcs_storage") != "rocksdb"
    try:
        if address:
            if ours:
                os.environ[budget] = str(JOIN_ATTEMPTS)
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:  # ConnectionError first, an OSError too: a GCS that does not answer
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        hint = "check --address and that the cluster is up" if address else "check that /tmp (or $TMPDIR) is writable and has space"
        raise SweeperError(f"cannot start or join {where} ({first_line(e)}); {hint}") from None
    except OSError as e:  # a folder Ray writes its session or state to: not writable, not a folder, a full disk
        where = f" ({e.filename})" if e.filename else ""
        raise SweeperError(f"cannot start a local Ray: {e.strerror or first_line(e)}{where}; Ray writes its session under "
                           "$TMPDIR (else /tmp) and its state under $HOME: point them at a writable folder with free space") from None
    finally:
        if ours:
            os.environ.pop(budget, None)


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM while a driver's Ray runs. Inside fit(), the first one asks Ray Tune for
    its own graceful stop, the one its SIGINT handler makes (that handler is switched off, so that Tune
    does not stop quietly as if done): the loop ends, the trials are stopped, the experiment state is saved,
    and fit() raises Interrupted, so `sweeper resume` can go on. Outside fit(), or at a second signal, the
    block is left at once with Interrupted. Handlers are set in the main thread only (Python's rule).

    Ray's own processes may have been sent the signal too (SIGTERM to the process group, SLURM's scancel):
    then Tune cannot stop in order, so a driver not stopped within STOP_S of the first signal exits as a
    killed one would, its rows kept for `sweeper resume` all the same."""

    STOP_S = 20.0

    def __init__(self, how_to_continue: str):
        self.how_to_continue = how_to_continue
        self.received: int | None = None
        self.fitting = False
        self.previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
            self.previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def take_over(self, how_to_continue: str) -> None:
        """The handlers set again, over those set meanwhile (ray.init's on SIGTERM), and what a stop from now
        on tells the user; __exit__ still puts back those from before __enter__."""
        self.how_to_continue = how_to_continue
        if self.previous:
            for s in self.previous:
                signal.signal(s, self._stop)

    def _stop(self, signum: int, frame) -> None:
        first, self.received = self.received is None, self.received or signum
        tune_stop = signal.getsignal(signal.SIGUSR1)  # what tune.run sets for the duration of a run
        if first and self.fitting and callable(tune_stop):
            threading.Thread(target=self._deadline, name="sweeper-stop", daemon=True).start()
            tune_stop(signum, frame)
            return
        raise Interrupted(self.received, self.how_to_continue)

    def _deadline(self) -> None:
        time.sleep(self.STOP_S)
        interrupted = Interrupted(self.received, self.how_to_continue)
        print(redact.printable(f"sweeper: {interrupted} (Ray did not stop within {self.STOP_S:g} s, so the driver stopped "
                               "without it)"), file=sys.stderr, flush=True)
        os._exit(interrupted.exit_code)

    def fit(self, tuner: tune.Tuner) -> tune.ResultGrid:
        usr1 = signal.getsignal(signal.SIGUSR1) if self.previous else None
        self.fitting = True
        try:
            grid = tuner.fit()
        finally:
            self.fitting = False
            if self.previous:  # Tune leaves its handler behind, on an event no loop reads any more
                signal.signal(signal.SIGUSR1, usr1)
        if self.received is not None:
            raise Interrupted(self.received, self.how_to_continue)
        return grid


class Progress(tune.Callback):
    """Progress (progress.State) as Tune reports: configurations (or packs) done, running and failed, epochs
    trained of all, the best mean validation accuracy so far, and the time left at the pace measured since this
    driver started. On a
    terminal one line redrawn in place with a bar; elsewhere (ray job logs, a file) a plain line when a
    trial starts or ends, and at most every `every_s` between.

    Holds no stream: Tune pickles its callbacks with the experiment state.
    """

    def __init__(self, spec: Spec, every_s: float = 10.0, trials: int | None = None, unit: str = "configurations"):
        """`trials`: the Tune trials the sweep will run (its packs), when not one per configuration."""
        self.trials = space.configuration_count(spec) if trials is None else trials
        self.unit = unit
        self.spec = spec
        self.seeds, self.epochs = len(spec.seeds), spec.epochs
        self.configurations = space.configuration_count(spec)
        self.every_s = every_s
        self.start = time.monotonic()
        self.last = 0.0
        self.best: tuple[float, dict] | None = None
        self.trained: dict[str, int] = {}  # Tune trial id -> member-epochs reported
        self.bar = False  # a tqdm.auto bar instead of lines
        self._tqdm = None
        self.timed: dict[str, tuple[int, float]] = {}  # Tune trial id -> (epochs to go, seconds per epoch)
        self.first_timed: dict[str, tuple[int, float]] = {}  # Tune trial id -> (epoch, wall_s) of its first result here

    def on_trial_start(self, iteration, trials, trial, **info):
        self._print(trials)

    def on_step_end(self, iteration, trials, **info):
        """Nothing running and no node fits a trial (in a cluster that may grow): say what the sweep waits for."""
        if time.monotonic() - self.last < self.every_s or any(t.status == "RUNNING" for t in trials):
            return
        self.last = time.monotonic()
        missing = _unfit(self.spec)
        if missing:
            print(f"waiting for a node that fits a trial ({missing[0]}); {missing[1]}; an autoscaler may add one",
                  file=sys.stdout, flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        objective = result.get("objective")
        if objective is not None and (self.best is None or objective > self.best[0]):
            self.best = (objective, trial.config)
        epoch = int(result.get("epoch", 0))
        self.trained[trial.trial_id] = epoch * self._members(trial)
        if epoch and result.get("wall_s"):  # the members' training time so far, summed
            # the pace since this driver first heard of the trial, once it has: a resumed run's or a busier machine's
            first_epoch, first_wall = self.first_timed.setdefault(trial.trial_id, (epoch, result["wall_s"]))
            if epoch < first_epoch or result["wall_s"] < first_wall:  # trained again from scratch: measured anew
                first_epoch, first_wall = self.first_timed[trial.trial_id] = (epoch, result["wall_s"])
            pace = (result["wall_s"] - first_wall) / (epoch - first_epoch) if epoch > first_epoch else result["wall_s"] / epoch
            self.timed[trial.trial_id] = (max(0, self.epochs - epoch), pace)  # M1's m1_epochs run past them
        if time.monotonic() - self.last >= self.every_s:
            self._print(trials)

    def _members(self, trial) -> int:
        """The trial's member trainings: its configurations (a pack's, or one) times the seeds."""
        return len(trial.config.get("pack", [None])) * self.seeds

    # Tune calls these before it sets the trial's new status
    def on_trial_complete(self, iteration, trials, trial, **info):
        self._print(trials, ended=(trial, "TERMINATED"))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(trials, ended=(trial, "ERROR"))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tqdm": None}  # Tune pickles its callbacks; a bar is drawn anew

    def __setstate__(self, state: dict) -> None:
        """Restored by `sweeper resume` (Tune's pickle of the run as it started): time from this driver's start, since
        the monotonic clock of the first one may be another boot's."""
        self.__dict__.update(state, start=time.monotonic(), last=0.0, first_timed={})

    def on_experiment_end(self, trials, **info):
        if self._tqdm is not None:
            self._tqdm.close()
            return
        if sys.stdout.isatty():
            print(file=sys.stdout, flush=True)  # leave the redrawn line

    def _print(self, trials, ended=None) -> None:
        self.last = time.monotonic()
        for t in trials:  # a resumed sweep: what a trial trained before it, as Tune restored its last result
            if t.trial_id not in self.trained and t.has_reported_at_least_once and (t.last_result or {}).get("epoch"):
                self.trained[t.trial_id] = int(t.last_result["epoch"]) * self._members(t)
        status = [ended[1] if ended and t is ended[0] else t.status for t in trials]
        sizes = [len(t.config.get("pack", [None])) for t in trials]  # configurations per trial
        counted = lambda state: sum(n for n, s in zip(sizes, status) if s == state)  # noqa: E731
        settings = ""
        if self.best and "pack" not in self.best[1]:
            settings = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.best[1].items()
                                if k not in CLAIM_KEYS)
        for t, s in zip(trials, status):  # a trial that ended has nothing left
            if s != "RUNNING" and t.trial_id in self.timed:
                self.timed[t.trial_id] = (0, self.timed[t.trial_id][1])
        left = progress.time_left(list(self.timed.values()), max(self.trials - len(trials), 0), self.epochs, status.count("RUNNING"))
        state = progress.State(self.unit, counted("TERMINATED"), counted("RUNNING"), counted("ERROR"), self.configurations,
                               sum(self.trained.values()), self.configurations * self.seeds * self.epochs,
                               self.last - self.start, left, self.best[0] if self.best else None, settings)
        if self.bar:
            self._draw(state)
        elif sys.stdout.isatty():
            print("\r" + progress.bar(state)[: shutil.get_terminal_size().columns - 1], end="", file=sys.stdout, flush=True)
        else:
            print(progress.line(state), file=sys.stdout, flush=True)

    def _draw(self, state: progress.State) -> None:
        """The state on a tqdm.auto bar over member-epochs: a widget in a notebook, a redrawn line on a terminal."""
        if self._tqdm is None:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=state.epochs_total, unit="epoch", desc=self.spec.name, dynamic_ncols=True)
        self._tqdm.n = state.epochs_done
        best = f", best mean val_acc {state.best:.4f}" if state.best is not None else ""
        self._tqdm.set_postfix_str(f"{state.unit.split(' ')[0]}: {state.done}/{state.total} done, {state.running} running, "
                                   f"{state.failed} failed{best}", refresh=False)
        self._tqdm.refresh()
