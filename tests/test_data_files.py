"""Dataset files: formats, checksums, corruption, downloads from a server on 127.0.0.1."""
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from sweeper.data import DataOptions, cifar, data_dir, load, mnist, svhn
from sweeper.data.fetch import Source, ensure
from sweeper.errors import DataError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def small_mnist(tmp_path):
    """Four IDX files (12 training and 4 test images of 2x3) and their Sources, content-checksummed."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (12, 2, 3)), np.arange(12) % 10, rng.integers(0, 256, (4, 2, 3)), np.arange(4)]
    contents = [idx_bytes(a) for a in arrays]
    sources = [Source(f"{name}.gz", ("http://127.0.0.1:9/unused",), content_md5=md5(c)) for name, c in zip(mnist.FILES, contents)]
    return arrays, contents, sources


@pytest.mark.parametrize("compressed", [True, False])
def test_idx_files_raw_or_gzip_load_into_the_split(tmp_path, small_mnist, compressed):
    arrays, contents, sources = small_mnist
    for name, content in zip(mnist.FILES, contents):
        if compressed:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (tmp_path / name).write_bytes(content)
    data = mnist.load_files("mnist", tmp_path, sources, n_train=8, n_val=4)
    assert data.x_train.shape == (8, 6) and data.x_val.shape == (4, 6) and data.x_test.shape == (4, 6)
    np.testing.assert_allclose(data.x_train[0], arrays[0][0].reshape(-1) / 255, rtol=1e-6)
    assert data.y_val.tolist() == [8, 9, 0, 1]


def test_a_checksum_mismatch_is_refused_and_says_where_to_put_a_good_copy(tmp_path, small_mnist):
    _, contents, sources = small_mnist
    bad = bytearray(contents[0])
    bad[-1] ^= 0xFF
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataError) as info:
        ensure(sources[0], tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'train-images-idx3-ubyte.gz'}: checksum mismatch (uncompressed content has MD5 {md5(bytes(bad))})")
    assert f"expected MD5 {sources[0].content_md5} uncompressed" in message and "Replace it with a good copy" in message


def test_a_truncated_gzip_is_refused(tmp_path, small_mnist):
    _, contents, sources = small_mnist
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(contents[0])[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: truncated or corrupt \(EOFError"):
        ensure(sources[0], tmp_path)


def test_garbage_is_refused(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"this is not a MATLAB file at all")
    with pytest.raises(DataError, match=r"train_32x32.mat: checksum mismatch \(MD5 [0-9a-f]{32}\); expected MD5 e26dedcc434d2e4c54c9b2d4a06d8373 as published"):
        ensure(svhn.TRAIN, tmp_path)


def test_a_truncated_idx_file_is_refused_even_with_no_checksum(tmp_path):
    (tmp_path / "x").write_bytes(idx_bytes(np.zeros((3, 2, 2)))[:-1])
    with pytest.raises(DataError, match=r"truncated or padded: 11 bytes of data for shape \(3, 2, 2\)"):
        mnist.read_idx(tmp_path / "x")


def test_cifar_binary_records_are_read_from_the_archive(tmp_path):
    rng = np.random.default_rng(1)
    labels, pixels = rng.integers(0, 10, 5), rng.integers(0, 256, (5, 3072))
    records = np.concatenate([labels[:, None], pixels], axis=1).astype(np.uint8).tobytes()
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = len(records)
        tar.addfile(info, io.BytesIO(records))
    images, y = cifar.read_records(archive, (cifar.TEST_MEMBER,))
    assert y.tolist() == labels.tolist() and images.shape == (5, 3072) and (images == pixels).all()
    with pytest.raises(DataError, match=r"cannot read cifar-10-batches-bin/data_batch_1.bin from the archive \(KeyError\)"):
        cifar.read_records(archive, cifar.TRAIN_MEMBERS)


def test_svhn_mat_maps_label_10_to_0_and_puts_channels_first(tmp_path):
    from scipy.io import savemat

    images = np.zeros((32, 32, 3, 2), dtype=np.uint8)
    images[0, 1, 2, 1] = 200  # row 0, column 1, blue, second image
    savemat(tmp_path / "train_32x32.mat", {"X": images, "y": np.array([[10], [3]])})
    flat, y = svhn.read_mat(tmp_path / "train_32x32.mat")
    assert y.tolist() == [0, 3] and flat.shape == (2, 3072)
    assert flat[1, 2 * 1024 + 0 * 32 + 1] == 200 and flat.sum() == 200


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_falls_back_to_the_mirror_and_lands_whole(tmp_path, server):
    served, url = server
    content = gzip.compress(idx_bytes(np.arange(6).reshape(2, 3)))
    (served / "good.gz").write_bytes(content)
    source = Source("labels.gz", (url + "missing.gz", url + "good.gz"), md5=md5(content))
    target = tmp_path / "data"
    path = ensure(source, target)
    assert path == target / "labels.gz" and path.read_bytes() == content
    assert leftovers(target) == ["labels.gz"]


def test_a_bad_download_leaves_nothing_behind(tmp_path, server):
    served, url = server
    (served / "file.gz").write_bytes(b"garbage")
    source = Source("file.gz", (url + "file.gz",), md5="0" * 32)
    with pytest.raises(DataError) as info:
        ensure(source, tmp_path / "data")
    assert str(info.value).startswith(f"{tmp_path / 'data' / 'file.gz'}: missing, and no good copy could be downloaded ({url}file.gz: checksum mismatch")
    assert leftovers(tmp_path / "data") == []


def test_no_network_gives_one_line(tmp_path):
    source = Source("f.gz", ("http://127.0.0.1:9/f.gz",), md5="0" * 32)
    with pytest.raises(DataError, match=r"f.gz: missing, and no good copy could be downloaded \(http://127.0.0.1:9/f.gz: .*refused.*\); put a copy there by hand \(MD5 0{32} as published\)"):
        ensure(source, tmp_path)


def test_the_data_directory_comes_from_the_option_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SWEEPER_DATA_DIR", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("SWEEPER_DATA_DIR")
    assert data_dir() == Path.home() / ".cache" / "sweeper"


def test_toy_sets_have_room_for_50_labels_and_9950_unlabelled():
    from sweeper.data import labelled_split

    for name in ("moons", "circles"):
        data = load(name)
        assert data.x_train.shape == (10_000, 2) and data.n_classes == 2
        labelled, unlabelled = labelled_split(data.y_train, 50, 2, seed=0)
        assert np.bincount(data.y_train[labelled]).tolist() == [25, 25] and len(unlabelled) == 9_950
    assert not np.array_equal(load("moons").x_train, load("moons", options=DataOptions(noise=0.3)).x_train)


def test_preprocessing_options():
    scaled = load("digits")
    static = load("digits", options=DataOptions(preprocess="static_binarize"))
    assert set(np.unique(static.x_train)) == {0.0, 1.0}
    assert np.array_equal(static.x_train, load("digits", options=DataOptions(preprocess="static_binarize")).x_train)
    assert abs(static.x_train.mean() - scaled.x_train.mean()) < 0.01
    standard = load("digits", options=DataOptions(preprocess="standardize"))
    assert np.abs(standard.x_train.mean(0)).max() < 1e-4


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="real MNIST is not beside the checkout")
def test_real_mnist_loads_verified_with_the_papers_split():
    data = load("mnist", SHARED_MNIST.parent)
    assert data.x_train.shape == (50_000, 784) and data.x_val.shape == (10_000, 784) and data.x_test.shape == (10_000, 784)
    assert np.bincount(data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert (np.bincount(data.y_train) + np.bincount(data.y_val)).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0


@pytest.mark.parametrize("file_at", ["dfile", "dfile/mnist"])
def test_a_data_dir_or_dataset_folder_that_is_a_file_is_one_line_before_any_download(tmp_path, file_at, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("reached for the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    (tmp_path / file_at).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file_at).write_text("not a folder\n")
    with pytest.raises(DataError, match="cannot hold the dataset.s files"):
        load("mnist", tmp_path / "dfile")
