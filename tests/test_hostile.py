"""Hostile input: one line naming what and where, exit 2, nothing written, no secret, no hang."""
import copy
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import tiny_spec
from sweeper import redact, results
from sweeper.cli import main


def refused(argv, capsys, cwd=None) -> str:
    """Run the command line; it must exit 2 with one bounded line on stderr and nothing on stdout."""
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("sweeper: error: ") and len(err) < 700, err
    assert "internal error" not in err and "Traceback" not in err
    return err.removeprefix("sweeper: error: ").rstrip("\n")


def files_under(path) -> set:
    return {p for p in path.rglob("*")}


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize("url, secret", [
    ("postgresql://alice:p@ss@127.0.0.1:1/db", "p@ss"),
    ("postgresql://alice:pa/ss@127.0.0.1:1/db", "pa/ss"),
    ("postgresql://127.0.0.1:1/db?password=hunter2&sslmode=disable", "hunter2"),
    ("postgresql://bob:s3cr%40t@127.0.0.1:1/db", "s3cr%40t"),
    ("mysql://u:topsecret@127.0.0.1:1/db?sslkey=k", "topsecret"),
    ("postgresql://user:pa?ss@127.0.0.1:1/db", "pa?ss"),
    ("postgresql://user:p#w?x@127.0.0.1:1/db?sslpassword=y", "p#w?x"),
    ("postgresql:/user:secretpw@127.0.0.1:1/db", "secretpw"),  # mistyped, without its "://"
    ("postgresql:user:secretpw@127.0.0.1:1/db", "secretpw"),
    ("postgresql//user:secretpw@127.0.0.1:1/db", "secretpw"),
])
def test_no_password_in_any_message_however_the_url_spells_it(url, secret, capsys):
    message = refused(["status", "--study", url], capsys)
    for fragment in {secret, secret.replace("%40", "@")} | set(secret.replace("%40", "@").split("@")) | set(secret.split("/")):
        assert len(fragment) < 3 or fragment not in message, message
    assert "***" in message or "password" not in url


def test_a_url_keeps_what_is_not_secret():
    assert redact.url("postgresql://alice:p@ss@host:5432/db?sslmode=require&password=x") == \
        "postgresql://alice:***@host:5432/db?sslmode=require&password=***"
    assert redact.quoted("postgresql://alice:p@ss@host/db") == "postgresql://alice:p%40ss@host/db"
    assert redact.message("failed for 'postgresql://u:pw1@h/d' and pw1 again", "postgresql://u:pw1@h/d") == \
        "failed for 'postgresql://u:***@h/d' and *** again"
    assert redact.url("https://acct.blob/c?sv=1&sig=abc") == "https://acct.blob/c?sv=1&sig=***"
    assert redact.url("postgresql:/alice:pw@host/db") == "postgresql:/alice:***@host/db"  # mistyped: masked all the same
    ordinary = ["/data/a:b/c", "me@host", "C:/x@y", "sweep-2026-12-05T20:06:12@node3", "team:exp@v2.journal"]
    assert [redact.url(path) for path in ordinary] == ordinary and not any(redact.secrets(path) for path in ordinary)
    assert redact.message("--study=postgresql:/u:pw99@h/db failed", "--study=postgresql:/u:pw99@h/db") == \
        "--study=postgresql:/u:***@h/db failed"
    assert redact.message("gs://bucket/x?token=abc: not a location") == "gs://bucket/x?token=***: not a location"


def test_a_short_password_is_masked_where_it_stands_alone_not_inside_every_word():
    url = "postgresql://alice:a@host/db"
    assert redact.message(f"could not connect to {url} as alice", url) == \
        "could not connect to postgresql://alice:***@host/db as alice"
    assert redact.message("password a was refused", url) == "password *** was refused"
    assert redact.message("a'", "postgresql://u:a@h/d") == "***'"
    # four characters and more: masked wherever they appear, inside words too
    assert redact.message("xpw12x", "postgresql://u:pw12@h/d") == "x***x"


def test_a_database_url_typed_without_its_slashes_is_named_as_such(capsys, tmp_path, monkeypatch):
    message = refused(["status", "--study", "postgresql:/user:secretpw@127.0.0.1:1/db"], capsys)
    assert "reads as a database URL without its '://'" in message and "secretpw" not in message
    monkeypatch.chdir(tmp_path)
    assert "reads as a database URL without its '://'" in refused(["status", "--study", "sqlite:study.db"], capsys)
    assert not (tmp_path / "sqlite:study.db").exists()


def test_a_journal_named_like_a_folder_with_a_time_and_a_host_is_a_journal(tmp_path, capsys):
    journal = tmp_path / "team:exp@v2.journal"
    journal.write_bytes(b"")
    message = refused(["status", "--study", journal], capsys)  # an empty journal: no study in it yet
    assert "holds 0 studies" in message and "team:exp@v2.journal" in message
    journal.write_bytes(b'{"op_code":0,"worker_id":"a')  # a first entry still being written
    assert "holds 0 studies" in refused(["status", "--study", journal], capsys)


def test_a_report_of_a_location_with_credentials_never_prints_them(capsys, tmp_path):
    assert main(["report", "s3://AKIA:SECRETKEY@bucket/x?endpoint_override=127.0.0.1:9&scheme=http"]) == 2
    out, err = capsys.readouterr()
    assert "SECRETKEY" not in out + err


def test_the_shared_study_file_holds_no_password(tmp_path):
    from sweeper import study

    assert "hunter2" not in study.describe("postgresql://u:hunter2@h/db?password=hunter2")


# ------------------------------------------------------------------ specs that are malformed


def write(tmp_path, content, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.mark.parametrize("overrides, expected", [
    ({"objectives": [["val_acc"]]}, "objectives: unknown objective ['val_acc']; allowed: val_acc, wall_s"),
    ({"label_count": list(range(10, 4010, 10)), "batch": [{"labelled": 1, "unlabelled": u} for u in range(1, 300)]},
     "the data axes make 119,600 combinations, more than 100,000"),
    ({"resources": {"cpu": 10**400}}, "resources.cpu: expected a finite number, got 1000"),
    ({"models": [["m2"]]}, "models: unknown model ['m2']"),
    ({"search": {"likelihood": {"low": 0, "high": 1}}}, "search.likelihood: is an option (text choices), so it takes a list"),
    ({"fixed": {"hidden": 10**400}}, "fixed.hidden: expected a finite number"),
    ({"dataset": []}, "dataset: empty list"),
    ({"batch": []}, "batch: empty list"),
    ({"label_count": 1250}, "label_count: 1250 needs 125 labels per class, but the rarest class of digits has 113 training points"),
    ({"name": "n" * 300}, "name: is 300 bytes long; keep it to 150"),
    ({"seeds": [2**63]}, "seeds: must be <= 9223372036854775807"),
    ({"sampler_seed": 2**32}, "sampler_seed: must be <= 4294967295"),
    ({"label_count": [100, 100]}, "label_count: a label count is listed twice"),
    ({"batch": [{"labelled": 5, "unlabelled": 5}, {"labelled": 5, "unlabelled": 5}]}, "batch: a batch size is listed twice"),
    ({"search": {"alpha": [1, 1.0]}}, "search.alpha: a grid value is listed twice"),
    ({"search": {"alpha": list(range(400)), "lr": [i / 1e4 + 1e-4 for i in range(300)]}}, "search: the grid holds 120,300 configurations"),  # m2: 400 x 300, baseline: 300
    ({"fixed": {"sigma2": 0.1}, "models": ["m2"]}, "fixed.sigma2: would be ignored"),
])
def test_a_spec_that_cannot_run_as_written_is_refused_before_anything_is_written(tmp_path, capsys, overrides, expected):
    path = write(tmp_path, tiny_spec(**overrides))
    before = files_under(tmp_path)
    assert expected in refused(["validate", path], capsys)
    assert files_under(tmp_path) == before


def test_yaml_merge_keys_still_work_and_deep_overrides_are_refused(tmp_path, capsys):
    path = write(tmp_path, "name: t\ndataset: digits\nmodels: [m2]\nseeds: [0]\nepochs: 1\nlabel_count: 50\n"
                 "batch: {labelled: 25, unlabelled: 100}\nfixed:\n  <<: {hidden: 16, latent: 4}\n  lr: 0.001\n")
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert "nested too deeply" in refused(["validate", path, "epochs=" + "[" * 3000], capsys)


def test_odd_remote_timeouts_fall_back_to_the_default(monkeypatch):
    for value in ("inf", "nan", "-1", "1e300", "soon"):
        monkeypatch.setenv("SWEEPER_REMOTE_TIMEOUT_S", value)
        assert results.remote_timeout_s() == 30.0
    monkeypatch.setenv("SWEEPER_REMOTE_TIMEOUT_S", "2.5")
    assert results.remote_timeout_s() == 2.5


def test_a_grid_is_counted_without_being_listed(tmp_path, capsys):
    import tracemalloc

    spec = tiny_spec(search={"alpha": list(range(1000)), "lr": [i / 1e5 + 1e-5 for i in range(1000)]})
    tracemalloc.start()
    refused(["validate", write(tmp_path, spec)], capsys)
    assert tracemalloc.get_traced_memory()[1] < 100 * 2**20  # a million points listed would take several hundred MB
    tracemalloc.stop()


@pytest.mark.parametrize("content, expected", [
    ("name: a\nname: b\n", "line 2: not valid YAML (the key 'name' is given twice)"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e]\n",
     "its aliases expand to more than 100,000 values"),
    (b"name: caf\xe9\n", "is not UTF-8 text"),
])
def test_a_spec_file_that_is_no_spec(tmp_path, capsys, content, expected):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = refused(["validate", path], capsys)
    assert expected in message and len(message) < 400


def test_no_read_blocks_on_a_fifo_or_a_device_or_a_symlink_loop(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    start = time.monotonic()
    assert "is not a regular file" in refused(["validate", tmp_path / "fifo.yaml"], capsys)
    assert "is not a regular file" in refused(["validate", "/dev/zero"], capsys)
    assert "cannot read the spec (Too many levels of symbolic links)" in refused(["validate", tmp_path / "a"], capsys)
    assert time.monotonic() - start < 10


def test_a_data_file_that_is_a_directory_or_a_fifo(tmp_path):
    from sweeper.data import mnist
    from sweeper.data.fetch import ensure
    from sweeper.errors import DataError

    source = mnist.sources(mnist.MNIST_URLS, mnist.MNIST_GZ_MD5, mnist.MNIST_CONTENT_MD5)[0]
    (tmp_path / source.name).mkdir()
    with pytest.raises(DataError, match="is not a regular file"):
        ensure(source, tmp_path)
    os.rmdir(tmp_path / source.name)
    os.mkfifo(tmp_path / source.name)
    with pytest.raises(DataError, match="is not a regular file"):
        ensure(source, tmp_path)


# ------------------------------------------------------------------ results and reports


def test_results_of_the_wrong_shape_are_refused_naming_the_file(tmp_path, capsys):
    import pandas as pd

    (tmp_path / "trials").mkdir()
    pd.DataFrame({"trial_id": ["a"], "config_id": ["a"], "model": ["m2"], "seed": [0], "best_val_acc": [0.5],
                  "test_acc": [0.5]}).to_parquet(tmp_path / "trials" / "a.parquet")
    assert refused(["report", tmp_path], capsys) == f"{tmp_path}/trials/a.parquet: has no status column; was it written by sweeper?"
    pd.DataFrame({"trial_id": ["a"], "config_id": ["a"], "model": ["m2"], "seed": [0], "best_val_acc": ["high"],
                  "test_acc": [0.5], "status": ["completed"]}).to_parquet(tmp_path / "trials" / "a.parquet")
    assert "column best_val_acc holds text, not number" in refused(["report", tmp_path], capsys)


def test_malformed_published_figures(tmp_path, capsys):
    from test_results import HYPER, epoch_rows, trial_row

    results.write_configuration(tmp_path / "r", "c", epoch_rows("c", "m2", 0), [trial_row("c", "m2", 0)], HYPER)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.csv").write_text('table,row\n"x,1\n')
    assert "a.csv: not a CSV of published figures" in refused(["report", tmp_path / "r", "--compare", "--published", tmp_path / "p"], capsys)
    (tmp_path / "p" / "a.csv").write_text("table,row,column,value,std\njurasinski,1,m2,high,\n")
    assert "column value holds text" in refused(["report", tmp_path / "r", "--compare", "--published", tmp_path / "p"], capsys)


def test_a_remote_location_that_never_answers_fails_after_the_stated_wait(tmp_path):
    """A server on 127.0.0.1 that accepts connections and never replies: one line after the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "sweeper", "report", f"s3://bucket/x?endpoint_override=127.0.0.1:{port}&scheme=http"],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "SWEEPER_REMOTE_TIMEOUT_S": "2", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert done.returncode == 2 and time.monotonic() - start < 30
    assert done.stderr == "sweeper: error: s3://bucket/x: no answer within 2 s; check the network and the URI ($SWEEPER_REMOTE_TIMEOUT_S sets how long to wait)\n"


def test_reading_commands_create_nothing(tmp_path, capsys):
    refused(["status", "--study", tmp_path / "none" / "study.journal"], capsys)
    refused(["status", "--study", f"sqlite:///{tmp_path}/none.db"], capsys)
    refused(["report", tmp_path / "none"], capsys)
    assert files_under(tmp_path) == set()


def test_status_of_a_study_no_drivers_share(tmp_path, capsys):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal")))
    optuna.create_study(storage=storage, study_name="alone").enqueue_trial({"x": 1})
    assert "study 'alone' is not shared by drivers" in refused(["status", "--study", tmp_path / "optuna.journal"], capsys)


def test_run_into_a_file_and_a_missing_data_dir_leave_nothing(tmp_path, capsys, write_spec):
    target = tmp_path / "file"
    target.write_text("x")
    assert "is a file, not a folder" in refused(["run", write_spec(tiny_spec()), "--out", target], capsys)
    from sweeper.data import mnist
    from sweeper.data.fetch import ensure
    from sweeper.errors import DataError

    source = mnist.sources(("http://127.0.0.1:9/",), mnist.MNIST_GZ_MD5)[0]
    with pytest.raises(DataError):
        ensure(source, tmp_path / "data" / "mnist")
    assert not (tmp_path / "data").exists()


def test_a_pipe_closed_early_is_no_error():
    done = subprocess.run(f"{sys.executable} -m sweeper models | head -1", shell=True, capture_output=True, text=True)
    assert done.stdout.startswith("adgm: ") and done.stderr == ""


# ------------------------------------------------------------------ many mutated specs


def mutations(seed: int, count: int):
    """Specs made wrong at random: a key deleted, a value's type swapped, a number out of range."""
    rng = random.Random(seed)
    base = tiny_spec(fixed={"hidden": 16, "latent": 4, "lr": 0.001})
    swaps = [None, True, "text", [], {}, [[1]], -1, 10**30, 1e308 * 10, float("nan"), {"low": 1, "high": 0}, "", "\x00"]
    made = 0
    while made < count:
        spec = copy.deepcopy(base)
        choice = rng.random()
        path = [k for k in ("name", "dataset", "models", "seeds", "epochs", "label_count", "batch", "fixed", "search", "sampler",
                            "resources") if k in spec]
        key = rng.choice(path)
        if choice < 0.2 and key in ("name", "dataset", "models", "seeds", "epochs"):
            del spec[key]
        elif isinstance(spec[key], dict) and spec[key] and choice < 0.7:
            inner = rng.choice(list(spec[key]))
            spec[key][inner] = rng.choice(swaps)
        else:
            spec[key] = rng.choice(swaps)
        try:
            from sweeper.spec import parse

            parse(copy.deepcopy(spec))
            continue  # still a good spec (e.g. a value swapped for an allowed one): not a mutation that must fail
        except Exception:  # noqa: BLE001 - a SpecError is what the command line must turn into one line
            pass
        made += 1
        yield spec


def test_many_mutated_specs_each_get_one_line_exit_2_and_no_files(tmp_path, capsys):
    for number, spec in enumerate(mutations(0, 150)):
        path = tmp_path / f"s{number}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
        before = files_under(tmp_path)
        refused(["validate", path], capsys)
        assert files_under(tmp_path) == before


# ------------------------------------------------------------------ symlink loops


@pytest.mark.parametrize("command", ["status", "inspect", "resume", "report", "run --out"])
def test_a_symlink_loop_given_as_a_results_directory_is_one_line(tmp_path, capsys, command):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec()))
    argv = ["run", spec, "--out", tmp_path / "a"] if command == "run --out" else [command, tmp_path / "a"]
    message = refused(argv, capsys)
    assert ("a symlink loop" in message or "Too many levels of symbolic links" in message) and str(tmp_path) in message


def test_a_spec_file_that_links_to_itself_in_a_results_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "spec.yaml").symlink_to(tmp_path / "out" / "spec.yaml")
    message = refused(["status", tmp_path / "out"], capsys)
    assert "spec.yaml" in message


# ------------------------------------------------------------------ results files with sweeper's columns, not its rows


def _trials_file_changed(tmp_path, change):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from helpers import HYPER, trial_row

    out = tmp_path / "out"
    results.write_configuration(out, "c", [], [trial_row("c", "m2", s, alpha=1.0) for s in range(2)], HYPER)
    path = out / "trials" / "c.parquet"
    pq.write_table(change(pq.read_table(path), pa), path)
    (out / "spec.yaml").write_text(yaml.safe_dump(tiny_spec()))  # sweeper status reads the spec beside the rows
    return out


@pytest.mark.parametrize("command", ["status", "report"])
@pytest.mark.parametrize("change, said", [
    (lambda t, pa: t.set_column(t.schema.get_field_index("trial_id"), "trial_id", pa.nulls(t.num_rows, pa.string())),
     "trials/c.parquet: column trial_id has empty values, which no row sweeper writes has"),
    (lambda t, pa: t.append_column("nested", pa.array([{"a": 1}] * t.num_rows)),
     "trials/c.parquet: column nested holds nested values (struct<a: int64>)"),
])
def test_a_results_file_with_empty_identities_or_nested_columns_is_one_line(tmp_path, capsys, command, change, said):
    out = _trials_file_changed(tmp_path, change)
    assert said in refused([command, out], capsys)


# ------------------------------------------------------------------ a study file that is not a journal


@pytest.mark.parametrize("content", [b"\xff\xfe\n", b"hello world\n", b'{"not": "a journal entry"}\n', b"notes without a newline"])
def test_a_study_file_that_is_no_optuna_journal_is_one_line_and_left_alone(tmp_path, capsys, content):
    path = tmp_path / "notes.journal"
    path.write_bytes(content)
    assert "is not an Optuna journal file" in refused(["status", "--study", path], capsys)
    assert path.read_bytes() == content


def test_a_study_path_that_is_a_directory_says_so(tmp_path, capsys):
    assert refused(["status", "--study", tmp_path], capsys).endswith(": is a directory; give the study's journal or SQLite file")


def test_a_results_location_whose_store_does_not_answer_is_one_line(capsys):
    message = refused(["status", "s3://AK:SECRETKEY@bucket/x?endpoint_override=127.0.0.1:9&scheme=http"], capsys)
    assert "spec.yaml: cannot read it (" in message and "SECRETKEY" not in message


def test_an_out_that_is_a_dangling_symlink_makes_nothing_where_it_points(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec()))
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere" / "deeper")
    for out in (tmp_path / "out", tmp_path / "out" / "sub"):
        assert f"{tmp_path}/out is a symlink to {tmp_path}/elsewhere/deeper, whose folder {tmp_path}/elsewhere does not exist" \
            in refused(["run", spec, "--out", out], capsys)
    assert not (tmp_path / "elsewhere").exists()


def test_an_out_that_links_to_a_new_folder_in_a_folder_that_exists_is_made_there(tmp_path):
    from sweeper import results

    (tmp_path / "scratch").mkdir()
    (tmp_path / "run7").symlink_to(tmp_path / "scratch" / "run7")
    results.no_dangling_link(tmp_path / "run7")  # the usual scratch link: allowed, and run makes scratch/run7


@pytest.mark.parametrize("override, said", [
    ("epochs=99999999999999999999999", "epochs: must be <= 2147483647"),
    ("eval_every=3000000000", "eval_every: must be <= 2147483647"),
    ("pack=99999999999999999999", "pack: must be <= 2147483647"),
    ("resources.cpu=1e308", "resources.cpu: must be > 0 and <= 10000"),
])
def test_counts_beyond_what_a_results_column_holds_are_refused(tmp_path, capsys, override, said):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec()))
    assert said in refused(["validate", spec, override], capsys)


def test_a_bench_pack_beyond_memory_is_refused(capsys):
    assert refused(["bench", "--model", "m2", "--pack", "1000000000000"], capsys).startswith("bench --pack 1000000000000: must be from 1 to 4096")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["schema", "models"])
def test_output_to_a_full_disk_is_one_line_not_an_internal_error(command):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "sweeper", command], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and "internal error" not in done.stderr
    assert done.stderr == ("sweeper: error: no space left on the device it writes to (its output); "
                           "free some, or write elsewhere\n")


@pytest.mark.parametrize("out, says", [
    ("s3://AKIA:hunter2@127.0.0.1:1/x", "the results directory is a folder on this machine"),
    ("", "--out: empty or blank; give a folder for the results"),
    ("earlier/trials", "is inside the results of"),
    ("earlier/tune/again", "is inside the results of"),
])
def test_run_takes_a_results_directory_of_its_own_on_this_machine(tmp_path, capsys, monkeypatch, write_spec, out, says):
    """A URI would be made here as folders named after it, password and all; a folder among another sweep's
    own files would mix two sweeps; an empty --out would be the current directory."""
    from test_results import HYPER, epoch_rows, trial_row

    spec = write_spec(tiny_spec())
    monkeypatch.chdir(tmp_path)
    results.write_configuration(tmp_path / "earlier", "c", epoch_rows("c", "m2", 0), [trial_row("c", "m2", 0)], HYPER)
    (tmp_path / "earlier" / "provenance.json").write_text("[]")
    (tmp_path / "earlier" / "spec.yaml").write_text(yaml.safe_dump(tiny_spec()))
    before = files_under(tmp_path)
    line = refused(["run", spec, "--out", out], capsys)
    assert says in line and "hunter2" not in line
    assert files_under(tmp_path) == before
    if out.startswith("s3"):
        assert "the results directory is a folder on this machine" in refused(["resume", out], capsys)


def test_report_out_never_lands_among_any_sweeps_own_files(tmp_path, capsys, monkeypatch):
    """Not the directories reported only: a stray file in another sweep's trials/ would make it unreadable. And an
    --out ending in / names a folder, not a file to make under that name."""
    from test_results import HYPER, epoch_rows, trial_row

    monkeypatch.chdir(tmp_path)
    for name in ("r", "other"):
        results.write_configuration(tmp_path / name, "c", epoch_rows("c", "m2", 0), [trial_row("c", "m2", 0)], HYPER)
    (tmp_path / "other" / results.LOCK_FILE).write_text("pid 1 on elsewhere\n")
    line = refused(["report", "r", "--out", "other/trials/zz.parquet"], capsys)
    assert "would write over the results of" in line and "trials/zz.parquet" in line
    assert "names a folder (it ends in /); give a file name" in refused(["report", "r", "--out", "newdir/"], capsys)
    assert not (tmp_path / "newdir").exists() and not (tmp_path / "other" / "trials" / "zz.parquet").exists()
    assert main(["report", "r", "--out", "other/report.md"]) == 0  # beside the results, not among them: a report


def test_an_unreachable_store_is_one_line_for_resume_and_for_the_api(tmp_path, capsys, monkeypatch):
    import sweeper
    from sweeper.errors import SweeperError

    def unreachable(call, location):  # what pyarrow's S3 raises where the bucket's region cannot be asked
        raise OSError("When resolving region for bucket 'b': AWS Error NETWORK_CONNECTION during HeadBucket")

    monkeypatch.setattr(results, "answered_in_time", unreachable)
    with pytest.raises(SweeperError, match="not a location pyarrow can open .*NETWORK_CONNECTION") as raised:
        sweeper.load("s3://u:secretpw@b/c", "x-seed0")
    assert "secretpw" not in str(raised.value)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "spec.yaml").write_text(yaml.safe_dump(tiny_spec()))
    line = refused(["resume", tmp_path / "d", "--storage", "s3://AKIA:hunter2@b/x"], capsys)
    assert "not a location pyarrow can open" in line and "hunter2" not in line


@pytest.mark.parametrize("argv, says", [
    (["--rows", "alpha,alpha"], "names a column twice"),
    (["--rows", "model"], "holds model, the columns' axis by default"),
    (["--rows", "alpha,model"], "holds model, the columns' axis by default"),
])
def test_a_report_axis_never_holds_one_column_twice(tmp_path, capsys, argv, says):
    from test_results import HYPER, epoch_rows, trial_row

    for config, alpha in (("a", 1.0), ("b", 10.0)):
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0), [trial_row(config, "m2", 0, alpha=alpha)], HYPER)
    assert says in refused(["report", tmp_path, *argv], capsys)


def test_a_clock_time_is_no_number_of_epochs_and_a_bound_is_the_hyperparameters_own(write_spec, capsys):
    spec = write_spec(tiny_spec())
    assert "epochs: expected an integer, got '10:00'" in refused(["validate", spec, "epochs=10:00"], capsys)
    assert "must be <= 65536" in refused(["validate", spec, "fixed.hidden=2147483649"], capsys)


def test_published_figures_are_finite_and_given_once(tmp_path, capsys):
    from test_results import HYPER, epoch_rows, trial_row

    results.write_configuration(tmp_path / "r", "c", epoch_rows("c", "m2", 0), [trial_row("c", "m2", 0)], HYPER)
    (tmp_path / "p").mkdir()
    argv = ["report", tmp_path / "r", "--compare", "--published", tmp_path / "p"]
    for rows, says in (("t,1,m2,93.7,-1", "std -1 is not a finite number >= 0"), ("t,1,m2,1e999,", "value inf is not a finite number"),
                       ("t,1,m2,93.7,\nt,1,m2,92.0,", "table t row 1 column m2 has more than one published figure")):
        (tmp_path / "p" / "a.csv").write_text(f"table,row,column,value,std\n{rows}\n")
        assert says in refused(argv, capsys)
    (tmp_path / "p" / "a.csv").write_text("table,row,column,value,std\nt,1,m2,,\n")
    assert "value is empty" in refused(argv, capsys)
    (tmp_path / "p" / "a.csv").write_text("table,row,column,value,std\nt,1,m2,93.7,\n")
    (tmp_path / "p" / "b.csv").write_text("table,row,column,value,std\nt,1,m2,92.0,\n")
    assert "more than one published figure (in a.csv, b.csv)" in refused(argv, capsys)


def test_results_rewritten_by_pandas_still_read_beside_sweepers_own(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from test_results import HYPER, epoch_rows, trial_row

    for config in ("a", "b"):
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0), [trial_row(config, "m2", 0)], HYPER)
    path = tmp_path / "trials" / "b.parquet"
    table = pq.read_table(path)
    wide = pa.schema([pa.field(f.name, pa.large_string()) if f.type == pa.string() else f for f in table.schema])
    pq.write_table(table.cast(wide), path)
    trials = results.read(tmp_path, "trials")
    assert sorted(trials["config_id"]) == ["a", "b"] and isinstance(trials, pd.DataFrame)


@pytest.mark.parametrize("accuracy", [-3.0, float("inf"), 1.5, 93])
def test_an_accuracy_outside_0_to_1_in_a_results_file_is_refused(tmp_path, capsys, accuracy):
    from test_results import HYPER, epoch_rows, trial_row

    results.write_configuration(tmp_path, "c", epoch_rows("c", "m2", 0), [{**trial_row("c", "m2", 0), "test_acc": accuracy}], HYPER)
    assert f"column test_acc holds {accuracy:g}, not an accuracy from 0 to 1" in refused(["report", tmp_path], capsys)


def test_a_text_column_written_as_bytes_or_an_integer_one_as_fractions_is_refused(tmp_path, capsys):
    """Read beside sweeper's own files, bytes would make every status unknown (an empty table) and a seed of 0.5
    another seed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from test_results import HYPER, epoch_rows, trial_row

    for config in ("a", "b"):
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0), [trial_row(config, "m2", 0)], HYPER)
    path = tmp_path / "trials" / "b.parquet"
    original = pq.read_table(path)
    status = original.schema.get_field_index("status")
    pq.write_table(original.set_column(status, "status", original.column("status").cast(pa.binary())), path)
    assert "column status holds binary values, not text" in refused(["report", tmp_path], capsys)
    seed = original.schema.get_field_index("seed")
    pq.write_table(original.set_column(seed, "seed", pa.array([0.5])), path)
    assert "cannot read these results together" in refused(["report", tmp_path], capsys)


def test_only_sweepers_own_files_mark_a_results_directory(tmp_path, capsys, monkeypatch, write_spec):
    """A project of the user's own with a provenance.json, a models/ folder or a tuned.md is no results directory; a
    local --storage among a sweep's own files is refused as --out is."""
    from test_results import HYPER, epoch_rows, trial_row

    monkeypatch.chdir(tmp_path)
    (tmp_path / "provenance.json").write_text('{"builder": "someone else"}')
    (tmp_path / "models").mkdir()
    assert results.inside_results(tmp_path / "models" / "vae") is None
    results.write_configuration(tmp_path / "r", "c", epoch_rows("c", "m2", 0), [trial_row("c", "m2", 0)], HYPER)
    assert main(["report", "r", "--out", "models/report.md"]) == 0 and main(["report", "r", "--out", "r/tuned.md"]) == 0
    capsys.readouterr()
    (tmp_path / "r" / results.LOCK_FILE).write_text("pid 1 on somewhere\n")
    assert results.inside_results(tmp_path / "r" / "tune-rerun-1" / "x") == (tmp_path / "r", Path("tune-rerun-1/x"))
    line = refused(["run", write_spec(tiny_spec()), "--out", "mine", "--storage", "r/models"], capsys)
    assert "--storage r/models/tiny: is inside the results of" in line and not (tmp_path / "mine").exists()


def test_a_study_in_memory_or_in_another_programs_database_is_refused_untouched(tmp_path, capsys, write_spec):
    import sqlite3

    spec = write_spec(tiny_spec())
    for url in ("sqlite:///", "sqlite:///:memory:"):
        assert "an in-memory SQLite database is a new one on each connection" in \
            refused(["run", spec, "--study", url, "--out", tmp_path / "o"], capsys)
    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as connection:
        connection.execute("create table users(id int)")
    line = refused(["run", spec, "--study", f"sqlite:///{theirs}", "--out", tmp_path / "o"], capsys)
    assert "holds tables that are not Optuna's" in line
    with sqlite3.connect(theirs) as connection:
        assert connection.execute("select name from sqlite_master where type='table'").fetchall() == [("users",)]
    assert "--study: empty" in refused(["run", spec, "--study", "", "--out", tmp_path / "o"], capsys)
    assert not (tmp_path / "o").exists()


def test_a_data_dir_under_a_home_that_is_not_there_is_one_line(write_spec, tmp_path, capsys):
    line = refused(["run", write_spec(tiny_spec()), "--data-dir", "~no-such-user-here/x", "--out", tmp_path / "o"], capsys)
    assert "--data-dir ~no-such-user-here/x: no home folder to read '~' as here" in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, says", [
    (["--overhead", "--device", "cuda"], "bench --device: shapes a timed step"),
    (["--report", "--pack", "3"], "bench --pack: shapes a timed step"),
    (["--spec", "search_spaces/quickstart.yaml", "--shape", "digits"], "bench --shape digits: sizes --model's step"),
])
def test_bench_refuses_options_its_case_would_not_use(capsys, argv, says):
    assert says in refused(["bench", *argv], capsys)


def test_resume_refuses_a_spec_changed_since_the_sweep_started(tmp_path, capsys):
    import hashlib

    from sweeper import provenance

    out = tmp_path / "r"
    out.mkdir()
    (out / "spec.yaml").write_text(yaml.safe_dump(tiny_spec()))
    provenance.start(out, "run", False, hashlib.sha256((out / "spec.yaml").read_bytes()).hexdigest())
    provenance.finish(out)
    (out / "spec.yaml").write_text(yaml.safe_dump(tiny_spec(epochs=50)))
    assert "spec.yaml: changed since the sweep started" in refused(["resume", out], capsys)
