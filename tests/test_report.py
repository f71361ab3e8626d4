import numpy as np
import pytest
from scipy import stats

from sweeper import report, results
from sweeper.errors import SweeperError
from test_results import HYPER, epoch_rows, trial_row


@pytest.fixture
def sweep_dir(tmp_path):
    """m2 at alpha 1 (3 seeds) and 10 (1 seed), a baseline (2 seeds), a diverged and a running trial;
    the spec asked for 3 seeds."""
    accuracy = {("m2", 1.0): [0.90, 0.92, 0.94], ("m2", 10.0): [0.95], ("baseline", None): [0.80, 0.84]}
    for (model, alpha), values in accuracy.items():
        config = f"{model}{alpha}"
        extra = {} if alpha is None else {"alpha": alpha}
        rows = [trial_row(config, model, seed, test_acc=v, **extra) for seed, v in enumerate(values)]
        if alpha == 10.0:
            rows += [trial_row(config, model, 1, status="diverged", test_acc=0.1, **extra),
                     trial_row(config, model, 2, status="running", test_acc=0.5, **extra)]
        results.write_configuration(tmp_path, config, epoch_rows(config, model, 0), rows, HYPER)
    (tmp_path / "spec.yaml").write_text("name: x\nseeds: [0, 1, 2]\n")
    return tmp_path


CAPTION = "test accuracy % at the epoch of best validation accuracy: mean ± std over seeds (n); best of each column in bold"


def test_markdown_table_rows_alpha_columns_models(sweep_dir):
    assert report.table([sweep_dir]) == (
        f"{CAPTION}\n"
        "\n"
        "| alpha | baseline | m2 |\n"
        "|---|---|---|\n"
        "| 1 | – | 92.00 ± 2.00 (3) |\n"
        "| 10 | – | **95.00 ± – (1)*** |\n"
        "| n/a | 82.00 ± 2.83 (2)* | – |\n"
        "\n"
        "* fewer seeds than the sweep asked for (3)\n"
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
        r"10 & -- & \textbf{95.00 $\pm$ -- (1)*} \\",
        r"n/a & 82.00 $\pm$ 2.83 (2)* & -- \\",
    ]
    assert (sweep_dir / "report.tex").is_file()


def test_csv_table_has_the_numbers(sweep_dir):
    lines = report.table([sweep_dir], fmt="csv").splitlines()
    assert lines[0] == "alpha,model,mean,std,n,ci_low,ci_high,best,fewer_seeds,published,delta"
    assert lines[1].startswith("1,m2,92.0") and ",3,,,False,False,," in lines[1]
    assert lines[3].startswith("n/a,baseline,82.0")


def test_a_95_percent_interval(sweep_dir):
    text = report.table([sweep_dir], ci=True)
    half = stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3)
    assert f"| 1 | – | 92.00 ± 2.00 (3) [{92 - half:.2f}, {92 + half:.2f}] |" in text


def test_other_axes_and_a_bad_axis(sweep_dir):
    text = report.table([sweep_dir], rows="model", cols="dataset")
    assert "| baseline | 82.00 ± 2.83 (2)* |" in text and "| m2 | **92.75 ± 2.22 (4)** |" in text
    with pytest.raises(SweeperError, match=r"^--rows seed: not a column of these results; choose one of: alpha, batch_labelled"):
        report.table([sweep_dir], rows="seed")


def paper_dir(tmp_path, layout):
    """A Jurasiński-shaped sweep: m2 over alpha and jurasinski over lam, 2 seeds each."""
    hyper = {"alpha": "number", "lam": "number"}
    values = {("m2", "alpha", 1.0): [0.90, 0.94], ("m2", "alpha", 10.0): [0.93, 0.95],
              ("jurasinski", "lam", 1.0): [0.88, 0.90], ("jurasinski", "lam", 10.0): [0.70, 0.74]}
    for (model, name, value), accs in values.items():
        config = f"{model}{value}"
        rows = [{**trial_row(config, model, s, test_acc=a), name: value} for s, a in enumerate(accs)]
        for r in rows:
            r.pop("hidden"), r.pop("lr")
        results.write_configuration(tmp_path, config, epoch_rows(config, model, 0), rows, hyper)
    return tmp_path


def test_the_jurasinski_layout_shares_alpha_and_lambda_rows_and_compares_with_the_paper(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    (published / "j.csv").write_text("# a citation\ntable,row,column,value,std\njurasinski,1,m2,92.0,2.6\njurasinski,10,jurasinski,78.1,1.3\n")
    text = report.table([paper_dir(tmp_path / "sweep", "jurasinski")], layout="jurasinski", compare=True, published_dir=str(published))
    lines = text.splitlines()
    assert lines[2] == "| alpha or lam | m2 | jurasinski |"
    assert lines[4] == "| 1 | 92.00 ± 2.83 (2); paper 92.00, Δ +0.00 | **89.00 ± 1.41 (2)** |"
    assert lines[5] == "| 10 | **94.00 ± 1.41 (2)** | 72.00 ± 2.83 (2); paper 78.10, Δ -6.10 |"


def test_the_kingma_layout_shows_error_and_marks_the_lowest(tmp_path):
    text = report.table([paper_dir(tmp_path, "kingma")], layout="kingma", rows="alpha,lam")
    assert "| 10 | **6.00 ± 1.41 (2)** | 28.00 ± 2.83 (2) |" in text and "| 1 | 8.00 ± 2.83 (2) | **11.00 ± 1.41 (2)** |" in text and text.startswith("Kingma Table 1: MNIST test error %")


def test_paired_comparison_over_the_same_seeds(tmp_path):
    text = report.table([paper_dir(tmp_path, "jurasinski")], layout="jurasinski", pair=("m2", "jurasinski"))
    t = stats.ttest_rel([0.93, 0.95], [0.70, 0.74]).pvalue
    assert f"| 10 | 2 | 22 | {t:.4g} | 0.5 |" in text
    assert "| 1 | 2 | 3 | " in text


def test_figures_and_the_html_page(sweep_dir):
    import matplotlib.image

    for config, model in (("m2a", "m2"), ("m2b", "m2")):  # learning curves need epochs of completed trials
        rows = [trial_row(config, model, s, alpha=float(len(config))) for s in range(2)]
        curve = [r for s in range(2) for r in epoch_rows(config, model, s, epochs=5)]
        results.write_configuration(sweep_dir, config, curve, rows, HYPER)
    paths = report.write_figures([sweep_dir])
    assert [p.name for p in paths] == ["accuracy.png", "learning_curves.png", "entropy_mi.png"]
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.shape[0] > 300 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05  # not blank
        assert p.with_suffix(".svg").read_text().startswith("<?xml")
    page = report.table([sweep_dir], fmt="html")
    assert page.count("<table>") == 1 and page.count("data:image/png;base64,") == 3
    assert "<th>alpha</th>" in page and "<figcaption>learning_curves</figcaption>" in page


def test_a_results_dir_with_a_schema_it_cannot_read(tmp_path):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(SweeperError, match=r"trials: cannot read these results \(.*\); was it written by sweeper\?$"):
        report.table([tmp_path])
