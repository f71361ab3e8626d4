"""Datasets by name. Each module gives INFO (sizes, without loading) and load()."""
from __future__ import annotations

from functools import lru_cache

from . import digits
from .base import Dataset, DatasetInfo, labelled_split

_MODULES = {"digits": digits}
DATASETS: dict[str, DatasetInfo] = {name: module.INFO for name, module in _MODULES.items()}


@lru_cache(maxsize=4)
def load(name: str) -> Dataset:
    """The dataset `name`, loaded once per process."""
    return _MODULES[name].load()


__all__ = ["DATASETS", "Dataset", "DatasetInfo", "labelled_split", "load"]
