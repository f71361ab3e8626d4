"""sweeper's command line: parse arguments, call one module, turn errors into one line.

Exit codes: 0 done; 1 the sweep ran but some configurations failed, or an internal
error; 2 bad input (usage, spec, results directory); 130 interrupted.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

from . import redact
from .errors import Interrupted, NoAnswer, SweeperError, first_line


OVERRIDES_HELP = "change the spec from the command line: epochs=20, batch.labelled=50, 'search.alpha=[1, 10]' (values are YAML)"
EXAMPLES = {
    "run": "sweeper run search_spaces/quickstart.yaml epochs=20 --out results/quick",
    "resume": "sweeper resume results/quickstart",
    "report": "sweeper report results/quickstart --table generic --compare --format latex --out table.tex",
    "status": "sweeper status --study postgresql://user@host/sweeps",
    "validate": "sweeper validate search_spaces/jurasinski-table1.yaml seeds=[0,1]",
    "estimate": "sweeper estimate search_spaces/kingma-table1.yaml",
    "bench": "sweeper bench --model m2 --shape mnist --pack 8",
    "models": "sweeper models",
    "schema": "sweeper schema > spec.schema.json",
    "inspect": "sweeper inspect results/quickstart --trial 3f2a_00000-seed0",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage over several lines; one is enough
        print(redact.message(f"{self.prog}: error: {message}; see '{self.prog} --help'", *sys.argv), file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweeper", description="Hyperparameter sweeps for semi-supervised deep generative models.",
                     epilog="example: " + EXAMPLES["run"])
    parser.add_argument("--version", action="version", version=f"sweeper {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    _add_running(commands)
    _add_reading(commands)
    _add_checking(commands)
    _add_looking(commands)
    return parser


def _add_running(commands) -> None:
    """run and resume: the commands that train."""
    run = commands.add_parser("run", epilog="example: " + EXAMPLES["run"], help="run the sweep a spec describes")
    run.add_argument("spec", help="spec file (YAML), e.g. search_spaces/quickstart.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    run.add_argument("--out", help="results directory (default: results/<sweep name>)")
    run.add_argument("--address", help="Ray cluster to join: 'auto' or ray://host:port (default: start Ray here)")
    run.add_argument("--data-dir", help="where dataset files are (default: $SWEEPER_DATA_DIR, else ~/.cache/sweeper)")
    run.add_argument("--storage", metavar="URI", help="results and checkpoints under URI/<name>: a path every node reaches (NFS) "
                     "or s3://bucket/prefix; the Optuna study stays in --out")
    run.add_argument("--study", metavar="URL", help="share the Optuna study with other drivers: postgresql://user@host/db, "
                     "mysql://..., sqlite:///file.db (one machine) or a journal file on a shared filesystem")
    run.add_argument("--driver", help="this driver's name in a shared study (default: host-pid)")
    run.add_argument("--pack", type=int, metavar="K", help="train up to K configurations as one vectorised model per Ray trial; "
                     "a sampler asks for K at once (the spec's pack:)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--scale", default="full", choices=["full", "smoke"],
                     help="smoke: the same sweep in seconds (tiny epochs, networks and embedded data)")

    resume = commands.add_parser("resume", epilog="example: " + EXAMPLES["resume"], help="continue a sweep whose driver stopped (killed, rebooted)",
                                 description="Continue a sweep from its results directory. Resuming runs code from the directory, as "
                                 "loading a pickle does: Ray Tune's saved state (DIR/tune) is pickles. Resume only directories you "
                                 "or someone you trust wrote; sweeper refuses state files another user owns or others may write.")
    resume.add_argument("dir", metavar="DIR", help="the results directory of the sweep")
    resume.add_argument("--address", help="Ray cluster to join (default: start Ray here)")
    resume.add_argument("--data-dir", help="where dataset files are")
    resume.add_argument("--storage", metavar="URI", help="the --storage the sweep was run with")


def _add_reading(commands) -> None:
    """report and status: the commands that read results directories."""
    report = commands.add_parser("report", epilog="example: " + EXAMPLES["report"], help="print the table of one or more results directories")
    report.add_argument("dirs", nargs="+", metavar="DIR", help="results directory")
    report.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv", "html"])
    report.add_argument("--table", default="generic", choices=["generic", "jurasinski", "kingma", "adgm", "raj"],
                        help="a paper's layout (default: generic, any two axes)")
    report.add_argument("--rows", help="column(s) for the rows, 'alpha,lam' to share (default: the most varied hyperparameter)")
    report.add_argument("--cols", help="column for the columns (default: model)")
    report.add_argument("--ci", action="store_true", help="add a 95%% t-interval to each cell")
    report.add_argument("--at", default="best", choices=["best", "final"], help="read each seed's accuracy at its epoch of best "
                        "validation accuracy (default), or at its final epoch (a classifier drawn away over training)")
    report.add_argument("--compare", action="store_true", help="add the published figure and the difference to each cell")
    report.add_argument("--published", help="directory of published figures (default: results/published)")
    report.add_argument("--paired", metavar="A,B", help="paired t-test and Wilcoxon of model A against B over the same seeds")
    report.add_argument("--figures", action="store_true", help="also write the figures (PNG, SVG) to DIR/figures")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE (default: DIR/report.<format>)")
    report.add_argument("--force", action="store_true", help="let --out replace an existing file that is not a report")

    status = commands.add_parser("status", epilog="example: " + EXAMPLES["status"],
                                 help="progress of a sweep from its results directory, or of a shared study per driver")
    status.add_argument("dir", nargs="?", metavar="DIR", help="a sweep's results directory: its progress from the rows so far")
    status.add_argument("--study", metavar="URL", help="the --study the drivers run with: progress per driver")
    status.add_argument("--name", help="the sweep's name (needed when the database holds several)")


def _add_checking(commands) -> None:
    """validate, estimate and bench: the commands that check and measure, running no sweep."""
    validate = commands.add_parser("validate", epilog="example: " + EXAMPLES["validate"], help="check a spec without running anything")
    validate.add_argument("spec")
    validate.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    validate.add_argument("--scale", default="full", choices=["full", "smoke"])

    estimate = commands.add_parser("estimate", epilog="example: " + EXAMPLES["estimate"],
                                   help="time a few training steps of each configuration and project the sweep's compute")
    estimate.add_argument("spec")
    estimate.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    estimate.add_argument("--scale", default="full", choices=["full", "smoke"])

    bench = commands.add_parser("bench", epilog="example: " + EXAMPLES["bench"], help="benchmarks that print one JSON line per case")
    bench.add_argument("--report", action="store_true", help="report speed on one million per-epoch rows")
    bench.add_argument("--overhead", action="store_true", help="Ray's orchestration time per trial in local mode")
    bench.add_argument("--model", help="time this model's training step (e.g. m2) against the device's matmul speed")
    bench.add_argument("--spec", help="project this grid spec's time on this device from its measured steps (with --pack, --bf16, --compile)")
    bench.add_argument("--shape", default="mnist", choices=["mnist", "digits"], help="data and network size (default mnist: 784-500-50)")
    bench.add_argument("--pack", type=int, metavar="K", help="configurations trained as one (default 1; with --spec, the spec's)")
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument("--bf16", action="store_true", help="matmuls under bfloat16 autocast (sweeps' default where native; --spec follows step.bf16)")
    bench.add_argument("--compile", action="store_true", help="torch.compile the step's loss (meant for a GPU)")


def _add_looking(commands) -> None:
    """inspect and models: what kept models learnt, and what each model takes."""
    inspect = commands.add_parser("inspect", epilog="example: " + EXAMPLES["inspect"],
                                  help="draw what kept models learnt: reconstructions, samples, analogies, active units")
    inspect.add_argument("dir", metavar="DIR", help="the results directory of a sweep")
    inspect.add_argument("--trial", action="append", metavar="ID", help="a trial_id to look at (repeatable; default: each "
                         "model's configuration selected by validation, its best seed)")
    inspect.add_argument("--each", action="store_true", help="every configuration's best seed, not only each model's selected one")
    inspect.add_argument("--data-dir", help="where dataset files are")
    inspect.add_argument("--out", metavar="DIR", help="where the figures go (default: DIR/inspect)")
    commands.add_parser("models", epilog="example: " + EXAMPLES["models"], help="list the models and the hyperparameters each takes")
    commands.add_parser("schema", epilog="example: " + EXAMPLES["schema"],
                        help="print the spec's JSON Schema (for an editor: docs/spec.md, 'Editing a spec')")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("sweeper")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "overrides"):  # KEY=VALUE after an option (`run SPEC --out D epochs=3`) is an override too
        args.overrides += [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if not ("=" in e and not e.startswith("-"))]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    say = lambda text: print(redact.message(text, *argv), file=sys.stderr)  # noqa: E731  (no secret of the command line)
    quiet_libraries()
    try:
        return COMMANDS[args.command](args)
    except NoAnswer as e:  # a remote call still waits in a thread, and pyarrow's exit would wait for it too
        say(f"sweeper: error: {e}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
    except SweeperError as e:
        say(f"sweeper: error: {e}")
        return 2
    except Interrupted as e:  # the trials were stopped and Tune's state saved
        say(f"sweeper: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        say("sweeper: interrupted")
        return 130
    except BrokenPipeError:  # `sweeper models | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, RuntimeError) as e:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # stdout, or a file written, on a full disk
            say(f"sweeper: error: no space left on the device it writes to ({e.filename or 'its output'}); free some, or write elsewhere")
            return 2
        looped = _symlink_loop(e)
        if looped is None:
            return _internal_error(e, say)
        say(f"sweeper: error: {looped}: a symlink loop (too many levels of symbolic links); remove or mend the link")
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: still one line, unless asked for the traceback
        return _internal_error(e, say)


def _internal_error(e: Exception, say) -> int:
    """A bug: one line, unless SWEEPER_DEBUG asks for the traceback."""
    if os.environ.get("SWEEPER_DEBUG"):
        raise e
    say(f"sweeper: internal error: {type(e).__name__}: {e} (rerun with SWEEPER_DEBUG=1 for the traceback)")
    return 1


def _symlink_loop(e: BaseException) -> str | None:
    """The path where a path given to sweeper loops through symlinks (ELOOP; pathlib's resolve() raises a
    RuntimeError for it before Python 3.13), else None: the user's filesystem, not a bug, wherever it is met."""
    import errno

    if isinstance(e, OSError) and e.errno == errno.ELOOP:
        return str(e.filename or "a path given")
    if isinstance(e, RuntimeError) and str(e).startswith("Symlink loop from "):
        return str(e).removeprefix("Symlink loop from ").strip("'")
    return None


def _scaled(spec, scale: str, overrides: list[str]):
    from . import spec as spec_module

    small, note = spec_module.scaled(spec, scale, overrides)
    if note:
        print(f"sweeper: note: {note}", file=sys.stderr)
    return small


def show(text: str, end: str = "\n") -> None:
    """Print to stdout what may hold text from a file or the user (a table, a name), no control character in it."""
    print(redact.printable(text), end=end)


def quiet_libraries() -> None:
    """What the libraries print beside sweeper's own lines, set once for the process, here at its entry."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study created, loaded or trial told
    # Optuna marks its heartbeat API experimental and meant for Study.optimize: sweeper.study records
    # heartbeats itself, for the trials its drivers asked for
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                            message=r".*(heartbeat|RetryHeartbeatStaleTrialCallback|fail_stale_trials).*")
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # a resumed trial's epochs that Tune hands Ray's OptunaSearch again: Optuna keeps the first value, as it should
    warnings.filterwarnings("ignore", message=r"The reported value is ignored because this step=\d+ is already reported")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # sweeper's progress lines instead of Tune's tables


def _run(args) -> int:
    from . import api

    out, spec, outcome = api.start(args.spec, args.overrides, out=args.out, scale=args.scale, address=args.address, pack=args.pack,
                                   study=args.study, driver=args.driver, storage=args.storage, data_dir=args.data_dir,
                                   quiet=args.quiet, bar=False)
    where = out if outcome.location == str(outcome.out_dir) else outcome.location
    return _summary(outcome, where, f"{outcome.configurations} configurations × {len(spec.seeds)} seeds, {outcome.wall_s:.0f}s")


def _resume(args) -> int:
    from . import sweep

    outcome = sweep.resume(args.dir, address=args.address, data_dir=args.data_dir, storage=args.storage)
    where = args.dir if outcome.location == str(outcome.out_dir) else outcome.location
    return _summary(outcome, where, f"{outcome.configurations} configurations, {outcome.wall_s:.0f}s after resuming")


def _summary(outcome, where, detail: str) -> int:
    """Where the results are, the report command, and the exit status of a sweep that ran."""
    where = redact.url(str(where))
    show(f"results: {where} ({detail}; rows in trials/ and epochs/)")
    show(f"report:  sweeper report {where}")
    if outcome.errored:
        print(f"sweeper: {outcome.errored} configurations failed; their rows have status 'failed' and the error", file=sys.stderr)
        return 1
    return 0


def _report(args) -> int:
    from . import report

    pair = tuple(args.paired.split(",")) if args.paired else None
    if pair and len(pair) != 2:
        raise SweeperError(f"--paired {args.paired}: give two models as A,B, e.g. --paired m2,baseline")
    if args.out:  # before the table: a refused --out prints nothing
        try:
            report.checked_out(args.out, args.dirs, args.format, args.force)
        except OSError as e:  # a folder on the way that cannot be searched, a stale mount
            raise SweeperError(f"--out {redact.url(str(args.out))}: cannot write the report there ({e.strerror or type(e).__name__}); "
                               "give --out a file in a folder you can write to") from None
    text = report.table(args.dirs, fmt=args.format, rows=args.rows, cols=args.cols, layout=args.table, ci=args.ci,
                        compare=args.compare, published_dir=args.published, pair=pair, at=args.at)
    show(text, end="")
    try:
        report.write(text, args.dirs, args.format, args.out, args.force)
    except OSError as e:
        where = redact.url(str(args.out or args.dirs[0]))
        if args.out:  # asked for by name: not written is a failure (the default report.md is a convenience)
            raise SweeperError(f"--out {where}: cannot write the report there ({e.strerror or type(e).__name__}); "
                               "the table is above; give --out a file in a folder you can write to") from None
        print(f"sweeper: could not write the report into {where} ({e.strerror or type(e).__name__}); "
              "the table is above; give --out FILE to write it elsewhere", file=sys.stderr)
    if args.figures:
        try:
            for path in report.write_figures(args.dirs):
                print(f"figure: {path} (and .svg)")
        except OSError as e:
            raise SweeperError(f"--figures: cannot write the figures into {redact.url(str(args.dirs[0]))}/figures "
                               f"({e.strerror or type(e).__name__}); report a copy of the results you can write to") from None
    return 0


def _status(args) -> int:
    if (args.dir is None) == (args.study is None):
        raise SweeperError("status: give a results directory (sweeper status DIR) or a shared study (--study URL), one of the two")
    if args.dir is not None:
        from . import progress

        show(progress.line(progress.from_results(args.dir)))
        return 0
    from . import study

    show(study.status(args.study, args.name), end="")
    return 0


def _validate(args) -> int:
    from . import footprint, space
    from . import spec as spec_module

    spec = _scaled(spec_module.load(args.spec, args.overrides), args.scale, args.overrides)
    footprint.check_memory(spec)  # as run checks it: what validates, runs
    show(f"{spec.source}: ok: {space.configuration_count(spec)} configurations × {len(spec.seeds)} seeds "
          f"of {', '.join(spec.models)} on {', '.join(spec.datasets)}, {spec.epochs} epochs each{_longer_trials(spec)}")
    return 0


def _longer_trials(spec) -> str:
    """The grid's models whose trials train more than the spec's epochs (M1's m1_epochs first), as text."""
    from . import space
    from .packing import trial_epochs

    if spec.sampler != "grid":
        return ""
    longest: dict[str, int] = {}
    for point in space.grid_points(spec):
        chosen = space.configuration(spec, point)
        longest[chosen.model] = max(longest.get(chosen.model, 0), trial_epochs(spec, chosen))
    longer = [f"{model} {epochs}" for model, epochs in longest.items() if epochs > spec.epochs]
    return f" (with M1's own first: {', '.join(longer)})" if longer else ""


def _estimate(args) -> int:
    from . import estimate
    from . import spec as spec_module

    spec = _scaled(spec_module.load(args.spec, args.overrides), args.scale, args.overrides)
    estimates = estimate.estimate(spec)
    by_model: dict[str, float] = {}
    for e in estimates:
        by_model[e.configuration.model] = by_model.get(e.configuration.model, 0.0) + e.train_s
    total = sum(by_model.values())
    count = len(estimates) if spec.sampler == "grid" else spec.trials
    show(f"{args.spec}: {count} configurations × {len(spec.seeds)} seeds = {count * len(spec.seeds)} runs of {spec.epochs} epochs; "
         f"training ≈ {total / 3600:.2f} CPU core-hours measured here (steps timed on 1 thread; evaluation and Ray overhead not counted)")
    for model, seconds in sorted(by_model.items(), key=lambda kv: -kv[1]):
        steps = [e.step_s for e in estimates if e.configuration.model == model]
        show(f"    {model}: {seconds / 3600:.2f} core-hours ({1000 * min(steps):.1f}–{1000 * max(steps):.1f} ms a step)")
    return 0


MAX_BENCH_PACK = 4096  # members of one timed step: a pack of 128 at MNIST shapes holds 4.4 GB on a GPU


def _bench(args) -> int:
    from . import bench

    from . import models

    cases = [case for case in ("report", "overhead") if getattr(args, case)] + (["training"] if args.model else []) \
        + (["projection"] if args.spec else [])
    if not cases:
        raise SweeperError("bench: choose a case: --model NAME (training step), --spec FILE (a grid's projected time), --report, --overhead")
    # the step's options shape --model's and --spec's cases only: given with --report or --overhead alone, a timing
    # would come back that did not use them
    stepped = [flag for flag, given in (("--pack", args.pack is not None), ("--device", args.device != "cpu"), ("--bf16", args.bf16),
                                        ("--compile", args.compile), ("--shape", args.shape != "mnist")) if given]
    if stepped and not (args.model or args.spec):
        raise SweeperError(f"bench {' '.join(stepped)}: shapes a timed step (--model or --spec); --report and --overhead "
                           "take none of them")
    if args.shape != "mnist" and not args.model:
        raise SweeperError(f"bench --shape {args.shape}: sizes --model's step; --spec times the spec's own shapes")
    if args.model and args.model not in models.MODELS:
        raise SweeperError(f"bench --model {args.model}: unknown model; one of {', '.join(sorted(models.MODELS))}")
    if args.model and models.MODELS[args.model].fitted_by == "em":
        raise SweeperError(f"bench --model {args.model}: fitted by EM, it has no training step to time; choose a model trained by gradient")
    if args.pack is not None and not 1 <= args.pack <= MAX_BENCH_PACK:
        raise SweeperError(f"bench --pack {args.pack}: must be from 1 to {MAX_BENCH_PACK} (the members of one timed step)")
    options = dict(device=args.device, bf16=args.bf16, compile=args.compile)
    try:
        bench.main(cases, dict(model=args.model, shape=args.shape, pack=args.pack or 1, **options),
                   dict(spec_path=args.spec, pack=args.pack, **options))
    except (RuntimeError, MemoryError) as e:  # torch's words for an allocation the machine (or the GPU) refused
        if not isinstance(e, MemoryError) and "allocate" not in str(e) and "out of memory" not in str(e):
            raise
        raise SweeperError(f"bench: the timed step does not fit this {args.device.upper()}'s memory ({first_line(e)[:120]}); "
                           "lower --pack (or, with --spec, its pack)") from None
    return 0


def _models(args) -> int:
    from . import models

    for name, cls in sorted(models.MODELS.items()):
        print(f"{name}: {cls.summary}")
        for hp, h in cls.hyperparameters().items():
            bounds = "".join([f" >= {h.low:g}" if h.low is not None else "", f" <= {h.high:g}" if h.high is not None else ""])
            default = h.default if h.choices else f"{h.default:g}"
            allowed = f" (one of {', '.join(h.choices)})" if h.choices else bounds
            print(f"    {hp} = {default}{allowed}  {h.help}")
    return 0


def _schema(args) -> int:
    from . import spec as spec_module

    print(spec_module.json_schema(), end="")
    return 0


def _inspect(args) -> int:
    from . import inspection

    for trial_id, found in inspection.inspect(args.dir, args.trial, args.out, args.data_dir, args.each).items():
        units = (f", {found['active_units']} active latent units, label read from z' at {100 * found['probe_accuracy']:.1f} %"
                 if "active_units" in found else "")
        drawn = ", ".join(found["figures"]) or "none (a classifier alone has nothing generative to draw)"
        show(f"{trial_id}: {found['model']} at epoch {found['epoch']}, test accuracy {100 * found['test_acc']:.2f} %{units}; "
              f"figures: {drawn}")
    return 0


COMMANDS = {"inspect": _inspect, "run": _run, "resume": _resume, "report": _report, "status": _status, "validate": _validate,
            "estimate": _estimate, "bench": _bench, "models": _models, "schema": _schema}


def entry() -> None:
    sys.exit(main())
