import numpy as np
import pytest

from sweeper.data import DATASETS, labelled_split, load


def test_digits_is_scaled_and_split_fixed():
    data = load("digits")
    assert data.x_train.shape == (1257, 64) and data.x_val.shape == (180, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert DATASETS["digits"].n_train == len(data.y_train)
    # the three parts together are exactly scikit-learn's 1797 images, each once
    from sklearn.datasets import load_digits

    parts = np.concatenate([data.x_train, data.x_val, data.x_test]) * 16
    original = load_digits().data
    assert len(parts) == len(original) == 1797
    assert sorted(map(tuple, parts.round())) == sorted(map(tuple, original))

def test_digits_are_read_as_scikit_learn_reads_them_without_importing_its_datasets(monkeypatch):
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from sweeper.data import digits

    bunch = load_digits()
    pixels, labels = digits.pixels_and_labels()
    assert np.array_equal(pixels, bunch.data) and np.array_equal(labels, bunch.target)
    monkeypatch.setattr(digits, "_bundled_file", lambda: None)  # a scikit-learn that keeps the file elsewhere
    pixels, labels = digits.pixels_and_labels()
    assert np.array_equal(pixels, bunch.data) and np.array_equal(labels, bunch.target)
    # sklearn.datasets' import is a second of every short sweep's start
    loaded = subprocess.run([sys.executable, "-c", "import sys; from sweeper.data import load; load('digits'); "
                             "print(sorted(m for m in sys.modules if m.startswith('sklearn')))"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_the_labelled_subset_is_balanced_and_disjoint_from_the_unlabelled():
    labels = load("digits").y_train
    labelled, unlabelled = labelled_split(labels, 100, 10, seed=3)
    assert np.bincount(labels[labelled], minlength=10).tolist() == [10] * 10
    assert len(np.intersect1d(labelled, unlabelled)) == 0
    assert len(labelled) + len(unlabelled) == len(labels)


def test_the_same_seed_gives_the_same_subset_and_another_seed_another():
    labels = load("digits").y_train
    first, _ = labelled_split(labels, 50, 10, seed=0)
    again, _ = labelled_split(labels, 50, 10, seed=0)
    other, _ = labelled_split(labels, 50, 10, seed=1)
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()


def test_an_unbalanceable_label_count_is_refused():
    with pytest.raises(ValueError, match="not a multiple of the 10 classes"):
        labelled_split(np.arange(100) % 10, 15, 10, seed=0)
