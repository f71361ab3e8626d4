"""Where a sweep's numbers came from: which code, which libraries, which machine, when.

Each `sweeper run` and `sweeper resume` adds one entry to DIR/provenance.json (rewritten whole,
atomically); a report shows every entry. Reading it needs neither torch nor Ray.
"""
from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import results

FILE = "provenance.json"
LIBRARIES = ("torch", "ray", "optuna", "numpy", "pandas", "pyarrow")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    """A git command's output in the checkout sweeper runs from, or None (no checkout, no git)."""
    try:
        done = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _device(gpu: bool) -> dict:
    import torch

    if gpu and torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"device": f"cpu: {cpu}", "cuda": torch.version.cuda}


def collect(command: str, gpu: bool) -> dict:
    """This process's provenance, with the start time; `end` is filled in by finish()."""
    commit = _git("rev-parse", "HEAD")
    changed = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "command": command,
        "sweeper": _version("sweeper"),
        "git_commit": commit,
        "uncommitted_changes": bool(changed) if commit else None,
        "python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
        "host": socket.gethostname(),
        **_device(gpu),
        "start": _now(),
        "end": None,
    }


def read(location: str | Path) -> list[dict]:
    """Every entry of a results location (none for results written before provenance was recorded)."""
    try:
        text = results.read_bytes(location, FILE)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise results.SweeperError(f"{location}/{FILE}: cannot read it ({e.strerror or type(e).__name__})") from None
    try:
        entries = json.loads(text.decode())
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not all(_well_formed(e) for e in entries):
        raise results.SweeperError(f"{location}/{FILE}: not the provenance sweeper writes (a list of runs, each with its "
                                   "command, versions and ISO start and end times); restore it from a copy, or remove it")
    return entries


def _well_formed(entry) -> bool:
    if not isinstance(entry, dict) or not all(isinstance(v, (str, bool, type(None))) for v in entry.values()):
        return False
    try:
        for key in ("start", "end"):
            if entry.get(key) is not None and datetime.fromisoformat(entry[key]).tzinfo is None:
                return False  # sweeper writes UTC times, which progress subtracts
    except ValueError:
        return False
    return isinstance(entry.get("start"), str)


def start(location: str | Path, command: str, gpu: bool, spec_sha256: str | None = None) -> None:
    """A new entry for this driver; `spec_sha256`: the digest of the spec.yaml it runs, which a resume checks."""
    entry = collect(command, gpu) | ({"spec_sha256": spec_sha256} if spec_sha256 else {})
    results.write_text(location, FILE, json.dumps(read(location) + [entry], indent=1) + "\n")


def spec_digest_ran(location: str | Path) -> str | None:
    """The digest of the spec.yaml the sweep at `location` started with, where its first driver recorded one."""
    return next((e["spec_sha256"] for e in read(location) if isinstance(e.get("spec_sha256"), str)), None)


def finish(location: str | Path) -> None:
    entries = read(location)
    if entries:
        entries[-1]["end"] = _now()
        results.write_text(location, FILE, json.dumps(entries, indent=1) + "\n")


def describe(entry: dict) -> str:
    """One line: code, libraries, machine, time."""
    code = f"sweeper {entry.get('sweeper')}"
    if entry.get("git_commit"):
        code += f" (git {entry['git_commit'][:12]}{', uncommitted changes' if entry.get('uncommitted_changes') else ''})"
    libraries = ", ".join(f"{name} {entry[name]}" for name in ("torch", "ray", "optuna") if entry.get(name))
    cuda = f", CUDA {entry['cuda']}" if entry.get("cuda") else ""
    return (f"{entry.get('command', 'run')}: {code}; python {entry.get('python')}, {libraries}; "
            f"{entry.get('host')}, {entry.get('device')}{cuda}; {entry.get('start')} to {entry.get('end') or 'unfinished'}")


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(collect(" ".join(sys.argv), False), indent=1))
