"""rayjob.yaml, the KubeRay RayJob: its structure, and that it runs a spec this repository has. (No Kubernetes here.)"""
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "rayjob.yaml"


def test_the_rayjob_runs_a_spec_of_this_repository_on_a_head_and_a_worker_group():
    job = yaml.safe_load(MANIFEST.read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    command = shlex.split(job["spec"]["entrypoint"])
    assert command[:2] == ["sweeper", "run"] and "--address" in command
    # the image holds the repository at /home/ray/sweeper (the Dockerfile in the header)
    spec = Path(command[2])
    assert spec.is_relative_to("/home/ray/sweeper") and (ROOT / spec.relative_to("/home/ray/sweeper")).is_file()
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    workers = [c for group in cluster["workerGroupSpecs"] for c in group["template"]["spec"]["containers"]]
    assert len(head) == 1 and workers
    assert {c["image"] for c in head + workers} == {head[0]["image"]}  # one image everywhere
    # the header's Dockerfile starts from the Ray the cluster declares
    assert re.search(rf"FROM rayproject/ray:{re.escape(cluster['rayVersion'])}\b", MANIFEST.read_text())
