"""MNIST and Fashion-MNIST from the standard IDX files (gzip-compressed or not).

Split as in the papers: the first 50,000 training images train, the last 10,000
validate, and the 10,000 test images test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import Dataset, DatasetInfo
from .fetch import Source, ensure, open_content

N_TRAIN, N_VAL = 50_000, 10_000
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# MD5 of the uncompressed files (canonical; survives recompression) and of the published .gz
MNIST_CONTENT_MD5 = ("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                     "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637")
MNIST_GZ_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_GZ_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                  "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

MNIST = DatasetInfo(n_train=N_TRAIN, n_classes=10, summary="MNIST, 28x28, 50k/10k/10k", input_shape=(1, 28, 28),
                    smallest_class=4506)  # the 5s of the first 50,000 training images
FASHION_MNIST = DatasetInfo(n_train=N_TRAIN, n_classes=10, summary="Fashion-MNIST, 28x28, 50k/10k/10k", input_shape=(1, 28, 28))


def sources(urls: tuple[str, ...], gz_md5: tuple[str, ...], content_md5=(None,) * 4) -> list[Source]:
    return [Source(f"{name}.gz", tuple(u + f"{name}.gz" for u in urls), md5, content)
            for name, md5, content in zip(FILES, gz_md5, content_md5)]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (raw or gzip) as a uint8 array of its declared shape."""
    with open_content(path) as f:
        content = f.read()
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes; expected the standard MNIST-format file")
    ndim = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(content) != offset + int(np.prod(shape)):
        raise DataError(f"{path}: truncated or padded: {len(content) - offset} bytes of data for shape {shape}")
    return np.frombuffer(content, dtype=np.uint8, offset=offset).reshape(shape)


def load_files(name: str, directory: Path, srcs: list[Source], n_train: int = N_TRAIN, n_val: int = N_VAL) -> Dataset:
    train_x, train_y, test_x, test_y = (read_idx(ensure(s, directory)) for s in srcs)
    if train_x.shape[0] != train_y.shape[0] or train_x.shape[0] < n_train + n_val or test_x.shape[0] != test_y.shape[0]:
        raise DataError(f"{directory}: images and labels do not match in number "
                        f"({train_x.shape[0]}/{train_y.shape[0]}, {test_x.shape[0]}/{test_y.shape[0]})")
    flat = lambda images: (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)  # noqa: E731
    x, y = flat(train_x), train_y.astype(np.int64)
    return Dataset(name, 10, x[:n_train], y[:n_train], x[n_train : n_train + n_val], y[n_train : n_train + n_val],
                   flat(test_x), test_y.astype(np.int64), (1, 28, 28))


def load_mnist(directory: Path) -> Dataset:
    return load_files("mnist", directory, sources(MNIST_URLS, MNIST_GZ_MD5, MNIST_CONTENT_MD5))


def load_fashion_mnist(directory: Path) -> Dataset:
    return load_files("fashion_mnist", directory, sources(FASHION_URLS, FASHION_GZ_MD5))
