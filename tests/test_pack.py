"""Packed grids through a real Ray: each configuration of a pack writes the rows it writes alone."""
import pandas as pd
import pytest

from conftest import tiny_spec
from sweeper import sweep
from sweeper.errors import SpecError
from sweeper.spec import parse, with_pack
from sweeper.trainable import packs
from sweeper import space

SEARCH = {"alpha": [0.5, 5.0], "lr": [1e-3, 3e-3]}


def test_grid_points_are_packed_by_architecture_in_grid_order():
    spec = parse(tiny_spec(models=["m2", "baseline"], search=SEARCH))
    grouped = packs(spec, space.grid_points(spec), 3)
    assert [[p["model"] for p in pack] for pack in grouped] == [["m2"] * 3, ["m2"], ["baseline"] * 2]
    assert sum(grouped, []) == space.grid_points(spec)


def test_pack_is_for_grids_without_a_scheduler():
    with pytest.raises(SpecError, match=r"pack: packs the points of a grid; sampler tpe asks for one configuration at a time"):
        parse(tiny_spec(sampler="tpe", trials=4, pack=4, search={"alpha": {"low": 0.1, "high": 1.0}}))
    with pytest.raises(SpecError, match=r"with --pack 0: pack: must be >= 1, got 0"):
        with_pack(parse(tiny_spec()), 0)
    with pytest.raises(SpecError, match=r"pack: a scheduler stops configurations one at a time"):
        parse(tiny_spec(pack=2, scheduler="asha"))


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
