"""slurm.sbatch on a real one-node SLURM cluster on this machine: munged, slurmctld and slurmd of the test's own
(Debian's slurm-wlm), on 127.0.0.1 and free ports, so that nothing of a SLURM or Ray already here is touched.

.ci/run installs slurm-wlm and sets SWEEPER_REQUIRE_SLURM=1, so that there a missing SLURM fails instead of skipping.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "slurm.sbatch"
COMMANDS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "sinfo", "scancel")

pytestmark = pytest.mark.ray


def _unavailable(reason: str):
    if os.environ.get("SWEEPER_REQUIRE_SLURM"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else f"({path.name}: none)"


def _daemon(base: Path, name: str, *args: str, env: dict) -> subprocess.Popen:
    """In the foreground, so that the test holds its process and stops exactly that; stderr to base/name.stderr."""
    with open(base / f"{name}.stderr", "wb") as stderr:
        return subprocess.Popen([name, *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr)


@pytest.fixture(scope="module")
def slurm():
    """A SLURM cluster of one node, "localhost": the environment for its commands, its directory and CPU count."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])  # daemons are in sbin
    missing = [d for d in COMMANDS if shutil.which(d, path=path) is None]
    if missing:
        _unavailable(f"SLURM is not installed (no {', '.join(missing)}; apt-get install slurm-wlm)")
    if os.geteuid() != 0:
        _unavailable("slurmd must run as root to start jobs")
    # Short: Ray's socket paths under it must stay within the 107 bytes a Unix socket's name may have.
    base = Path(tempfile.mkdtemp(prefix="slurm-"))
    base.chmod(0o755)  # munged serves its socket only from a directory everyone may enter
    started: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "RAY_"))}  # no outer job or cluster
    env["SLURM_CONF"] = str(base / "slurm.conf")
    env["PATH"] = path
    try:
        # A munged of its own, with its own key and socket: no system key needed, and nothing else's stopped.
        subprocess.run(["mungekey", "--create", f"--keyfile={base}/munge.key"], env=env, check=True, capture_output=True)
        started.append(_daemon(base, "munged", "--foreground", f"--socket={base}/munge.sock",
                               f"--key-file={base}/munge.key", f"--pid-file={base}/munged.pid",
                               f"--log-file={base}/munged.log", f"--seed-file={base}/munged.seed", env=env))
        # The node as slurmd finds it, so that it is not drained for claiming more than it has.
        found = subprocess.run(["slurmd", "-C"], env=env, check=True, capture_output=True, text=True).stdout
        cpus = int(re.search(r"\bCPUs=(\d+)", found).group(1))
        memory = int(re.search(r"\bRealMemory=(\d+)", found).group(1))
        ctld_port, slurmd_port = _free_ports(2)
        (base / "state").mkdir()
        (base / "spool").mkdir()
        (base / "slurm.conf").write_text(f"""\
ClusterName=sweepertest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge.sock
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
# no cgroups: processes are tracked by parent, tasks are not bound to CPUs
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        deadline = time.monotonic() + 30
        while not (base / "munge.sock").exists():
            assert time.monotonic() < deadline, f"munged did not start:\n{_tail(base / 'munged.stderr')}"
            time.sleep(0.2)
        started.append(_daemon(base, "slurmctld", "-D", "-i", env=env))
        started.append(_daemon(base, "slurmd", "-D", "-N", "localhost", env=env))
        while (state := subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], env=env, check=False,
                                       capture_output=True, text=True).stdout.strip()) != "idle":
            assert time.monotonic() < deadline, (f"the node is {state or 'not up'}:\n{_tail(base / 'slurmctld.log')}\n"
                                                 f"{_tail(base / 'slurmd.log')}")
            time.sleep(0.5)
        yield env, base, cpus
    finally:
        if len(started) == 3:  # a job left by a failed test ends before its node does
            subprocess.run(["scancel", "--full", "--user", "root"], env=env, check=False, capture_output=True,
                           timeout=30)
        for process in reversed(started):  # slurmd, slurmctld, then munged, which they authenticate with
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(base, ignore_errors=True)


def _sbatch(slurm, name: str, *args: str, timeout: int = 300, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    base_env, base, cpus = slurm
    log = base / f"{name}.out"
    # This machine's Ray, if any, keeps its ports and its /tmp/ray: the job's Ray takes free ones.
    gcs, agent, dashboard = _free_ports(3)
    env = {**base_env, "RAY_PORT": str(gcs), "RAY_WAIT_S": "120",
           "RAY_START_ARGS": f"--temp-dir={base}/ray-{name} --include-dashboard=false --dashboard-port={dashboard} "
                             f"--dashboard-agent-listen-port={agent}", **env}
    try:
        done = subprocess.run(["sbatch", "--wait", "--job-name", name, f"--cpus-per-task={cpus}", f"--output={log}",
                               f"--chdir={base}", str(SCRIPT), *args], env=env, check=False, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", name], env=env, check=False, capture_output=True, timeout=30)
        raise AssertionError(f"the job ran past {timeout} s:\n{_tail(log)}") from None
    return done, log.read_text(errors="replace") if log.exists() else done.stderr


def test_the_batch_script_runs_a_smoke_sweep_to_completion(slurm):
    _, base, _ = slurm
    out = base / "out"
    done, log = _sbatch(slurm, "smoke", str(ROOT / "search_spaces" / "quickstart.yaml"), "--scale", "smoke",
                        SWEEPER_OUT=str(out))
    assert done.returncode == 0, f"sbatch: {done.stderr}\n{log[-4000:]}"
    assert "Ray head localhost at" in log and "results: " in log
    trials = pd.read_parquet(out / "trials")
    # quickstart at smoke scale: M2 at four alphas and the baseline, the first two seeds, two epochs
    assert sorted(trials["model"].unique()) == ["baseline", "m2"] and len(trials) == 5 * 2
    assert sorted(trials.loc[trials["model"] == "m2", "alpha"].unique()) == [0.1, 1, 10, 100]
    assert trials["status"].eq("completed").all() and trials["epochs"].eq(2).all()
    assert len(pd.read_parquet(out / "epochs")) == 5 * 2 * 2
    # the job's Ray is gone with the job: nothing is left running from its temporary directory
    leftover = subprocess.run(["pgrep", "-f", f"{base}/ray-smoke"], check=False, capture_output=True, text=True).stdout
    assert leftover == "", f"Ray processes outlived the job: {leftover}"


def test_a_missing_spec_fails_the_job_with_one_line(slurm):
    done, log = _sbatch(slurm, "nospec", "search_spaces/no-such-spec.yaml", timeout=120)
    assert done.returncode == 2  # sbatch --wait exits as the job did
    assert log.strip() == (f"slurm.sbatch: spec not found: search_spaces/no-such-spec.yaml (in {slurm[1]}); "
                           "give one: sbatch slurm.sbatch SPEC [sweeper run options]")
