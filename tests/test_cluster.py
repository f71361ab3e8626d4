"""A sweep on a cluster of three Ray nodes on this machine, losing a worker node mid-sweep."""
import threading
import time

import pandas as pd
import pytest

from helpers import tiny_spec
from sweeper import sweep
from sweeper.spec import parse

pytestmark = pytest.mark.ray


def test_losing_a_worker_node_mid_sweep_still_runs_every_configuration_exactly_once(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the head runs the driver only
    cluster.add_node(num_cpus=1)
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    out = tmp_path / "out"
    removed = threading.Event()
    removed_while_running = []

    def remove_when_under_way():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not removed.is_set():
            files = list((out / "trials").glob("*.parquet")) if (out / "trials").is_dir() else []
            frames = [pd.read_parquet(f) for f in files]
            # configurations of two packs (Tune trials, one per node) under way, each past its first checkpoint:
            # one of them is on the doomed node (two of one pack would not say the other pack had a checkpoint)
            under_way = [(f, t) for f, t in zip(files, frames) if t["status"].eq("running").all() and t["epochs"].ge(2).all()]
            running = [f for f, _ in under_way]
            packs = {t["config_id"].iloc[0].rsplit("-", 1)[0] for _, t in under_way}  # config ids: <trial id>-<position>
            if len(packs) >= 2:
                cluster.remove_node(doomed)
                removed_while_running.extend(running)
                removed.set()
            time.sleep(0.2)

    remover = threading.Thread(target=remove_when_under_way, daemon=True)
    remover.start()
    spec = parse(tiny_spec(models=["m2"], seeds=[0, 1], epochs=40, retries=3, search={"alpha": [0.1, 1.0, 10.0, 100.0]},
                           batch={"labelled": 25, "unlabelled": 100}, fixed={"hidden": 128, "latent": 8}))
    try:
        outcome = sweep.run(spec, out, quiet=True)
    finally:
        removed.set()
        ray.shutdown()
        cluster.shutdown()
    assert outcome.errored == 0 and removed.is_set()
    assert removed_while_running  # the lost node took a trial with it ...
    trials = pd.read_parquet(out / "trials")
    assert sorted(zip(trials["alpha"], trials["seed"])) == [(a, s) for a in (0.1, 1.0, 10.0, 100.0) for s in (0, 1)]
    assert trials["status"].eq("completed").all() and trials["epochs"].eq(40).all()
    assert trials["restarts"].gt(0).any()  # ... and its configuration was retried from a checkpoint
    epochs = pd.read_parquet(out / "epochs")
    assert len(epochs) == 4 * 2 * 40 and not epochs.duplicated(["trial_id", "epoch"]).any()
