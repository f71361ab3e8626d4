"""How a training process allocates memory: glibc's malloc told to keep what it frees.

A packed step allocates activations of tens of megabytes (24 members x 1,100 rows x 500 units in
float32 is 53 MB) and frees them a moment later, dozens of times a step. By default glibc serves a
block above 32 MB from a fresh mmap, and in any thread but the main one (Tune trains in a thread)
from sub-heaps of 64 MB that it trims, so each step faults its blocks in again, page by page (README,
"Memory a trial keeps", for what that costs). These tunables (glibc manual, "Memory Allocation
Tunables") keep freed memory for the next step: one arena, so a thread's big blocks come from the
main heap; no mmap and no trimming below 1 GiB. A process then holds on to its peak.

Ray workers start with them through the job's runtime_env (sweep.py); `sweeper bench`, which times
steps in its own main thread, sets the same through mallopt(3). A GLIBC_TUNABLES of the user's
replaces them (empty: glibc's defaults). Elsewhere than glibc: nothing.
"""
from __future__ import annotations

import ctypes
import os
import platform

KEEP_FREED = {"arena_max": 1, "mmap_threshold": 1 << 30, "trim_threshold": 1 << 30}
_MALLOPT = {"arena_max": -8, "mmap_threshold": -3, "trim_threshold": -1}  # M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


def glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def worker_env(environ: dict[str, str] | None = None, on_glibc: bool | None = None) -> dict[str, str]:
    """Environment variables for a training process: GLIBC_TUNABLES with KEEP_FREED; or, where `environ`
    (this process's) sets GLIBC_TUNABLES, that instead (empty: glibc's defaults); {} elsewhere than glibc."""
    environ = os.environ if environ is None else environ
    if not (glibc() if on_glibc is None else on_glibc):
        return {}
    if "GLIBC_TUNABLES" in environ:
        return {"GLIBC_TUNABLES": environ["GLIBC_TUNABLES"]}
    return {"GLIBC_TUNABLES": ":".join(f"glibc.malloc.{name}={value}" for name, value in KEEP_FREED.items())}


def keep_freed_memory() -> bool:
    """KEEP_FREED for this process from now on, through mallopt(3), unless it started with GLIBC_TUNABLES
    of its own; True if set. (One arena applies to threads that have none yet: set it before starting any.)"""
    if not glibc() or "GLIBC_TUNABLES" in os.environ:
        return False
    libc = ctypes.CDLL(None)
    return all(libc.mallopt(_MALLOPT[name], value) == 1 for name, value in KEEP_FREED.items())
