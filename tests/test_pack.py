"""Packed grids through a real Ray: each configuration of a pack writes the rows it writes alone."""
import os

import pandas as pd
import pytest

from helpers import tiny_spec
from sweeper import allocator, sweep
from sweeper.spec import parse, with_pack
from sweeper.packing import auto_packs, pack_count, pack_limit, packs
from sweeper import space

SEARCH = {"alpha": [0.5, 5.0], "lr": [1e-3, 3e-3]}


def test_grid_points_are_packed_by_architecture_in_grid_order():
    spec = parse(tiny_spec(models=["m2", "baseline"], search=SEARCH))
    grouped = packs(spec, space.grid_points(spec), 3)
    assert [[p["model"] for p in pack] for pack in grouped] == [["m2"] * 3, ["m2"], ["baseline"] * 2]
    assert sum(grouped, []) == space.grid_points(spec)


def test_auto_packs_with_or_without_a_scheduler_grid_or_sampled():
    """A scheduler judges each member of a pack on its own (stopping.py): a spec with one packs as any other does."""
    assert pack_limit(parse(tiny_spec(search=SEARCH))) is None
    assert pack_limit(parse(tiny_spec(search=SEARCH, epochs=3, scheduler={"type": "median", "grace_period": 2}))) is None
    assert pack_limit(parse(tiny_spec(search=SEARCH, scheduler="asha", pack=4))) == 4
    sampled = dict(sampler="tpe", trials=4, scheduler="asha", search={"alpha": {"low": 0.1, "high": 1.0}})
    assert pack_limit(parse(tiny_spec(**sampled))) is None and pack_limit(parse(tiny_spec(**sampled, pack=3))) == 3


@pytest.mark.parametrize("configurations, slots, at_most, sizes", [
    (48, 2, None, [24, 24]),  # one pack per core, never one pack on one core while the other idles
    (48, 2, 16, [12] * 4),  # at most 16, in whole waves of two
    (48, 2, 8, [8] * 6),
    (100, 16, None, [7] * 4 + [6] * 12),  # spread evenly
    (5, 16, None, [1] * 5),
    (3, 2, None, [2, 1]),
])
def test_packs_fill_every_slot_and_are_even(configurations, slots, at_most, sizes):
    from sweeper.packing import equal_packs

    assert [len(p) for p in equal_packs(list(range(configurations)), pack_count(configurations, slots, at_most))] == sizes


def test_auto_packs_give_spare_slots_to_the_packs_as_threads():
    spec = parse(tiny_spec(models=["m2"], search=SEARCH))  # 4 configurations
    chosen, threads = auto_packs(spec, space.grid_points(spec), slots=16)
    assert [len(p) for p in chosen] == [1, 1, 1, 1] and threads == 4
    chosen, threads = auto_packs(spec, space.grid_points(spec), slots=2)
    assert [len(p) for p in chosen] == [2, 2] and threads == 1
    mixed = parse(tiny_spec(models=["m2", "baseline"], search=SEARCH))  # 4 of M2, 2 of the baseline: one core each
    chosen, threads = auto_packs(mixed, space.grid_points(mixed), slots=2)
    assert [[p["model"] for p in pack] for pack in chosen] == [["m2"] * 4, ["baseline"] * 2] and threads == 1
    assert sum(chosen, []) == space.grid_points(mixed)


def test_auto_packs_hold_no_more_than_a_slots_share_of_the_memory_ray_reports(monkeypatch):
    from sweeper import footprint, sweep

    spec = parse(tiny_spec(models=["m2"], search={"alpha": [round(0.1 * i, 1) for i in range(1, 41)]}))  # 40 configurations
    per_configuration = footprint.memory_needed(space.configuration(spec, space.grid_points(spec)[0]), members=len(spec.seeds))
    monkeypatch.setattr(sweep.ray, "cluster_resources", lambda: {"CPU": 2.0, "memory": 2 * 5.5 * per_configuration})
    grouped, _ = sweep._packs(spec)
    assert [len(p) for p in grouped] == [5] * 8  # whole waves of two packs, each within its slot's half
    monkeypatch.setattr(sweep.ray, "cluster_resources", lambda: {"CPU": 2.0, "memory": 1e15})
    grouped, _ = sweep._packs(spec)
    assert [len(p) for p in grouped] == [20, 20]
    few = parse(tiny_spec(models=["m2"], search={"alpha": [0.1, 1.0]}))  # fewer configurations than slots: the rest as threads
    monkeypatch.setattr(sweep.ray, "cluster_resources", lambda: {"CPU": 8.0, "memory": 1e15})
    assert sweep._packs(few)[1].resources.cpu == 4


@pytest.mark.ray
def test_a_packed_grid_writes_every_configuration_rows_as_the_unpacked_grid_does(tmp_path):
    spec = parse(tiny_spec(models=["m2", "baseline"], search=SEARCH, epochs=3))
    alone = sweep.run(spec, tmp_path / "alone", quiet=True, num_cpus=2)
    packed = sweep.run(with_pack(spec, 3), tmp_path / "packed", quiet=True, num_cpus=2)
    assert alone.errored == packed.errored == 0 and alone.configurations == packed.configurations == 6
    keys = ["model", "alpha", "lr", "seed"]
    a = pd.read_parquet(tmp_path / "alone" / "trials").sort_values(keys, na_position="first").reset_index(drop=True)
    p = pd.read_parquet(tmp_path / "packed" / "trials").sort_values(keys, na_position="first").reset_index(drop=True)
    assert len(p) == 6 * 2 and p["status"].eq("completed").all() and p["trial_id"].is_unique
    assert p["config_id"].nunique() == 6 and p["config_id"].str.fullmatch(r"[0-9a-f]+_\d+-\d").all()
    pd.testing.assert_frame_equal(a[keys + ["epochs", "best_epoch"]], p[keys + ["epochs", "best_epoch"]])
    assert (a["best_val_acc"] - p["best_val_acc"]).abs().max() <= 1.5 / 360  # an argmax may flip on a near tie
    epochs = pd.read_parquet(tmp_path / "packed" / "epochs")
    assert len(epochs) == 6 * 2 * 3 and not epochs.duplicated(["trial_id", "epoch"]).any()


MMAPPED_CHECK = """
import ctypes
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
before = libc.mallinfo2().hblkhd  # bytes malloc holds in mmapped blocks
block = libc.malloc(64 << 20)
mmapped = libc.mallinfo2().hblkhd > before
libc.free(block)
"""


def malloc_at_work(marks: str, check: str):
    """A trainable that writes, from Tune's training thread, the GLIBC_TUNABLES it sees and whether
    `check` found a 64 MB block to be a fresh mmap, then trains as sweeper's does. Holds everything it
    needs, so Ray ships it by value."""

    def run(config, setup, data):
        import os

        from sweeper.trainable import train_configuration

        scope: dict = {}
        exec(check, scope)
        with open(os.path.join(marks, f"{os.getpid()}.txt"), "w") as f:
            f.write(f"{os.environ.get('GLIBC_TUNABLES')} mmapped={scope['mmapped']}")
        train_configuration(config, setup, data)

    return run


def has_mallinfo2() -> bool:
    import ctypes

    return allocator.on_glibc() and hasattr(ctypes.CDLL(None), "mallinfo2")  # glibc 2.33 and later


OURS = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"


@pytest.mark.ray
@pytest.mark.skipif(not has_mallinfo2(), reason="the tunables are glibc's; the check reads mallinfo2")
def test_trials_start_with_malloc_keeping_freed_memory(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)  # a user's would leave malloc to it
    check = lambda prelude="": subprocess.run([sys.executable, "-c", prelude + MMAPPED_CHECK + "print(mmapped)"],  # noqa: E731
                                              capture_output=True, text=True, env=os.environ).stdout.split()
    # the check tells the two apart: with glibc's defaults a 64 MB block is a fresh mmap
    assert check() == ["True"]
    keep = "from sweeper import allocator\nprint(allocator.keep_freed_memory())\n"  # what `sweeper bench` does
    assert check(keep) == ["True", "False"]
    monkeypatch.setenv("GLIBC_TUNABLES", "")  # the user's own, empty: glibc's defaults, and bench leaves them
    assert check(keep) == ["False", "True"]
    monkeypatch.delenv("GLIBC_TUNABLES")

    marks = tmp_path / "marks"
    marks.mkdir()
    spec = parse(tiny_spec(models=["m2"], search=SEARCH))
    outcome = sweep.run(spec, tmp_path / "out", quiet=True, num_cpus=2, trainable=malloc_at_work(str(marks), MMAPPED_CHECK))
    assert outcome.errored == 0
    assert {p.read_text() for p in marks.iterdir()} == {f"{OURS} mmapped=False"}

    # `GLIBC_TUNABLES= sweeper run`: the local Ray's workers inherit the user's (glibc's defaults)
    monkeypatch.setenv("GLIBC_TUNABLES", "")
    for mark in marks.iterdir():
        mark.unlink()
    outcome = sweep.run(spec, tmp_path / "defaults", quiet=True, num_cpus=2, trainable=malloc_at_work(str(marks), MMAPPED_CHECK))
    assert outcome.errored == 0
    assert {p.read_text() for p in marks.iterdir()} == {" mmapped=True"}


def test_the_allocator_settings_give_way_to_the_users():
    assert allocator.TUNABLES == OURS and allocator.worker_env({}) == {"GLIBC_TUNABLES": OURS}
    # the user's own (or a Ray job's) is in the driver's environment: local workers inherit it, a job's
    # runtime_env carries it, and sending ours beside it would clash in Ray's merge of the two
    assert allocator.worker_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}) == {}
    assert allocator.worker_env({"GLIBC_TUNABLES": ""}) == {}
