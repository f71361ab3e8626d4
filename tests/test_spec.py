import pytest

from helpers import tiny_spec
from sweeper import spec as spec_module
from sweeper.errors import SpecError
from sweeper.spec import Batch, Grid, Range, parse, with_pack


def load(write_spec, **overrides):
    return spec_module.load(write_spec(tiny_spec(**overrides)))


def error(write_spec, content) -> str:
    path = write_spec(content)
    with pytest.raises(SpecError) as info:
        spec_module.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: "):]


def test_a_good_spec_becomes_a_typed_spec(write_spec):
    spec = load(write_spec, search={"alpha": [0.5, 5], "lr": {"low": 1e-4, "high": 1e-2, "log": True}}, sampler="tpe", trials=4)
    assert spec.models == ("m2", "baseline")
    assert spec.seeds == (0, 1)
    assert spec.search == {"alpha": Grid((0.5, 5)), "lr": Range(low=1e-4, high=1e-2, log=True)}
    assert (spec.batches, spec.label_counts, spec.datasets) == ((Batch(labelled=25, unlabelled=200),), (50,), ("digits",))
    assert spec.searched("baseline") == {"lr": Range(low=1e-4, high=1e-2, log=True)}
    assert spec.hyperparameters("baseline") == {"hidden": 16, "network": "mlp", "lr": 1e-3, "lr_decay": 1.0, "lr_decay_every": 1, "lr_min": 0.0,
                                                "clip_norm": 0.0, "clip_value": 0.0}
    assert list(spec.hyperparameter_columns()) == ["alpha", "alpha_scale", "clip_norm", "clip_value", "depth", "hidden", "kl_warmup", "latent", "likelihood", "lr", "lr_decay", "lr_decay_every", "lr_min", "network", "pretrain", "sigma2", "weighting"]
    assert spec.hyperparameter_columns()["likelihood"] == "text" and spec.hyperparameter_columns()["alpha"] == "number"


def test_the_quickstart_spec_is_valid():
    spec = spec_module.load("search_spaces/quickstart.yaml")
    assert spec.models == ("m2", "baseline") and len(spec.search["alpha"].values) >= 4 and len(spec.seeds) == 3


def test_yaml_1_1_exponent_without_dot_is_read_as_a_number(write_spec):
    spec = load(write_spec, fixed={"hidden": 16, "lr": "1e-3"})
    assert spec.fixed["lr"] == 1e-3


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epoch": 3}, "epoch: unknown key; allowed keys: name, description, dataset, data, label_count, models, seeds, epochs, batch, zip, fixed, search, objectives, sampler, sampler_seed, trials, scheduler, resources, max_concurrent, retries, study, pack, patience, eval_every, step, tracking"),
        ({"models": ["m2", "m3"]}, "models: unknown model 'm3'; registered models: adgm, baseline, jurasinski, jurasinski_simplified, m1, m1m2, m2, m2_adversarial, optimized_elbo, ssgmm"),
        ({"dataset": "imagenet"}, "dataset: unknown dataset 'imagenet'; known datasets: cifar10, circles, digits, fashion_mnist, mnist, moons, svhn"),
        ({"epochs": "ten"}, "epochs: expected an integer, got 'ten'"),
        ({"epochs": 0}, "epochs: must be >= 1, got 0"),
        ({"seeds": [0, 1, 0]}, "seeds: seed 0 is listed twice; each seed runs once per configuration"),
        ({"label_count": 55}, "label_count: 55 is not a multiple of the 10 classes of digits; labelled subsets are class-balanced"),
        ({"label_count": 2000}, "label_count: 2000 leaves no unlabelled data: digits has 1257 training points"),
        ({"batch": {"labelled": 0}}, "batch.labelled: must be >= 1, got 0"),
        ({"search": {"alpha": []}}, "search.alpha: empty grid; list at least one value"),
        ({"search": {"alpha": [1, -1]}}, "search.alpha: must be >= 0, got -1"),
        ({"search": {"alpha": {"low": 10, "high": 1}}}, "search.alpha: low 10 is above high 1"),
        ({"search": {"alpha": {"low": 0, "high": 1, "log": True}}, "sampler": "tpe", "trials": 3}, "search.alpha: a log range needs low > 0, got 0"),
        ({"search": {"alpha": {"low": 0.1, "high": 1}}}, "sampler: grid cannot sample the range of 'alpha'; give it a list of values or use sampler: tpe or random"),
        ({"sampler": "tpe"}, "trials: sampler tpe needs the number of configurations to try, e.g. trials: 20"),
        ({"sampler": "bayes"}, "sampler: unknown sampler 'bayes'; allowed: grid, random, tpe, cmaes, nsga2"),
        ({"fixed": {"hidden": 2.5}}, "fixed.hidden: expected an integer, got 2.5"),
        ({"fixed": {"clip_norm": -1}}, "fixed.clip_norm: must be >= 0, got -1"),
        ({"search": {"lr_decay": [0.5, 1.5]}}, "search.lr_decay: must be <= 1, got 1.5"),
        ({"fixed": {"lr_decay_every": 0.5}}, "fixed.lr_decay_every: expected an integer, got 0.5"),
        ({"resources": {"cpu": 0}}, "resources.cpu: must be > 0 and <= 10000, got 0"),
        ({"data": {"preprocess": "whiten"}}, "data.preprocess: unknown preprocessing 'whiten'; allowed: scale, dynamic_binarize, static_binarize, standardize"),
        ({"data": {"noise": 0.1}}, "data.noise: only the toy sets (moons, circles) take noise, not digits"),
        ({"data": {"labelled_in_unlabelled": "yes"}}, "data.labelled_in_unlabelled: expected true or false, got 'yes'"),
        ({"search": {"alpha": [1], "hidden": [8]}, "fixed": {"hidden": 16}}, "search.hidden: is also under 'fixed'; a hyperparameter is either fixed or searched"),
        ({"step": {"compile": "yes"}}, "step.compile: expected true, false or auto, got 'yes'"),
        ({"step": {"jit": True}}, "step.jit: unknown key; allowed keys: bf16, compile"),
        ({"step": "fast"}, "step: expected a mapping {bf16: true|false|auto, compile: true|false|auto}"),
        ({"step": {"bf16": "yes"}}, "step.bf16: expected true, false or auto, got 'yes'"),
    ],
)
def test_bad_specs_get_one_line_naming_the_key(write_spec, overrides, message):
    assert error(write_spec, tiny_spec(**overrides)) == message


def test_a_hyperparameter_no_listed_model_takes_names_both(write_spec):
    message = error(write_spec, tiny_spec(models=["baseline"], fixed={}, search={"alpha": [1]}))
    assert message == "search.alpha: baseline takes no hyperparameter 'alpha'; remove it or add a model that takes it (baseline takes: clip_norm, clip_value, hidden, lr, lr_decay, lr_decay_every, lr_min, network)"


def test_yaml_syntax_errors_give_the_line(write_spec):
    assert error(write_spec, "name: x\nmodels: [m2\nseeds: [0]\n").startswith("line 3: not valid YAML")


def test_a_spec_that_is_not_a_mapping(write_spec):
    assert error(write_spec, "- m2\n- baseline\n") == "a spec must be a mapping of keys to values, got list; see docs/spec.md, 'Spec format'"


def test_a_missing_required_key(write_spec):
    content = tiny_spec()
    del content["seeds"]
    assert error(write_spec, content) == "missing required key 'seeds'; required keys: name, dataset, models, seeds, epochs"


def test_a_missing_file():
    with pytest.raises(SpecError, match=r"^nope.yaml: no such file; give the path of a spec"):
        spec_module.load("nope.yaml")


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path("search_spaces").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_spec_in_the_folder_validates_and_round_trips_through_yaml(path):
    import yaml

    from sweeper.spec import at_scale, to_yaml

    for scale in ("full", "smoke"):
        spec = at_scale(spec_module.load(path), scale)
        again = spec_module.parse(yaml.safe_load(to_yaml(spec)), source=spec.source)
        assert again == spec


def test_a_shared_studys_timing_is_checked():
    parse = spec_module.parse
    with pytest.raises(SpecError, match=r"study.reclaim_after_s: must be at least twice heartbeat_s \(20\), got 15"):
        parse(tiny_spec(study={"heartbeat_s": 10, "reclaim_after_s": 15}))
    with pytest.raises(SpecError, match=r"study.every: unknown key; allowed keys: heartbeat_s, reclaim_after_s"):
        parse(tiny_spec(study={"every": 3}))
    spec = parse(tiny_spec(study={"heartbeat_s": 2}))
    assert (spec.study.heartbeat_s, spec.study.reclaim_after_s) == (2, 12)


def test_the_step_options_reach_every_configurations_plan():
    import yaml

    from sweeper import space
    from sweeper.spec import to_yaml
    from sweeper.packing import plan_of

    spec = spec_module.parse(tiny_spec(step={"bf16": True, "compile": True}))
    assert spec_module.parse(yaml.safe_load(to_yaml(spec))) == spec
    plans = [plan_of(spec, space.configuration(spec, point)) for point in space.grid_points(spec)]
    assert len(plans) == 3 and all(p.bf16 and p.compile for p in plans)  # m2 at two alphas, baseline
    plain = spec_module.parse(tiny_spec())
    assert plain.step.bf16 == "auto" and plain.step.compile == "auto"
    assert yaml.safe_load(to_yaml(plain))["step"] == {"bf16": "auto", "compile": "auto"}  # what ran, even at the default


def test_a_results_spec_written_before_bf16_auto_resumes_in_float32(tmp_path):
    import yaml

    from sweeper.spec import load_ran, to_yaml

    old, new = tmp_path / "old", tmp_path / "new"  # results directories, each with the spec it ran
    old.mkdir()
    new.mkdir()
    (old / "spec.yaml").write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(to_yaml(parse(tiny_spec()))).items() if k != "step"}))
    assert load_ran(old).step.bf16 is False and spec_module.load(old / "spec.yaml").step.bf16 == "auto"
    (new / "spec.yaml").write_text(to_yaml(parse(tiny_spec())))
    assert load_ran(new).step.bf16 == "auto"


def test_a_results_spec_whose_scheduler_never_judged_still_opens(tmp_path):
    """Before grace_period had to be below epochs, such specs ran (their scheduler stopped nothing): they still
    resume and report, without the scheduler; a spec file saying so is refused."""
    import yaml

    from sweeper.spec import load_ran, to_yaml

    raw = {**yaml.safe_load(to_yaml(parse(tiny_spec(epochs=3, scheduler={"type": "median", "grace_period": 2})))),
           "scheduler": {"type": "median", "grace_period": 3}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    assert load_ran(tmp_path).scheduler is None
    with pytest.raises(SpecError, match="grace_period: 3 is not below epochs"):
        spec_module.load(tmp_path / "spec.yaml")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_auto_is_the_default_and_follows_the_device(monkeypatch, native):
    from sweeper import packing, space, train

    monkeypatch.setattr(train, "native_bf16", lambda device: native)
    for step, expected in [(None, native), ({"bf16": "auto"}, native), ({"bf16": False}, False), ({"bf16": True}, True)]:
        spec = spec_module.parse(tiny_spec(**({"step": step} if step else {})))
        plans = [packing.plan_of(spec, space.configuration(spec, point)) for point in space.grid_points(spec)]
        assert {train.bfloat16(plan.bf16, plan.device) for plan in plans} == {expected}


def test_a_hyperparameter_every_model_would_ignore_is_refused(write_spec):
    assert error(write_spec, tiny_spec(models=["m2"], fixed={"sigma2": 0.1})) == (
        "fixed.sigma2: would be ignored: sigma2 applies only with likelihood: gaussian, and m2 has likelihood bernoulli; "
        "set fixed.likelihood: gaussian or remove sigma2")
    assert "search.sigma2: would be ignored" in error(write_spec, tiny_spec(models=["m2", "jurasinski"], search={"sigma2": [0.1, 1]}))
    # with a Gaussian likelihood, or the likelihood searched too, sigma2 counts
    assert load(write_spec, models=["m2"], fixed={"sigma2": 0.1, "likelihood": "gaussian"}).fixed["sigma2"] == 0.1
    assert load(write_spec, models=["m2"], search={"sigma2": [0.1, 1], "likelihood": ["bernoulli", "gaussian"]}).search["sigma2"].values == (0.1, 1)
    assert load(write_spec, models=["m1m2"], fixed={"sigma2": 0.1}).fixed["sigma2"] == 0.1  # its M2 is always Gaussian


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"zip": ["label_count", "batch"], "label_count": [20, 30], "batch": [{"labelled": 1}]},
         "zip: zipped lists differ in length (label_count: 2, batch: 1); pair them element by element"),
        ({"zip": ["seeds"]}, "zip: 'seeds' cannot be zipped; zip pairs lists of: dataset, label_count, batch, or of numbers under fixed"),
        ({"zip": ["label_count", "hidden"], "label_count": [20, 30], "fixed": {"hidden": [8, 16, 32]}},
         "zip: zipped lists differ in length (label_count: 2, hidden: 3); pair them element by element"),
        ({"zip": ["label_count", "hidden"], "label_count": [20, 30], "fixed": {"hidden": 8}},
         "fixed.hidden: is zipped, so it takes a list of values, one per element of the other zipped lists; got 8"),
        ({"zip": ["label_count", "likelihood"], "label_count": [20, 30], "fixed": {"likelihood": ["bernoulli", "gaussian"]}},
         "fixed.likelihood: is an option (text choices); zip pairs numbers only"),
        ({"zip": ["label_count", "hidden"], "label_count": [20, 30], "fixed": {"hidden": [8, 0]}}, "fixed.hidden: must be >= 1, got 0"),
        ({"label_count": [20, 30], "fixed": {"hidden": [8, 16]}},
         "fixed.hidden: a list is fixed only when zipped with data axes (zip: [label_count, hidden]); for a grid over its values, use search: {hidden: [...]}"),
        ({"zip": ["label_count", "label_count"]}, "zip: a list is zipped twice; name each once"),
        ({"models": ["m2"], "search": {"alpha": [1, 2], "lr": {"low": 0.001, "high": 0.01}}, "sampler": "cmaes", "trials": 3},
         "sampler: cmaes samples continuous ranges only, but 'alpha' is a list; use tpe, or one value"),
        ({"sampler": "nsga2", "trials": 3}, "sampler: nsga2 optimises two objectives; add objectives: [val_acc, wall_s]"),
        ({"objectives": ["val_acc", "loss"]}, "objectives: unknown objective 'loss'; allowed: val_acc, wall_s"),
        ({"scheduler": {"type": "hyperband"}}, "scheduler.type: unknown scheduler 'hyperband'; allowed: asha, median"),
        ({"epochs": 3, "scheduler": {"type": "asha", "grace_period": 3}},
         "scheduler.grace_period: 3 is not below epochs (3), so the scheduler would never stop a configuration; "
         "set grace_period below 3, or remove the scheduler"),
        ({"label_count": [50, 2000]}, "label_count: 2000 leaves no unlabelled data: digits has 1257 training points"),
        ({"dataset": ["digits", "moons"], "label_count": 50, "data": {"noise": 0.2}}, "data.noise: only the toy sets (moons, circles) take noise, not digits"),
    ],
)
def test_more_bad_specs(write_spec, overrides, message):
    assert error(write_spec, tiny_spec(**overrides)) == message


def test_pack_is_for_grids_and_samplers_with_or_without_a_scheduler():
    assert parse(tiny_spec(sampler="tpe", trials=4, pack=4, search={"alpha": {"low": 0.1, "high": 1.0}})).pack == 4  # asked 4 at a time
    assert parse(tiny_spec(sampler="tpe", trials=4, pack=4, scheduler="asha", search={"alpha": {"low": 0.1, "high": 1.0}})).pack == 4
    with pytest.raises(SpecError, match=r"with --pack 0: pack: must be >= 1, got 0"):
        with_pack(parse(tiny_spec()), 0)
    assert parse(tiny_spec(pack=2, scheduler="asha")).pack == 2  # each member is judged on its own (stopping.py)


def test_an_error_carries_its_key_and_the_file_is_named_once(write_spec):
    path = write_spec(tiny_spec(batch={"labelled": 0}))
    with pytest.raises(SpecError) as info:
        spec_module.load(path)
    assert (info.value.key, info.value.source, info.value.problem) == ("batch.labelled", str(path), "must be >= 1, got 0")
    with pytest.raises(SpecError) as info:  # an override's problem names the file too
        spec_module.load(path, ["epochs.x=1"])
    assert str(info.value) == f"{path}: override epochs.x: epochs is not a mapping here; set it whole (epochs=...)"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"scheduler": {"grace_period": 2}}, "scheduler: missing required key 'type'; required keys: type"),
        ({"scheduler": 3}, "scheduler: expected asha, median, or a mapping {type: ..., grace_period: N, reduction_factor: N}"),
        ({"resources": "fast"}, "resources: expected a mapping {cpu: N, gpu: N}"),
        ({"resources": {"tpu": 1}}, "resources.tpu: unknown key; allowed keys: cpu, gpu"),
        ({"batch": [{"labelled": 5}, 7]}, "batch: expected a mapping {labelled: N, unlabelled: N}, or a list of them"),
        ({"search": {"alpha": {"low": 1, "steps": 3}}}, "search.alpha.steps: unknown key; allowed keys: low, high, log"),
        ({"search": {"alpha": {"low": 1}}}, "search.alpha: missing required key 'high'; required keys: low, high"),
        ({"metric": "test_acc"}, "metric: configurations are selected by val_acc only, not 'test_acc'; remove the key"),
    ],
)
def test_a_sections_keys_come_from_its_fields(write_spec, overrides, message):
    assert error(write_spec, tiny_spec(**overrides)) == message


def test_metric_val_acc_is_still_read_and_not_written_back():
    import yaml

    from sweeper.spec import to_yaml

    spec = parse(tiny_spec(metric="val_acc"))
    assert spec == parse(tiny_spec()) and "metric" not in yaml.safe_load(to_yaml(spec))


def test_every_section_round_trips_and_an_empty_one_means_its_defaults():
    import yaml

    from sweeper.spec import Resources, Scheduler, Step, Study, to_yaml

    spec = parse(tiny_spec(scheduler="asha", step={"bf16": True}, resources={"cpu": 2, "gpu": 0.5}, study={"heartbeat_s": 5},
                           data={"preprocess": "standardize"}, max_concurrent=2, trials=None))
    assert spec.scheduler == Scheduler(type="asha") and spec.step == Step(bf16=True) and spec.resources == Resources(cpu=2, gpu=0.5)
    assert spec.study == Study(heartbeat_s=5, reclaim_after_s=30) and spec.data.preprocess == "standardize" and spec.trials is None
    assert parse(yaml.safe_load(to_yaml(spec))) == spec
    packed = with_pack(parse(tiny_spec()), 2)
    assert packed.pack == 2 and parse(yaml.safe_load(to_yaml(packed)), source=packed.source) == packed
    assert parse(tiny_spec(resources=None, study=None, step=None)) == parse(tiny_spec(resources={}))


def test_native_bf16_reads_the_cpus_flags(tmp_path):
    from sweeper.hardware import native_bf16

    info = tmp_path / "cpuinfo"
    for flags, native in [("fpu avx2 avx512f avx512_bf16 avx512vl", True), ("fpu amx_tile amx_bf16", True),
                          ("fpu avx2 avx512f avx512_fp16", False), ("fpu avx512_bf16x", False)]:
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        assert native_bf16("cpu", info) is native, flags
    assert native_bf16("cpu", tmp_path / "absent") is False  # no flags to read: float32



def test_m1_epochs_refuses_a_scheduler_and_a_vae_fraction_it_would_override():
    parse = spec_module.parse
    m1 = dict(models=["m1m2", "m2"], search={}, sampler="random", trials=2)
    with pytest.raises(SpecError, match=r"^<spec>: scheduler: m1_epochs makes trials of M1's models longer than the others"):
        parse(tiny_spec(**m1, fixed={"m1_epochs": 3}, scheduler="asha"))
    with pytest.raises(SpecError, match=r"^<spec>: search.vae_fraction: would be ignored: m1_epochs 3 places M1's stage"):
        parse(tiny_spec(**{**m1, "search": {"vae_fraction": {"low": 0.1, "high": 0.5}}}, fixed={"m1_epochs": 3}))
    with pytest.raises(SpecError, match=r"^<spec>: fixed.vae_fraction: would be ignored"):
        parse(tiny_spec(**m1, fixed={"m1_epochs": 3, "vae_fraction": 0.5}))
    with pytest.raises(SpecError, match=r"^<spec>: fixed.m1_epochs: must be >= 0, got -1"):
        parse(tiny_spec(**m1, fixed={"m1_epochs": -1}))
    with pytest.raises(SpecError, match=r"^<spec>: patience: 3 would stop seeds within M1's own 3 epochs \(m1_epochs\)"):
        parse(tiny_spec(**m1, fixed={"m1_epochs": 3}, patience=3))
    assert parse(tiny_spec(**m1, fixed={"m1_epochs": 3}, patience=4)).patience == 4
    zipped = dict(m1, label_count=[50, 100], zip=["label_count", "m1_epochs"], fixed={"m1_epochs": [2, 3]})
    with pytest.raises(SpecError, match=r"^<spec>: patience: 3 would stop seeds within M1's own 3 epochs"):  # the longest
        parse(tiny_spec(**zipped, patience=3))
    from sweeper import space
    from sweeper.packing import plan_of

    spec = parse(tiny_spec(**{**zipped, "sampler": "grid", "trials": None}))
    plans = [plan_of(spec, space.configuration(spec, p)) for p in space.grid_points(spec)]
    assert {(p.model, p.label_count, p.epochs) for p in plans} == {("m1m2", 50, 4), ("m1m2", 100, 5), ("m2", 50, 2), ("m2", 100, 2)}
    assert parse(tiny_spec(**m1, fixed={"m1_epochs": 0, "vae_fraction": 0.3}, scheduler="asha")).fixed["vae_fraction"] == 0.3


def test_at_smoke_scale_m1s_own_epochs_and_widths_shrink_where_the_spec_sets_them():
    from sweeper.spec import at_scale

    spec = spec_module.parse(tiny_spec(models=["m1m2"], search={}, fixed={"m1_epochs": 1500, "m1_hidden": 500, "m1_depth": 2}))
    assert {k: at_scale(spec, "smoke").fixed[k] for k in ("m1_epochs", "m1_hidden", "m1_depth")} == {"m1_epochs": 1, "m1_hidden": 16, "m1_depth": 2}
    assert "m1_epochs" not in at_scale(spec_module.parse(tiny_spec(models=["m1m2"], search={})), "smoke").fixed


@pytest.mark.parametrize("where", ["fixed", "search"])
def test_m1s_own_epochs_fixed_or_searched_keep_patience_above_them_and_vae_fraction_out(where):
    value = {"fixed": 50, "search": [10, 50]}[where]
    base = dict(models=["m1"], fixed={"hidden": 16, "latent": 4}, search={})
    base[where] = {**base[where], "m1_epochs": value}
    with pytest.raises(SpecError, match=r"patience: 10 would stop seeds within M1's own 50 epochs"):
        parse(tiny_spec(**base, patience=10))
    with pytest.raises(SpecError, match=r"vae_fraction: would be ignored: m1_epochs 50"):
        parse(tiny_spec(**{**base, "fixed": {**base["fixed"], "vae_fraction": 0.3}}))
    assert parse(tiny_spec(**base, patience=51)).patience == 51


def test_eval_every_is_refused_with_a_scheduler_or_a_shorter_patience():
    assert parse(tiny_spec(eval_every=5, patience=5)).eval_every == 5
    with pytest.raises(SpecError, match=r"^<spec>: eval_every: the scheduler judges validation accuracy at every epoch, and "
                                        r"eval_every 2 measures it once in 2 epochs; set eval_every: 1 or remove the scheduler"):
        parse(tiny_spec(epochs=6, eval_every=2, scheduler={"type": "asha", "grace_period": 1}))
    with pytest.raises(SpecError, match=r"^<spec>: patience: patience 2 is shorter than the 3 epochs between evaluations"):
        parse(tiny_spec(eval_every=3, patience=2))
    with pytest.raises(SpecError, match=r"^<spec>: eval_every: "):
        parse(tiny_spec(eval_every=0))


def test_an_override_the_smoke_scale_sets_its_own_value_over_is_named(write_spec, capsys):
    from helpers import tiny_spec
    from sweeper.cli import main

    spec = write_spec(tiny_spec(epochs=5))
    assert main(["validate", str(spec), "--scale", "smoke", "epochs=1", "search.alpha=[1.0]", "fixed.hidden=8"]) == 0
    out, err = capsys.readouterr()
    assert "2 epochs each" in out
    assert err == "sweeper: note: --scale smoke sets its own values over epochs=1; drop --scale smoke to run them as given\n"
    assert main(["validate", str(spec), "epochs=1"]) == 0 and capsys.readouterr().err == ""
