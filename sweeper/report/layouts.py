"""The papers' table layouts, by name: which column makes the rows, which models, and whether
cells show accuracy or error."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    name: str
    rows: str | None  # column(s) of the trials table; "a,b" takes the first set; None: the generic default
    cols: str = "model"
    error: bool = False  # cells show test error % (100 - accuracy)
    columns: tuple[str, ...] | None = None  # the paper's columns, shown (– where missing) in this order; None: every value, sorted
    caption: str = ""
    row_values: tuple[str, ...] | None = None  # the paper's rows, shown (– where missing) first
    other_methods: dict[str, str] = field(default_factory=dict)  # column -> why the paper's figure there is another method


LAYOUTS = {
    "generic": Layout("generic", None, caption="test accuracy %"),
    "jurasinski": Layout("jurasinski", "alpha,lam", columns=("m2", "jurasinski", "jurasinski_simplified", "baseline"),
                         caption="Jurasiński Table 1: MNIST, test accuracy % by alpha (M2) or lambda",
                         row_values=("0", "0.001", "0.1", "0.5", "1", "10", "100", "10000", "n/a")),
    "kingma": Layout("kingma", "label_count", error=True, columns=("baseline", "m1", "m2", "m1m2"),
                     caption="Kingma Table 1: MNIST test error % by number of labels; "
                             "m1: M1 with sweeper's linear SVM (not the paper's transductive M1+TSVM)",
                     row_values=("100", "600", "1000", "3000"),
                     other_methods={"m1": "the paper's figure is M1+TSVM, a transductive SVM on M1's features, and sweeper's "
                                          "m1 trains an inductive head (linear SVM, logistic or MLP)"}),
    "adgm": Layout("adgm", "mc_samples", error=True, columns=("adgm",),
                   caption="ADGM: MNIST test error % by Monte Carlo samples", row_values=("1", "10")),
    "raj": Layout("raj", "dataset", columns=("m2", "optimized_elbo"),
                  caption="Raj: test accuracy % by dataset and model", row_values=("mnist", "cifar10")),
}
