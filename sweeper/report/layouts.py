"""The papers' table layouts, by name: which column makes the rows, which models, and whether
cells show accuracy or error."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    name: str
    rows: str | None  # column(s) of the trials table; "a,b" takes the first set; None: the generic default
    cols: str = "model"
    error: bool = False  # cells show test error % (100 - accuracy)
    columns: tuple[str, ...] | None = None  # the paper's column order; None: every value, sorted
    caption: str = ""


LAYOUTS = {
    "generic": Layout("generic", None, caption="test accuracy %"),
    "jurasinski": Layout("jurasinski", "alpha,lam", columns=("m2", "jurasinski", "jurasinski_simplified", "baseline"),
                         caption="Jurasiński Table 1: MNIST, test accuracy % by alpha (M2) or lambda"),
    "kingma": Layout("kingma", "label_count", error=True, columns=("baseline", "m1", "m2", "m1m2"),
                     caption="Kingma Table 1: MNIST test error % by number of labels"),
    "adgm": Layout("adgm", "mc_samples", error=True, columns=("adgm",),
                   caption="ADGM: MNIST test error % by Monte Carlo samples"),
    "raj": Layout("raj", "dataset", columns=("m2", "optimized_elbo"),
                  caption="Raj: test accuracy % by dataset and model"),
}
