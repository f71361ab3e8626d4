"""CIFAR-10 from the binary archive (not the pickled one: unpickling a download runs code).

Read straight out of the verified cifar-10-binary.tar.gz, nothing extracted. Each record
is one label byte and 3072 pixel bytes (red, green, blue planes of 32x32). Split: the first
45,000 training images train, the last 5,000 validate, test_batch tests.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import Dataset, DatasetInfo
from .fetch import Source, ensure

ARCHIVE = Source("cifar-10-binary.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                 md5="c32a1d4ab5d03f1284b67883e8d87530")
TRAIN_MEMBERS = tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = "cifar-10-batches-bin/test_batch.bin"
RECORD = 1 + 3 * 32 * 32
N_TRAIN, N_VAL = 45_000, 5_000
INFO = DatasetInfo(n_train=N_TRAIN, n_classes=10, summary="CIFAR-10 (binary), 32x32x3, 45k/5k/10k", input_shape=(3, 32, 32))


def read_records(archive: Path, members: tuple[str, ...], source: Source = ARCHIVE) -> tuple[np.ndarray, np.ndarray]:
    """(images as uint8 (N, 3072), labels) from binary-format members of the archive."""
    chunks, name = [], members[0]
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in members:
                f = tar.extractfile(name)
                if f is None:
                    raise KeyError("not a regular file")
                chunks.append(f.read())
    except (KeyError, tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: cannot read {name} from the archive ({type(e).__name__}); "
                        f"expected the CIFAR-10 binary version ({source.urls[0]})") from None
    content = b"".join(chunks)
    if len(content) % RECORD:
        raise DataError(f"{archive}: records are {RECORD} bytes but the members hold {len(content)} bytes")
    records = np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD)
    return records[:, 1:], records[:, 0].astype(np.int64)


def load(directory: Path) -> Dataset:
    archive = ensure(ARCHIVE, directory)
    train_x, train_y = read_records(archive, TRAIN_MEMBERS)
    test_x, test_y = read_records(archive, (TEST_MEMBER,))
    scale = lambda images: (images / np.float32(255)).astype(np.float32)  # noqa: E731
    x = scale(train_x)
    return Dataset("cifar10", 10, x[:N_TRAIN], train_y[:N_TRAIN], x[N_TRAIN:], train_y[N_TRAIN:], scale(test_x), test_y, (3, 32, 32))
