import os

import pytest
import yaml

from sweeper.cli import quiet_libraries

quiet_libraries()  # as the command line sets them for its process

SLOW_FIXTURES = {"postgres_server", "postgres_url", "study_url"}  # a PostgreSQL server of the test's own
SLOW_FILES = {"test_slurm.py", "test_cluster.py", "test_kuberay.py"}  # a SLURM or a multi-node Ray of their own


def pytest_collection_modifyitems(config, items):
    """`slow`: the tests that start Ray, PostgreSQL or SLURM; `python -m pytest -m "not slow"` runs the rest in minutes."""
    for item in items:
        if item.get_closest_marker("ray") or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec (a dict, or YAML text) to a file; returns its path."""

    def write(content, name="spec.yaml"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of its own on 127.0.0.1, in a temporary directory: the base URL (no database).

    Debian's package puts the server programs in /usr/lib/postgresql/<version>/bin; .ci/run installs it
    and sets SWEEPER_REQUIRE_POSTGRES=1, so that there a missing server fails instead of skipping.
    """
    import glob
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if found is None:
        if os.environ.get("SWEEPER_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed")
    bin_dir = os.path.dirname(os.path.realpath(found))
    as_user: list[str] = []
    home = tempfile.mkdtemp(prefix="sweeper-pg-")
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        os.chown(home, pwd.getpwnam("postgres").pw_uid, -1)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(home, "data")

    def run(*command):
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
    run(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(home, "log"), "-w", "start",
        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c max_connections=200")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    """A new database on the test server, dropped afterwards: its URL."""
    import re

    import psycopg

    name = "t_" + re.sub(r"\W", "_", request.node.name).lower()[:50]
    admin = psycopg.connect(f"{postgres_server}/postgres", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(params=["postgresql", "sqlite", "journal"])
def study_url(request, tmp_path):
    """A URL for a shared study on each kind of storage sweeper takes."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    return str(tmp_path / "study.journal")
