"""sweeper bench --model: the figures it prints, checked against counts done by hand."""
import json

from sweeper.bench import training_case
from sweeper.cli import main


def test_the_step_flops_are_counted_from_the_layer_shapes_forward_and_backward():
    figures = training_case("baseline", "digits", pack=1, steps=2)
    b, d, h, k = 100, 64, 128, 10  # labelled batch, features, hidden units, classes
    forward = 2 * b * d * h + 2 * b * h * k
    backward = 2 * b * d * h + 2 * (2 * b * h * k)  # no gradient for the data: one product less in the first layer
    assert figures["model_gflop_per_step"] == round((forward + backward) / 1e9, 3)


def test_a_pack_does_k_times_the_work_in_one_step():
    one, four = training_case("m2", "digits", pack=1, steps=2), training_case("m2", "digits", pack=4, steps=2)
    assert abs(four["model_gflop_per_step"] - 4 * one["model_gflop_per_step"]) <= 0.0025  # each rounded to 1e-3
    assert one["model_gflop_per_step"] > 0 and (one["pack"], four["pack"]) == (1, 4)
    for f in (one, four):  # measured in this process: a matmul speed and a resident set, whatever the machine
        assert f["matmul_gflops_fp32"] > 0 and f["peak_memory_mb"] > 0 and f["step_ms"] > 0


def test_bench_prints_one_json_line_and_refuses_what_it_cannot_time(capsys):
    assert main(["bench", "--model", "baseline", "--shape", "digits", "--pack", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["case"], line["model"], line["pack"], line["device"]) == ("training", "baseline", 2, "cpu")
    assert main(["bench", "--model", "ssgmm"]) == 2
    assert "fitted by EM, it has no training step to time" in capsys.readouterr().err
    assert main(["bench", "--model", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_a_compiled_step_counts_the_same_work(capsys):
    """--compile: the FLOPs are counted on a plain step (torch.compile refuses FlopCounterMode), the timing is compiled."""
    plain = training_case("baseline", "digits", pack=2, steps=2)
    assert main(["bench", "--model", "baseline", "--shape", "digits", "--pack", "2", "--compile"]) == 0
    compiled = json.loads(capsys.readouterr().out)
    assert compiled["compile"] and compiled["model_gflop_per_step"] == plain["model_gflop_per_step"] > 0
    assert compiled["step_ms"] > 0


def test_a_grids_projection_times_one_trial_of_each_kind_and_counts_every_trial(tmp_path, capsys):
    """--spec: the grid packed as a sweep packs it (m2's 3 alphas in packs of 2: one of 2, one of 1;
    the baseline alone), each kind's measured epoch extrapolated to its trials and summed."""
    import yaml

    spec = {"name": "tiny-grid", "dataset": "digits", "label_count": 50, "models": ["m2", "baseline"], "seeds": [0, 1],
            "epochs": 3, "batch": {"labelled": 20, "unlabelled": 20}, "fixed": {"hidden": 16, "latent": 4},
            "search": {"alpha": [0.1, 1, 10]}, "sampler": "grid", "pack": 2}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["bench", "--spec", str(path)]) == 0
    *kinds, total = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(k["model"], k["trials"], k["configurations_per_trial"], k["members"]) for k in kinds] == [
        ("m2", 1, 2, 4), ("m2", 1, 1, 2), ("baseline", 1, 1, 2)]
    for k in kinds:
        assert k["steps_per_epoch"] == (1257 - 50) // 20  # digits' training split less the labelled points, in batches of 20
        assert abs(k["projected_s"] - k["trials"] * 3 * k["steps_per_epoch"] * k["step_ms"] / 1000) <= 0.05 + 0.01 * k["projected_s"]
    assert (total["trials"], total["configurations"]) == (3, 4)
    assert abs(total["projected_s"] - sum(k["projected_s"] for k in kinds)) < 0.11

    assert main(["bench", "--spec", str(path), "--pack", "3"]) == 0  # --pack overrides the spec's
    assert [json.loads(line)["members"] for line in capsys.readouterr().out.splitlines()[:-1]] == [6, 2]
    path.write_text(yaml.safe_dump({**spec, "sampler": "random", "search": {"alpha": {"low": 0.1, "high": 10}}, "trials": 2, "pack": 1}))
    assert main(["bench", "--spec", str(path)]) == 2
    assert "projects grids only; this spec samples (random)" in capsys.readouterr().err


def test_bench_report_tables_a_synthetic_sweep_of_distinct_configurations():
    from sweeper.bench import report_case

    figures = report_case(configurations=16, seeds=2, epochs=3)  # a repeated configuration would be refused
    assert (figures["table_rows"], figures["epoch_rows"], figures["trial_rows"], figures["files"]) == (16, 96, 32, 16)
    assert figures["table_s"] > 0 and figures["learning_curves_s"] > 0


def test_a_timed_step_that_does_not_fit_in_memory_is_one_line(monkeypatch, capsys):
    from sweeper import bench

    def refused(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:118] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 158913789952 bytes")

    monkeypatch.setattr(bench, "main", refused)
    assert main(["bench", "--model", "m2", "--pack", "4096"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweeper: error: bench: the timed step does not fit this CPU's memory (") and err.count("\n") == 1
    assert "lower --pack" in err
