import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from sweeper import results
from sweeper.errors import SweeperError
from helpers import HYPER, epoch_rows, trial_row


def test_rows_are_read_back_with_the_same_columns_for_every_model(tmp_path):
    results.write_configuration(tmp_path, "b", epoch_rows("b", "baseline", 0), [trial_row("b", "baseline", 0)], HYPER)
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=10.0)], HYPER)
    trials = results.read(tmp_path).sort_values("model")
    assert trials["alpha"].isna().tolist() == [True, False] and trials["alpha"].iloc[1] == 10.0
    assert trials["status"].tolist() == ["completed", "completed"]
    epochs = pd.read_parquet(tmp_path / "epochs")
    assert len(epochs) == 4 and epochs["recon"].isna().all()
    # the layout needs nothing of sweeper to read
    assert ds.dataset(tmp_path / "trials").to_table().num_rows == 2


def test_duckdb_reads_the_results_without_the_project(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    count = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/epochs/*.parquet')").fetchall()[0][0]
    assert count == 2


def test_rewriting_a_configuration_replaces_its_rows(tmp_path):
    for epochs in (1, 2, 3):  # a trial writes after every epoch; a retry writes again
        results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0, epochs), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    assert len(results.read(tmp_path)) == 1
    assert results.read(tmp_path, "epochs")["epoch"].tolist() == [1, 2, 3]


def test_a_failed_write_leaves_the_previous_file_and_no_partial_one(tmp_path):
    results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0), [trial_row("m", "m2", 0, alpha=1.0)], HYPER)
    bad = [trial_row("m", "m2", 0, alpha="not a number")]
    with pytest.raises((TypeError, ValueError, pa.ArrowException)):  # pyarrow refuses text in a float column
        results.write_configuration(tmp_path, "m", epoch_rows("m", "m2", 0, epochs=5), bad, HYPER)
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["m.parquet"]
    assert results.read(tmp_path)["alpha"].tolist() == [1.0]


def test_a_diverged_trial_keeps_its_nan_epoch(tmp_path):
    rows = epoch_rows("m", "m2", 0, epochs=1, loss=float("nan"))
    results.write_configuration(tmp_path, "m", rows, [trial_row("m", "m2", 0, status="diverged", alpha=1.0)], HYPER)
    assert results.read(tmp_path)["status"].tolist() == ["diverged"]
    assert results.read(tmp_path, "epochs")["loss"].isna().tolist() == [True]


def test_unknown_columns_and_statuses_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown status"):
        results.write_configuration(tmp_path, "m", [], [trial_row("m", "m2", 0, status="done", alpha=1.0)], HYPER)
    with pytest.raises(ValueError, match=r"columns not in the results schema: \['beta'\]"):
        results.write_configuration(tmp_path, "m", [], [trial_row("m", "m2", 0, beta=1.0)], HYPER)


def test_reading_a_missing_or_empty_directory_says_what_to_do(tmp_path):
    with pytest.raises(SweeperError, match=r"no such results directory; give the --out directory"):
        results.read(tmp_path / "nowhere")
    with pytest.raises(SweeperError, match=r"no trials results yet; run a sweep into it"):
        results.read(tmp_path)


def test_each_configuration_says_its_point_and_whether_it_finished(tmp_path):
    results.write_configuration(tmp_path, "killed", epoch_rows("killed", "m2", 0),
                                [trial_row("killed", "m2", 0, status="running", alpha=1.0, point='{"alpha": 1.0}'),
                                 trial_row("killed", "m2", 1, alpha=1.0, point='{"alpha": 1.0}')], HYPER)
    results.write_configuration(tmp_path, "done", epoch_rows("done", "m2", 0), [trial_row("done", "m2", 0, alpha=2.0, point='{"alpha": 2.0}')], HYPER)
    results.write_configuration(tmp_path, "failed", epoch_rows("failed", "m2", 0), [trial_row("failed", "m2", 0, status="failed", alpha=3.0)], HYPER)
    assert results.configurations(tmp_path) == {"killed": ('{"alpha": 1.0}', False), "done": ('{"alpha": 2.0}', True), "failed": (None, True)}
    results.remove_configuration(tmp_path, "killed")
    assert sorted(results.read(tmp_path, "epochs")["config_id"].unique()) == ["done", "failed"]
    assert results.configurations(tmp_path / "nowhere") == {}


def test_reading_some_columns_still_counts_every_trial(tmp_path):
    """Two seeds with the same numbers are two rows, even when the columns asked for cannot tell them apart."""
    rows = [trial_row("c", "m2", s, alpha=1.0) for s in range(2)]
    epochs = epoch_rows("c", "m2", 0) + epoch_rows("c", "m2", 1)
    results.write_configuration(tmp_path, "c", epochs, rows, HYPER)
    assert len(results.read(tmp_path, "epochs", columns=["config_id", "epoch", "val_acc"])) == 4
    assert list(results.read(tmp_path, "epochs", columns=["config_id", "epoch"]).columns) == ["config_id", "epoch"]
    assert len(results.read([tmp_path, tmp_path], "trials", columns=["test_acc"])) == 2


# ---------------------------------------------------------------- epoch rows written as parts, then one file


def epoch_row(config_id, seed, epoch, wall_s=0.1):
    return {"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": "m2", "seed": seed, "epoch": epoch,
            "loss": 1.0 / epoch, "ce": 0.5, "val_acc": 0.8, "test_acc": 0.8, "wall_s": wall_s}


def train(out, last, first=1, history=(), seeds=(1, 0), ends_at=None, wall_s=0.1, config_id="c"):
    """Write as the trainable does after each of epochs first..last: every row so far (seed by seed, as
    trainable.rows() lists them) and the epoch just trained; the seeds complete at `ends_at`. The rows so far."""
    history = list(history)
    for epoch in range(first, last + 1):
        history = [r for s in seeds for r in [*(h for h in history if h["seed"] == s), epoch_row(config_id, s, epoch, wall_s)]]
        status = "completed" if epoch == ends_at else "running"
        trials = [trial_row(config_id, "m2", s, status=status, alpha=1.0) for s in seeds]
        results.write_configuration(out, config_id, history, trials, HYPER, epoch=epoch)
    return history


def until(history, epoch):
    """The rows a checkpoint after `epoch` holds."""
    return [r for r in history if r["epoch"] <= epoch]


def whole(out, history, config_id="c", status="completed"):
    """The same rows as today's layout has them: one file, written whole."""
    seeds = dict.fromkeys(r["seed"] for r in history)
    results.write_configuration(out, config_id, history, [trial_row(config_id, "m2", s, status=status, alpha=1.0) for s in seeds], HYPER)


def visible(directory):
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def files(directory):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()}


def bytes_written(before, after):
    return sum(size for name, (inode, mtime, size) in after.items() if before.get(name, (None, None))[:2] != (inode, mtime))


def earlier(directory, pattern, seconds=3600):
    """Files of an earlier attempt: modified an hour ago."""
    for p in directory.glob(pattern):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns - seconds * 10**9))


def test_the_bytes_of_a_write_do_not_grow_with_the_epoch(tmp_path):
    epochs_dir, history, written = tmp_path / "epochs", [], []
    for epoch in range(1, 301):  # three rollups of 100 epochs
        before = files(epochs_dir) if epochs_dir.exists() else {}
        history = train(tmp_path, epoch, first=epoch, history=history)
        written.append(bytes_written(before, files(epochs_dir)))
    assert written[249] <= 1.1 * written[1]  # epoch 250's write is epoch 2's size, not 125 times it
    per_rollup = [sum(written[i:i + results.ROLLUP_EPOCHS]) for i in (0, 100, 200)]
    assert max(per_rollup) <= 1.1 * min(per_rollup)  # so bytes grow linearly with epochs
    assert len(visible(epochs_dir)) == 3  # three rolled-up parts, no one-epoch part left behind
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), epochs_of(history, tmp_path / "whole"))


def epochs_of(history, out):
    whole(out, history)
    return results.read(out, "epochs")


def test_parts_read_as_the_whole_file_of_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path / "parts", 7)
    assert visible(tmp_path / "parts" / "epochs") == ["c~000001-000003.parquet", "c~000004-000006.parquet", "c~000007-000007.parquet"]
    parts = results.read(tmp_path / "parts", "epochs")
    pd.testing.assert_frame_equal(parts, epochs_of(history, tmp_path / "whole"))
    assert parts["trial_id"].tolist()[:2] == ["c-seed1", "c-seed1"]  # seeds as written, each seed's epochs in order
    assert len(pd.read_parquet(tmp_path / "parts" / "epochs")) == 14  # and plain readers see every row


def test_a_rerun_of_epochs_leaves_one_copy_of_each_row(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 8, wall_s=1.0)  # a first attempt got to epoch 8 ...
    earlier(tmp_path / "epochs", "*.parquet")
    history = train(tmp_path, 5, first=5, history=until(history, 4), wall_s=2.0)  # ... its retry resumed after epoch 4
    epochs = results.read(tmp_path, "epochs")
    assert not epochs.duplicated(["trial_id", "epoch"]).any() and len(epochs) == 2 * 8
    assert epochs.set_index(["trial_id", "epoch"])["wall_s"].xs("c-seed0").tolist() == [1.0] * 4 + [2.0] + [1.0] * 3
    train(tmp_path, 6, first=6, history=history, wall_s=2.0, ends_at=6)  # the retry ends sooner: the first attempt's epochs 7, 8 go
    epochs = results.read(tmp_path, "epochs")
    assert visible(tmp_path / "epochs") == ["c.parquet"]
    assert epochs.groupby("trial_id")["epoch"].apply(list).tolist() == [[1, 2, 3, 4, 5, 6]] * 2
    assert epochs["wall_s"].tolist() == ([1.0] * 4 + [2.0] * 2) * 2


def test_a_configuration_that_ends_is_one_file_with_every_row_once(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 8, ends_at=8)
    assert visible(tmp_path / "epochs") == ["c.parquet"]
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), epochs_of(history, tmp_path / "whole"))
    assert (tmp_path / "epochs" / "c.parquet").read_bytes() == (tmp_path / "whole" / "epochs" / "c.parquet").read_bytes()


def test_a_reader_meeting_the_whole_file_and_its_parts_takes_each_row_once(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 4)
    monkeypatch.setattr(results, "_delete_if_present", lambda fs, path: None)  # the writer died before removing the parts
    train(tmp_path, 5, first=5, history=history, ends_at=5)
    assert visible(tmp_path / "epochs") == ["c.parquet", "c~000001-000003.parquet", "c~000004-000004.parquet"]
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), results.read(tmp_path, "epochs").drop_duplicates())
    assert len(results.read(tmp_path, "epochs")) == 10


def test_a_reader_whose_listed_parts_are_replaced_as_it_reads_lists_again(tmp_path, monkeypatch):
    """A sweep writing beside the reader (a pack judged while another pack's configuration ends): the parts it
    listed are gone, replaced by the whole file, and every row is read from that."""
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 5)
    real, calls = results._file, []

    def ends_meanwhile(fs, path, *args):
        calls.append(path)
        if len(calls) == 1:  # the configuration ends between the reader's listing and its reads
            train(tmp_path, 6, first=6, history=history, ends_at=6)
        return real(fs, path, *args)

    monkeypatch.setattr(results, "_file", ends_meanwhile)
    epochs = results.read(tmp_path, "epochs")
    assert len(epochs) == 12 and not epochs.duplicated(["trial_id", "epoch"]).any()
    assert calls[-1].endswith("c.parquet")  # read again, from the whole file


def as_remote(monkeypatch) -> None:
    """Results read through a filesystem that is not pyarrow's LocalFileSystem, as from an object store."""
    real = results.filesystem

    def remote(location):
        fs, root = real(location)
        return (pafs.SubTreeFileSystem("/", fs), root.lstrip("/")) if isinstance(fs, pafs.LocalFileSystem) else (fs, root)

    monkeypatch.setattr(results, "filesystem", remote)


@pytest.mark.parametrize("where", ["local", "object store"])
def test_a_file_replaced_between_a_readers_footer_and_its_rows_is_read_whole_as_one_version(tmp_path, monkeypatch, where):
    """A running sweep rewrites a configuration's trials file (a seed's row added) while a reader (sweeper status,
    a stopping rule) reads it: the reader gets one version's rows, all of them, never one version's footer with the
    next one's row count."""
    train(tmp_path, 2, seeds=(0,))
    one_seed = [trial_row("c", "m2", 0, status="running", alpha=1.0)]
    two_seeds = one_seed + [trial_row("c", "m2", 1, status="running", alpha=1.0)]
    results.write_configuration(tmp_path, "c", [], one_seed, HYPER, epoch=2)
    if where == "object store":
        as_remote(monkeypatch)
    real, replaced = results.pq.ParquetFile, []

    def replaced_once_open(source, *args, **kwargs):  # the sweep's write lands once the reader has the file open
        opened = real(source, *args, **kwargs)
        if not replaced:
            replaced.append(source)
            results.write_configuration(tmp_path, "c", [], two_seeds, HYPER, epoch=2)
        return opened

    monkeypatch.setattr(results.pq, "ParquetFile", replaced_once_open)
    trials = results.read(tmp_path, "trials")
    assert replaced and list(trials["seed"]) == [0]  # the version it opened, whole
    assert isinstance(replaced[0], pa.BufferReader) == (where == "object store")  # an object store's: in one request
    assert list(results.read(tmp_path, "trials")["seed"]) == [0, 1]  # the next read: the new version


class _ReplacedBetweenRequests:
    """An object store (any filesystem but pyarrow's local one) where a sweep replaces a file between the two
    requests of a read: the first open learns the old version's size, and its read fetches that many bytes of
    the newer, longer version."""

    def __init__(self, fs: pafs.FileSystem, newer: bytes):
        self.fs, self.newer, self.opened = fs, newer, 0

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def open_input_file(self, path):
        self.opened += 1
        if self.opened == 1:
            return pa.BufferReader(self.newer[:self.fs.get_file_info(path).size])
        return self.fs.open_input_file(path)


def test_an_object_replaced_between_its_size_and_its_bytes_is_read_again(tmp_path, monkeypatch):
    """An object store's read is two requests, the size then the bytes: a version replaced in between comes back
    as the new version's first bytes, without a footer. It is read again, whole, not reported as unreadable."""
    one_seed = [trial_row("c", "m2", 0, status="running", alpha=1.0)]
    results.write_configuration(tmp_path / "then", "c", [], one_seed, HYPER, epoch=1)
    results.write_configuration(tmp_path / "now", "c", [], one_seed + [trial_row("c", "m2", 1, status="running", alpha=1.0)],
                                HYPER, epoch=1)
    newer = (tmp_path / "now/trials/c.parquet").read_bytes()
    assert len(newer) > (tmp_path / "then/trials/c.parquet").stat().st_size
    store = []

    def replaced(location):
        store.append(_ReplacedBetweenRequests(pafs.SubTreeFileSystem("/", pafs.LocalFileSystem()), newer))
        return store[-1], str(Path(location).resolve()).lstrip("/")

    monkeypatch.setattr(results, "filesystem", replaced)
    assert list(results.read(tmp_path / "then", "trials")["seed"]) == [0]  # the version there at the second read, whole
    assert store[-1].opened == 2


def test_an_unreadable_object_is_read_a_bounded_number_of_times_then_reported_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials/c.parquet").write_bytes(b"not parquet at all")
    real = results.filesystem
    opened = []

    class Counted:  # a remote filesystem whose opens are counted
        def __init__(self, fs):
            self.fs = fs

        def __getattr__(self, name):
            return getattr(self.fs, name)

        def open_input_file(self, path):
            opened.append(path)
            return self.fs.open_input_file(path)

    def remote(location):
        fs, root = real(location)
        return Counted(pafs.SubTreeFileSystem("/", fs)), root.lstrip("/")

    monkeypatch.setattr(results, "filesystem", remote)
    monkeypatch.setattr(results.time, "sleep", lambda s: None)
    with pytest.raises(SweeperError, match=r"trials/c.parquet: cannot read these results .*was it written by sweeper\?"):
        results.read(tmp_path, "trials")
    assert len(opened) == results.OBJECT_READS  # read again a bounded number of times, then reported


@pytest.mark.parametrize("reader", ["configuration_rows", "configurations"])
def test_the_one_file_readers_read_a_trials_file_replaced_mid_read_whole(tmp_path, monkeypatch, reader):
    """What resume and the stopping rules read (a configuration's rows; every configuration's point and state) is one
    version of a file the sweep replaces as it is read: pyarrow's read_table opens a file twice, and could meet one
    version's footer with the next one's rows."""
    one_seed = [trial_row("c", "m2", 0, status="running", alpha=1.0)]
    results.write_configuration(tmp_path, "c", [], one_seed, HYPER, epoch=1)
    real, replaced = results.pq.ParquetFile, []

    def replaced_once_open(source, *args, **kwargs):
        opened = real(source, *args, **kwargs)
        if not replaced:
            replaced.append(True)
            done = [trial_row("c", "m2", s, status="completed", alpha=1.0) for s in (0, 1)]
            results.write_configuration(tmp_path, "c", [], done, HYPER, epoch=1)
        return opened

    monkeypatch.setattr(results.pq, "ParquetFile", replaced_once_open)
    if reader == "configuration_rows":
        assert [(r["seed"], r["status"]) for r in results.configuration_rows(tmp_path, "c")] == [(0, "running")]
        assert [r["status"] for r in results.configuration_rows(tmp_path, "c")] == ["completed", "completed"]
    else:
        assert [finished for _, finished in results.configurations(tmp_path).values()] == [False]
        assert [finished for _, finished in results.configurations(tmp_path).values()] == [True]
    assert replaced


def test_compacting_a_part_written_before_a_column_existed_keeps_that_column_null(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    train(tmp_path, 2)  # parts 1 and 2
    older = tmp_path / "epochs" / "c~000001-000001.parquet"
    pq.write_table(pq.read_table(older).drop_columns(["ce"]), older)  # as a sweep wrote it before the column existed
    results.mark_stopped(tmp_path, "c")
    epochs = results.read(tmp_path, "epochs")
    assert visible(tmp_path / "epochs") == ["c.parquet"] and len(epochs) == 4
    assert epochs.set_index(["seed", "epoch"])["ce"].isna().to_dict() == {
        (1, 1): True, (1, 2): False, (0, 1): True, (0, 2): False}


@pytest.mark.parametrize("where", ["local", "object store"])
def test_parts_rolled_up_while_a_reader_reads_them_are_read_again_from_a_new_listing(tmp_path, monkeypatch, where):
    """The sweep rolls a configuration's one-epoch parts up into one part while a reader is between them: the part
    it had open is read whole, the next one is gone, and the reader lists again and takes each row once."""
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 5)  # parts 1-3, 4 and 5
    if where == "object store":
        as_remote(monkeypatch)
    real, opened = results.pq.ParquetFile, []

    def rolled_up_after_the_first_part(source, *args, **kwargs):
        opened.append(source)
        if len(opened) == 2:  # part 4 is open: epoch 6 rolls parts 4, 5 and 6 up and removes parts 4 and 5
            train(tmp_path, 6, first=6, history=history)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(results.pq, "ParquetFile", rolled_up_after_the_first_part)
    epochs = results.read(tmp_path, "epochs")
    assert visible(tmp_path / "epochs") == ["c~000001-000003.parquet", "c~000004-000006.parquet"]
    assert len(epochs) == 12 and not epochs.duplicated(["trial_id", "epoch"]).any() and len(opened) > 3


def test_a_reader_whose_files_keep_vanishing_says_so(tmp_path, monkeypatch):
    train(tmp_path, 2)

    def gone(source, *args, **kwargs):
        raise FileNotFoundError("gone")

    monkeypatch.setattr(results.pq, "ParquetFile", gone)
    monkeypatch.setattr(results.time, "sleep", lambda s: None)
    with pytest.raises(SweeperError, match=r"epochs: files vanished as they were read, 20 times .* is a sweep writing there"):
        results.read(tmp_path, "epochs")


def test_a_stopped_configuration_is_compacted_to_one_file(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 5)
    results.mark_stopped(tmp_path, "c")
    assert visible(tmp_path / "epochs") == ["c.parquet"] and results.read(tmp_path)["status"].eq("stopped").all()
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), epochs_of(history, tmp_path / "whole"))


def test_a_failure_writes_the_rows_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    history = train(tmp_path, 4)
    failed = [trial_row("c", "m2", s, status="failed", alpha=1.0) for s in (1, 0)]
    results.write_configuration(tmp_path, "c", history, failed, HYPER, epoch=5)  # it failed training epoch 5
    assert visible(tmp_path / "epochs") == ["c.parquet"] and len(results.read(tmp_path, "epochs")) == 8


def test_a_pack_member_that_ended_is_not_written_again(tmp_path):
    history = train(tmp_path, 3, seeds=(0,))
    diverged = [trial_row("c", "m2", 0, status="diverged", alpha=1.0)]
    results.write_configuration(tmp_path, "c", history, diverged, HYPER, epoch=3)
    ended = files(tmp_path / "epochs")
    for epoch in (4, 5):  # the pack trains on; this member's rows are those of epoch 3
        results.write_configuration(tmp_path, "c", history, diverged, HYPER, epoch=epoch)
    assert files(tmp_path / "epochs") == ended and list(ended) == ["c.parquet"]


def test_a_reader_never_sees_a_partial_part(tmp_path, monkeypatch):
    history = train(tmp_path, 2)
    (tmp_path / "epochs" / ".c~000003-000003.parquet.0123abcd.tmp").write_bytes(b"PAR1 half a file")  # a writer killed mid-write
    real = results.pq.write_table

    def dies_half_way(table, where, **kwargs):
        real(table.slice(0, 1), where, **kwargs)
        raise OSError("no space left on device")

    monkeypatch.setattr(results.pq, "write_table", dies_half_way)
    with pytest.raises(OSError, match="no space"):
        train(tmp_path, 3, first=3, history=history)
    assert visible(tmp_path / "epochs") == ["c~000001-000001.parquet", "c~000002-000002.parquet"]
    assert results.read(tmp_path, "epochs")["epoch"].tolist() == [1, 2, 1, 2]
    assert len(pd.read_parquet(tmp_path / "epochs")) == 4


def test_results_of_the_old_layout_read_as_before_and_carry_on(tmp_path):
    history = train(tmp_path / "new", 3, ends_at=3)
    whole(tmp_path, until(history, 2), status="running")  # written by the old code: one file, killed after epoch 2
    earlier(tmp_path / "epochs", "c.parquet")
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), epochs_of(until(history, 2), tmp_path / "two"))
    train(tmp_path, 2, first=2, history=until(history, 1))  # the new code resumes after epoch 1: a part beside the old file
    assert len(results.read(tmp_path, "epochs")) == 4 and visible(tmp_path / "epochs") == ["c.parquet", "c~000002-000002.parquet"]
    train(tmp_path, 3, first=3, history=until(history, 2), ends_at=3)
    pd.testing.assert_frame_equal(results.read(tmp_path, "epochs"), results.read(tmp_path / "new", "epochs"))
    assert visible(tmp_path / "epochs") == ["c.parquet"]


def test_removing_a_configuration_removes_its_parts(tmp_path):
    train(tmp_path, 2)
    train(tmp_path, 2, config_id="c2")
    results.remove_configuration(tmp_path, "c")
    assert visible(tmp_path / "epochs") == ["c2~000001-000001.parquet", "c2~000002-000002.parquet"]


def test_the_epoch_rows_have_a_column_for_every_loss_part_any_model_returns():
    from sweeper import models

    columns = {name for name, _ in results.EPOCH_FIELDS}
    assert {part for cls in models.MODELS.values() for part in cls.loss_parts} <= columns


@pytest.mark.parametrize("reader", ["configurations", "configuration_rows", "configuration_epoch_rows", "mark_stopped"])
def test_a_fifo_in_a_results_directory_is_never_opened(tmp_path, monkeypatch, reader):
    """A pipe named like a results file: opening it would wait for a writer for ever. Each reader of one file refuses
    it in one line, or passes it by where a file it cannot read now is passed by (what the stopping rules read)."""
    import threading

    monkeypatch.setattr(results, "ROLLUP_EPOCHS", 3)
    train(tmp_path, 2)
    fifo = tmp_path / ("epochs/c~000002-000002.parquet" if reader == "configuration_epoch_rows" else "trials/c.parquet")
    if reader == "configuration_epoch_rows":  # it lists regular files only: the pipe takes the part's place just after
        real_recency = results._recency

        def swapped_after_listing(info):
            if fifo.is_file():
                fifo.unlink()
                os.mkfifo(fifo)
            return real_recency(info)

        monkeypatch.setattr(results, "_recency", swapped_after_listing)
    else:
        fifo.unlink()
        os.mkfifo(fifo)
    returned, unblocked = threading.Event(), []

    def unblock():  # a reader blocked on the pipe gets an empty one after 5 s, and the test fails instead of hanging
        if not returned.wait(5):
            unblocked.append(True)
            with open(fifo, "wb"):
                pass

    threading.Thread(target=unblock, daemon=True).start()
    try:
        if reader == "configurations":
            with pytest.raises(SweeperError, match=r"trials/c.parquet: is a pipe, socket or device"):
                results.configurations(tmp_path)
        elif reader == "configuration_rows":
            assert results.configuration_rows(tmp_path, "c") == []
        elif reader == "configuration_epoch_rows":
            assert [r["epoch"] for r in results.configuration_epoch_rows(tmp_path, "c", range(1, 3))] == [1, 1]
        else:
            with pytest.raises(SweeperError, match=r"is a pipe, socket or device, not a file sweeper wrote"):
                results.mark_stopped(tmp_path, "c")
    finally:
        returned.set()
    assert not unblocked  # nothing waited on the pipe
