"""How a training process allocates memory: glibc's malloc told to keep what it frees.

A packed step allocates activations of tens of megabytes (24 members x 1,100 rows x 500 units in
float32 is 53 MB) and frees them a moment later, dozens of times a step. By default glibc serves a
block above 32 MB from a fresh mmap, and in any thread but the main one (Tune trains in a thread)
from sub-heaps of 64 MB that it trims, so each step faults its blocks in again, page by page (README,
"Memory a trial keeps", for what that costs). These tunables (glibc manual, "Memory Allocation
Tunables") keep freed memory for the next step: one arena, so a thread's big blocks come from the
main heap; no mmap and no trimming below 1 GiB. A process then holds on to its peak.

Ray workers started for a sweep get them through the job's runtime_env (sweep.py); `sweeper bench`,
which times steps in its own main thread, sets the same through mallopt(3). A GLIBC_TUNABLES in the
driver's environment (the user's, or a Ray job's) leaves malloc to it.
"""
from __future__ import annotations

import ctypes
import os

# name: (its mallopt(3) parameter, M_ARENA_MAX etc. in glibc's malloc.h; the value)
KEEP_FREED = {"arena_max": (-8, 1), "mmap_threshold": (-3, 1 << 30), "trim_threshold": (-1, 1 << 30)}
TUNABLES = ":".join(f"glibc.malloc.{name}={value}" for name, (_, value) in KEEP_FREED.items())


def on_glibc() -> bool:
    """Whether this process's C library is glibc."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))  # e.g. "glibc 2.36"; unknown elsewhere
    except (ValueError, OSError, AttributeError):
        return False


def worker_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a sweep's Ray workers: GLIBC_TUNABLES keeping freed memory, unless
    `environ` (this process's) sets GLIBC_TUNABLES (then {}: workers started here inherit it, and a Ray
    job's own runtime_env holds it). Sent whatever the driver's C library: other libraries ignore it."""
    environ = os.environ if environ is None else environ
    return {} if "GLIBC_TUNABLES" in environ else {"GLIBC_TUNABLES": TUNABLES}


def keep_freed_memory() -> bool:
    """KEEP_FREED for this process from now on, through mallopt(3), unless it started with a GLIBC_TUNABLES
    of its own; True if glibc took every setting. (One arena applies to threads that have none yet.)"""
    if not on_glibc() or "GLIBC_TUNABLES" in os.environ:
        return False
    libc = ctypes.CDLL(None)
    taken = [libc.mallopt(parameter, value) == 1 for parameter, value in KEEP_FREED.values()]
    return all(taken)
