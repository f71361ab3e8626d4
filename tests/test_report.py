import pytest

from sweeper import report, results
from sweeper.errors import SweeperError
from test_results import HYPER, epoch_rows, trial_row


@pytest.fixture
def sweep_dir(tmp_path):
    """m2 at alpha 1 (3 seeds) and 10 (1 seed), a baseline (2 seeds), a diverged and a running trial."""
    accuracy = {("m2", 1.0): [0.90, 0.92, 0.94], ("m2", 10.0): [0.95], ("baseline", None): [0.80, 0.84]}
    for (model, alpha), values in accuracy.items():
        config = f"{model}{alpha}"
        extra = {} if alpha is None else {"alpha": alpha}
        rows = [trial_row(config, model, seed, test_acc=v, **extra) for seed, v in enumerate(values)]
        if alpha == 10.0:
            rows += [trial_row(config, model, 1, status="diverged", test_acc=0.1, **extra),
                     trial_row(config, model, 2, status="running", test_acc=0.5, **extra)]
        results.write_configuration(tmp_path, config, epoch_rows(config, model, 0), rows, HYPER)
    return tmp_path


def test_markdown_table_rows_alpha_columns_models(sweep_dir):
    assert report.table([sweep_dir]) == (
        "test accuracy % at the epoch of best validation accuracy: mean ± std over seeds (n)\n"
        "\n"
        "| alpha | baseline | m2 |\n"
        "|---|---|---|\n"
        "| 1 | – | 92.00 ± 2.00 (3) |\n"
        "| 10 | – | 95.00 ± – (1) |\n"
        "| n/a | 82.00 ± 2.83 (2) | – |\n"
    )
    assert (sweep_dir / "report.md").read_text() == report.table([sweep_dir])


def test_latex_table(sweep_dir):
    text = report.table([sweep_dir], fmt="latex")
    assert text.splitlines()[2:9] == [
        r"\begin{tabular}{lrr}",
        r"\toprule",
        r"alpha & baseline & m2 \\",
        r"\midrule",
        r"1 & -- & 92.00 $\pm$ 2.00 (3) \\",
        r"10 & -- & 95.00 $\pm$ -- (1) \\",
        r"n/a & 82.00 $\pm$ 2.83 (2) & -- \\",
    ]
    assert (sweep_dir / "report.tex").is_file()


def test_csv_table_has_the_numbers(sweep_dir):
    lines = report.table([sweep_dir], fmt="csv").splitlines()
    assert lines[0] == "alpha,model,test_acc_mean,test_acc_std,n"
    assert lines[1].startswith("1.0,m2,0.9199") and lines[1].endswith(",3")
    assert lines[3].startswith(",baseline,0.82")


def test_other_axes_and_a_bad_axis(sweep_dir):
    text = report.table([sweep_dir], rows="model", cols="dataset")
    assert "| baseline | 82.00 ± 2.83 (2) |" in text and "| m2 | 92.75 ± 2.22 (4) |" in text
    with pytest.raises(SweeperError, match=r"^--rows seed: not a column of these results; choose one of: alpha, batch_labelled, batch_unlabelled, dataset, hidden, label_count, lr, model$"):
        report.table([sweep_dir], rows="seed")
