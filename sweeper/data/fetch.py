"""Files of a dataset: found in the data directory or downloaded, and always verified.

A file is used only if its checksum matches: the MD5 of its uncompressed content where
that is known (it survives recompression), else the MD5 of the file as published.
A download goes to a hidden temporary name and is renamed into place only once it is
complete and verified; a failed or bad download leaves nothing behind.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..results import atomic

TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One file of a dataset: where it is published and how to recognise a good copy."""

    name: str  # file name in the dataset's directory
    urls: tuple[str, ...]  # the standard address first, then mirrors
    md5: str | None = None  # of the file as published
    content_md5: str | None = None  # of its uncompressed content (gzip files)

    def expected(self) -> str:
        parts = [f"MD5 {self.content_md5} uncompressed" if self.content_md5 else "", f"MD5 {self.md5} as published" if self.md5 else ""]
        return " or ".join(p for p in parts if p)


def data_dir(option: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $SWEEPER_DATA_DIR, else ~/.cache/sweeper."""
    given = option or os.environ.get("SWEEPER_DATA_DIR")
    try:
        return Path(given or Path.home() / ".cache" / "sweeper").expanduser()
    except RuntimeError:  # ~someone who has no account here, or no home to be found
        named = f"--data-dir {option}" if option else f"$SWEEPER_DATA_DIR {given}" if given else "the default data folder ~/.cache/sweeper"
        raise DataError(f"{named}: no home folder to read '~' as here; give the folder's full path") from None


def ensure(source: Source, directory: Path) -> Path:
    """The verified file `source` in `directory`, downloading it if it is not there.

    A gzip file may also be there uncompressed (name without .gz), when its content MD5 is known.
    """
    path = directory / source.name
    if source.name.endswith(".gz") and source.content_md5 and not path.exists() and path.with_suffix("").exists():
        path = path.with_suffix("")
    if path.exists() or path.is_symlink():
        if not path.is_file():  # a directory, a FIFO or a device where the file should be: reading could block
            raise DataError(f"{path}: is not a regular file; put the file {source.name} there ({source.expected()})")
        problem = check(path, source)
        if problem:
            raise DataError(f"{path}: {problem}; expected {source.expected()}. Replace it with a good copy "
                            f"(from {source.urls[0]}) or delete it to download it again")
        return path
    return _download(source, directory / source.name)


def check(path: Path, source: Source) -> str | None:
    """Why `path` is not a good copy of `source`, or None."""
    try:
        raw = _md5(path, gzip_content=False)
        if source.md5 and raw == source.md5:
            return None
        if source.content_md5:
            content = _md5(path, gzip_content=_is_gzip(path))
            if content == source.content_md5:
                return None
            return f"checksum mismatch (uncompressed content has MD5 {content})"
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        return f"truncated or corrupt ({type(e).__name__}: {e})"
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    return f"checksum mismatch (MD5 {raw})"


class _Mismatch(Exception):
    """A download that arrived but is not the file it should be."""


def _download(source: Source, path: Path) -> Path:
    made = [p for p in [path.parent, *path.parent.parents] if not p.exists()]  # removed again if nothing arrives
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # --data-dir, or DATA_DIR/<dataset>, is a file; or not writable
        raise DataError(f"{path.parent}: cannot hold the dataset's files ({e.strerror or type(e).__name__}); give --data-dir "
                        "a folder (the files go into <folder>/<dataset>/)") from None
    failures = []
    for url in source.urls:
        try:
            with atomic(path) as temporary:  # in place only once its checksum holds
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(temporary, "wb") as out:
                    shutil.copyfileobj(response, out, _CHUNK)
                problem = check(temporary, source)
                if problem is not None:
                    raise _Mismatch(problem)
            return path
        except _Mismatch as e:
            failures.append(f"{url}: {e}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
    for folder in made:  # shallowest last: only the folders this call made, and only while empty
        try:
            folder.rmdir()
        except OSError:
            break
    raise DataError(f"{path}: missing, and no good copy could be downloaded ({'; '.join(failures)}); "
                    f"put a copy there by hand ({source.expected()})")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _md5(path: Path, gzip_content: bool) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with (gzip.open(path, "rb") if gzip_content else open(path, "rb")) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_content(path: Path):
    """A binary file object over the (uncompressed) content of a raw or gzip file."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")
