"""Opening a local file that must be a regular one, without the gap between checking and opening."""
from __future__ import annotations

import errno
import os
import stat
import time
from typing import BinaryIO


class NotRegular(Exception):
    """What was opened is no regular file: `kind` says what it is ("a directory", "a pipe, socket or device")."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def open_regular(path: str | os.PathLike) -> tuple[BinaryIO, os.stat_result]:
    """`path` opened for reading, with its stat, only if it is a regular file. Opened without waiting (a FIFO's
    plain open waits for a writer for ever) and checked on the open descriptor, so nothing swapped in between a
    check and the open is read. OSError as open raises it (FileNotFoundError, ELOOP, EACCES); NotRegular else."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular("a directory" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb"), info
    except BaseException:
        os.close(descriptor)
        raise


READER_WAIT_S = 10.0  # how long a pipe may wait for its reader (one started just after sweeper)


def open_for_writing(path: str | os.PathLike, reader_wait_s: float | None = None) -> BinaryIO:
    """`path` (a link, a pipe, a device, a file) opened to be written into from its start. A pipe that no
    process reads would keep a plain open waiting for ever: it is waited on for `reader_wait_s`, then an
    OSError (ENXIO). A socket cannot be opened by name at all: ENXIO at once."""
    reader_wait_s = READER_WAIT_S if reader_wait_s is None else reader_wait_s
    deadline = time.monotonic() + reader_wait_s
    while True:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, 0o666)
            break
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            if stat.S_ISSOCK(os.stat(path).st_mode):
                raise OSError(errno.ENXIO, "a socket, which cannot be opened by name") from None
            if time.monotonic() >= deadline:
                raise OSError(errno.ENXIO, f"a pipe that no process read within {reader_wait_s:g} s") from None
            time.sleep(0.1)
    try:
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise
