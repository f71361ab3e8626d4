"""The searchers Ray Tune asks for configurations: OptunaSearch over the spec's study (study.py).

- LocalSearch: a sampled search over this driver's own study, the journal in the results directory.
- GridSearch: a grid enqueued in that study; each suggestion pops one point, and the sweep ends
  when the queue is empty.
- SharedSearch: a study several drivers share (`sweeper run --study URL`); each configuration it
  takes is claimed for this driver (ClaimingDefineByRun).
- PackSearch: a sampled search that asks for a pack of configurations at a time (pack > 1), over
  this driver's own study or a shared one.

Each tells the study a configuration's outcome from the rows its trial wrote (study.summarise):
COMPLETE, PRUNED (stopped by the scheduler) or FAIL, with the test accuracy and the spreads over
seeds as trial attributes, so that optuna-dashboard shows what the report shows.
"""
from __future__ import annotations

import pickle
import time
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from . import results, space, study
from .spec import Spec
from .ids import STUDY_TRIAL, config_ids

TUNE_METRICS = {"val_acc": "objective", "wall_s": "wall_s"}  # an objective of the spec → what the trainable reports


def outcome_seen_by_tune(spec: Spec, result: dict | None, error: bool) -> study.Summary:
    """A configuration's outcome as Tune alone saw it (no rows to read): what OptunaSearch would tell."""
    values = [(result or {}).get(TUNE_METRICS[o]) for o in spec.objectives]
    if error:
        return study.Summary(TrialState.FAIL, None, {"error": "the trial failed and its rows do not say how (a lost worker?)"})
    if None in values:
        return study.Summary(TrialState.PRUNED, None, {})
    return study.Summary(TrialState.COMPLETE, [float(v) for v in values], {})


class NumberedSpace:
    """The search space, noting the number of the study's trial it last defined (Tune pickles it)."""

    def __init__(self, define):
        self.define = define
        self.last: int | None = None

    def __call__(self, trial: optuna.Trial) -> dict | None:
        self.last = trial.number
        return self.define(trial)


class RecordingSearch(OptunaSearch):
    """OptunaSearch that tells the study each configuration's outcome as its rows say it
    (study.summarise), with the configuration's attributes; Tune's own result only where there are
    no rows to read. The first outcome told is the configuration's: Tune may report a trial again
    after a resume (an errored trial retried), and a finished Optuna trial cannot change.

    `resumable`: a trial that errored with seeds still running (its worker lost) is not told, so that
    `sweeper resume` goes on with it and tells its outcome then.
    """

    resumable = True

    def __init__(self, *, space: Any, study_name: str, storage: optuna.storages.BaseStorage, spec: Spec, location: str,
                 **options):
        self.numbered = NumberedSpace(space)
        super().__init__(space=self.numbered, study_name=study_name, storage=storage, **options)
        self.where, self.spec, self.location = storage, spec, location
        self.numbers: dict[str, int] = {}  # Tune trial id → the study's trial number
        self.told: set[str] = set()

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            self.numbers[trial_id] = self.numbered.last
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        number = self.numbers.get(trial_id)
        if number is None or trial_id in self.told:
            return
        config_id = self.config_id(trial_id, number)
        summary, point = self._outcome(config_id, result, error)
        if summary is None:
            return
        chosen = optuna.load_study(study_name=self.spec.name, storage=self.where)
        if point is None:  # no rows: the point as the study's trial has it
            point = chosen.get_trials(deepcopy=False)[number].params
        study.finish(chosen, self.where, number, summary, study.record_key(self.spec, point, config_id))
        self.told.add(trial_id)

    def on_trial_result(self, trial_id: str, result: dict):
        if trial_id in self.told:  # finished in the study already: an errored trial that a resume retries
            return
        super().on_trial_result(trial_id, result)

    def config_id(self, trial_id: str, number: int) -> str:
        """What names the rows of the configuration the study's trial `number` runs as Tune trial `trial_id`."""
        return config_ids({}, trial_id)[0]

    def _outcome(self, config_id: str, result: dict | None, error: bool) -> tuple[study.Summary | None, dict | None]:
        return outcome(self.spec, self.location, config_id, result, error, self.resumable)


def outcome(spec: Spec, location: str, config_id: str, result: dict | None, error: bool,
            resumable: bool) -> tuple[study.Summary | None, dict | None]:
    """A configuration's outcome and point as its rows say, else as Tune saw it; (None, None) for one that
    errored with seeds still running where `sweeper resume` goes on with it (`resumable`)."""
    rows = results.configuration_rows(location, config_id)  # none to read: what Tune saw is told instead
    summary = study.summarise(spec, rows, tune_finished=not error) if rows else None
    if summary is None and (not error or not resumable):
        summary = outcome_seen_by_tune(spec, result, error)
    return summary, study.point_of(rows[0]) if rows else None


class LocalSearch(RecordingSearch):
    """A sampled search over this driver's own study."""


class GridSearch(RecordingSearch):
    """A grid enqueued in its study: each suggestion pops one point, and once the queue is empty the
    grid is done; the sampler never makes a point up, and no trial is asked for past the queue's end."""

    def __init__(self, **options):
        super().__init__(**options)
        self.waiting: int | None = None  # points left in the queue, counted once per process

    def restore(self, checkpoint_path: str):
        super().restore(checkpoint_path)
        self.waiting = None  # the count saved with Tune's state may be stale: a restored search counts afresh

    def suggest(self, trial_id: str):
        if self.waiting is None:
            queue = optuna.load_study(study_name=self.spec.name, storage=self.where)
            self.waiting = len(queue.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        if self.waiting <= 0:
            return Searcher.FINISHED
        try:
            config = super().suggest(trial_id)
        except space.NotEnqueued as e:  # the queue ran dry after all: the new trial is no point, never run
            queue = optuna.load_study(study_name=self.spec.name, storage=self.where)
            queue.tell(e.number, state=TrialState.FAIL)
            self.waiting = 0
            return Searcher.FINISHED
        self.waiting -= 1
        return config


class SharedSearch(RecordingSearch):
    """OptunaSearch over a shared study: it takes work while the study has some, waits while other
    drivers still run configurations (they may go silent and come back to the queue), and ends
    the sweep when every configuration is done. A configuration that errors is failed at once:
    no `sweeper resume` continues a shared study's configurations."""

    resumable = False

    def __init__(self, board: study.SharedStudyDriver, where: optuna.storages.BaseStorage, location: str, **options):
        super().__init__(storage=where, study_name=board.spec.name, spec=board.spec, location=location, **options)
        self.board = board
        self.checked_at = 0.0
        self.census: study.StudyCounts | None = None

    def suggest(self, trial_id: str):
        census = self._census()
        budget_left = self.board.spec.sampler != "grid" and census.total - census.used > 0
        if not census.states["WAITING"] and not budget_left:
            return None if census.states["RUNNING"] else Searcher.FINISHED
        try:
            config = super().suggest(trial_id)
        except space.NotEnqueued as e:  # the queue ran dry since the census: give the new trial back
            self.board.give_back(e.number)
            self.checked_at = 0.0
            return None
        self.board.beat([config[study.STUDY_TRIAL]])  # claimed: alive from now on
        self.checked_at = 0.0
        return config

    def config_id(self, trial_id: str, number: int) -> str:
        return config_ids({study.STUDY_TRIAL: number, study.DRIVER: self.board.driver}, trial_id)[0]

    def on_trial_result(self, trial_id: str, result: dict):
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:  # this driver went silent too long: another has taken it over
            pass

    def _census(self) -> study.StudyCounts:
        self.census, self.checked_at = recent_census(self.board, self.census, self.checked_at)
        return self.census


def recent_census(board: study.SharedStudyDriver, last: study.StudyCounts | None, at: float) -> tuple[study.StudyCounts, float]:
    """The shared study's state, read at most once a second (Tune asks for suggestions in a tight loop): (counts, when read)."""
    if last is None or time.monotonic() - at > 1.0:
        return study.census(board.study), time.monotonic()
    return last, at


class ClaimingDefineByRun(space.DefineByRun):
    """The spec's search space, claiming each trial for this driver. Its return value joins the
    trial's config: the study's trial number and the driver name name the configuration's rows."""

    def __init__(self, spec: Spec, driver: str):
        super().__init__(spec)
        self.driver = driver

    def __call__(self, trial: optuna.Trial) -> dict:
        try:
            super().__call__(trial)
        except space.NotEnqueued:
            trial.set_user_attr(study.UNCLAIMED, True)
            raise
        trial.set_user_attr(study.DRIVER, self.driver)
        return {study.STUDY_TRIAL: trial.number, study.DRIVER: self.driver}


class PackSearch(Searcher):
    """A sampled search that asks its study for `size` configurations at once (study.ask) and hands Tune
    packs of them: those that can train as one model (packing.pack_key: searched network shapes can
    not) share a pack, and the other groups wait in `ready` for the next suggestions. Each trial asked
    stays RUNNING until told, so the sampler sees it while it asks the next (TPE's constant liar).
    A member's trial gets the member's objective at every epoch it trains (one objective only, as OptunaSearch)
    and its outcome as the pack ends (study.finish). With a shared study (`board`) each trial is claimed
    for this driver, and the study's census says when the sweep is done, as for SharedSearch.

    Tune pickles it with the experiment (save, restore). The study is written at each ask and Tune's
    state only now and then: a restored search adopts the trials the study holds RUNNING that none of
    its packs know (asked after Tune last saved), so that `sweeper resume` never asks for them again."""

    def __init__(self, *, spec: Spec, storage: optuna.storages.BaseStorage, location: str, size: int, metric, mode,
                 board: study.SharedStudyDriver | None = None):
        super().__init__(metric=metric, mode=mode)
        self.spec, self.where, self.location, self.size, self.board = spec, storage, location, size, board
        self.define = ClaimingDefineByRun(spec, board.driver) if board else space.DefineByRun(spec)
        self.study = optuna.load_study(study_name=spec.name, storage=storage, sampler=space.sampler(spec))
        self.study_id = storage.get_study_id_from_name(spec.name)
        self.asked = len(self.study.get_trials(deepcopy=False))  # this driver's own study holds its trials only
        self.ready: list[list[dict]] = []  # packs asked for and not yet handed to Tune
        self.numbers: dict[str, list[int]] = {}  # Tune trial id → its members' trial numbers, in pack order
        self.told: set[str] = set()
        self.census, self.checked_at = None, 0.0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the space is the spec's; Tune's param_space is empty

    def suggest(self, trial_id: str):
        if not self.ready:
            count = self._to_ask()
            if not isinstance(count, int):
                return count
            self.ready = self._packs([self._ask() for _ in range(count)])
        pack = self.ready.pop(0)
        self.numbers[trial_id] = [m[STUDY_TRIAL] for m in pack]
        return {"pack": pack}

    def _to_ask(self) -> int | str | None:
        """How many to ask for now; else FINISHED when the sweep is done, None to wait (shared: others still run)."""
        if self.board is None:
            left = self.spec.trials - self.asked
            return min(self.size, left) if left > 0 else Searcher.FINISHED
        self.census, self.checked_at = recent_census(self.board, self.census, self.checked_at)
        count = min(self.size, self.census.states["WAITING"] + max(self.census.total - self.census.used, 0))
        if count:
            self.checked_at = 0.0  # the census is stale once this driver asks
            return count
        return None if self.census.states["RUNNING"] else Searcher.FINISHED

    def _ask(self) -> dict:
        """One new trial (a taken-over one first, in a shared study), as a pack member: its point and number."""
        trial = self.study.ask()
        self.define(trial)
        self.asked += 1
        if self.board is not None:
            self.board.beat([trial.number])  # claimed: alive from now on
        return member(trial.params, trial.number)

    def on_trial_result(self, trial_id: str, result: dict):
        if isinstance(self.metric, list) or trial_id in self.told:  # Optuna keeps no intermediate values for several objectives
            return
        numbers, values = self.numbers.get(trial_id, []), result.get("objectives", [])
        for number, value, training in zip(numbers, values, result.get("training", [1] * len(values))):
            if not training:  # a member the scheduler stopped (or that diverged): its curve ends where it did
                continue
            try:
                self.where.set_trial_intermediate_value(self._trial_id(number), int(result["epoch"]), float(value))
            except UpdateFinishedTrialError:  # a shared study's trial another driver took over
                pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        numbers = self.numbers.get(trial_id)
        if numbers is None or trial_id in self.told:
            return
        told = True
        for i, (number, config_id) in enumerate(zip(numbers, config_ids({"pack": numbers}, trial_id))):
            seen = {**result, "objective": result["objectives"][i]} if result and "objectives" in result else result
            summary, point = outcome(self.spec, self.location, config_id, seen, error, resumable=self.board is None)
            if summary is None:  # seeds still running: `sweeper resume` goes on with it
                told = False
                continue
            study.finish(self.study, self.where, number, summary, study.record_key(self.spec, point or {}, config_id))
        if told:
            self.told.add(trial_id)

    def _packs(self, members: list[dict]) -> list[list[dict]]:
        """Members in packs of at most `size` that can train as one model (packing.pack_key)."""
        from . import packing  # the models, torch with them, once asking: as space.DefineByRun, not at import

        return packing.packs(self.spec, members, self.size)

    def _trial_id(self, number: int) -> int:
        return self.where.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def save(self, checkpoint_path: str):
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str):
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        if self.board is None:  # a shared study's unfinished trials go back to that study instead
            self.adopt()

    def adopt(self) -> None:
        """Hand out again, in packs, the trials the study holds RUNNING that no pack knows."""
        trials = self.study.get_trials(deepcopy=False)
        known = {n for numbers in self.numbers.values() for n in numbers} | {m[STUDY_TRIAL] for pack in self.ready for m in pack}
        left = [member(t.params, t.number) for t in trials if t.state == TrialState.RUNNING and t.number not in known]
        self.ready += self._packs(left)
        self.asked = len(trials)


def member(point: dict, number: int) -> dict:
    """A pack member's config: its search point, and the number of the study's trial it is (ids.CLAIM_KEYS:
    the trainable leaves it out)."""
    return {**point, STUDY_TRIAL: number}
