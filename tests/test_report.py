import os

import numpy as np
import pytest
from scipy import stats

from sweeper import report, results
from sweeper.errors import SweeperError
from helpers import HYPER, epoch_rows, trial_row


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


CAPTION = ("test accuracy % at the epoch of best validation accuracy: mean ± std over seeds (n) of one configuration per cell, "
           "chosen by validation accuracy; bold: each column's configuration selected by validation")


def test_markdown_table_rows_alpha_columns_models(sweep_dir):
    assert report.table([sweep_dir]) == (
        f"{CAPTION}\n"
        "\n"
        "| alpha | baseline | m2 |\n"
        "|---|---|---|\n"
        "| 1 | – | 92.00 ± 2.00 (3) |\n"
        "| 10 | – | **95.00 ± – (1)*** |\n"
        "| n/a | **82.00 ± 2.83 (2)*** | – |\n"
        "\n"
        "selected by validation: baseline: 82.00 ± 2.83 (2); m2: 95.00 ± – (1) with alpha=10\n"
        "* fewer seeds than the sweep asked for (3)\n"
        f"provenance of {sweep_dir}: not recorded\n"
    )
    assert not (sweep_dir / "report.md").exists()  # table() only reads; write() writes
    assert report.write(report.table([sweep_dir]), [sweep_dir], "markdown") == f"{sweep_dir}/report.md"
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
        r"n/a & \textbf{82.00 $\pm$ 2.83 (2)*} & -- \\",
    ]
    assert r"test accuracy \% at the epoch" in text and "%" not in text.replace(r"\%", "")


def test_latex_compiles_with_pdflatex(tmp_path):
    """Every layout's caption, footnotes and cells (%, _, ±, Δ, ś) compile; .ci/run installs texlive."""
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        if os.environ.get("SWEEPER_REQUIRE_LATEX"):
            pytest.fail("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
        pytest.skip("pdflatex is not installed")
    published = tmp_path / "published"
    published.mkdir()
    (published / "j.csv").write_text("table,row,column,value,std\njurasinski,1,m2,92.0,2.6\nkingma,100,m1,11.82,0.25\n")
    swept = paper_dir(tmp_path / "sweep", "jurasinski")
    tables = [report.table([swept], fmt="latex", layout=layout, compare=True, published_dir=str(published), ci=True)
              for layout in ("generic", "jurasinski", "kingma", "adgm", "raj")]
    document = tmp_path / "doc.tex"
    document.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + "\n".join(tables)
                        + "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_csv_table_has_the_numbers(sweep_dir):
    lines = report.table([sweep_dir], fmt="csv").splitlines()
    assert lines.pop(0) == f"# provenance of {sweep_dir}: not recorded"
    assert lines[0] == ("alpha,model,mean,std,n,ci_low,ci_high,val_acc,configuration,selected_by_validation,fewer_seeds,"
                        "published,delta,consistent")
    assert lines[1].startswith("1,m2,92.0") and ",3,,,92.0,,False,False,,," in lines[1]
    assert lines[2].startswith("10,m2,95.0,,1,") and lines[3].startswith("n/a,baseline,82.0")


def test_a_95_percent_interval(sweep_dir):
    text = report.table([sweep_dir], ci=True)
    half = stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3)
    assert f"| 1 | – | 92.00 ± 2.00 (3) [{92 - half:.2f}, {92 + half:.2f}] |" in text


def test_other_axes_and_bad_axes(sweep_dir):
    text = report.table([sweep_dir], rows="model", cols="dataset")
    # one configuration per cell: m2's is alpha 10 (best by validation), not a pool of alpha 1 and 10
    assert "| baseline | 82.00 ± 2.83 (2)* |" in text and "| m2 | **95.00 ± – (1)*** [a] |" in text
    assert "each cell is the configuration best by validation among those that differ in alpha: [a] alpha=10" in text
    with pytest.raises(SweeperError, match=r"^--rows seed: a cell is the mean over seeds, so seeds cannot be an axis; choose one of: alpha, "):
        report.table([sweep_dir], rows="seed")
    with pytest.raises(SweeperError, match=r"^--cols model,dataset: takes one column; share rows with --rows a,b instead$"):
        report.table([sweep_dir], cols="model,dataset")
    with pytest.raises(SweeperError, match=r"^--rows alpha --cols alpha: the same column on both axes; give two different columns$"):
        report.table([sweep_dir], rows="alpha", cols="alpha")
    with pytest.raises(SweeperError, match=r"^--rows nope: not a column of these results"):
        report.table([sweep_dir], rows="nope")


def test_a_cell_is_one_configuration_chosen_by_validation_not_a_pool(tmp_path):
    """alpha x lr, reported by alpha: each cell is the lr best by validation accuracy (not by test), marked."""
    grid = {(1.0, 1e-3): ([0.80, 0.82], [0.70, 0.72]), (1.0, 1e-2): ([0.90, 0.92], [0.60, 0.62]),  # val, test
            (10.0, 1e-3): ([0.85, 0.85], [0.90, 0.94]), (10.0, 1e-2): ([0.75, 0.79], [0.99, 0.99])}
    for i, ((alpha, lr), (val, test)) in enumerate(grid.items()):
        rows = [{**trial_row(f"c{i}", "m2", s, test_acc=t, alpha=alpha), "lr": lr, "best_val_acc": v} for s, (v, t) in enumerate(zip(val, test))]
        results.write_configuration(tmp_path, f"c{i}", epoch_rows(f"c{i}", "m2", 0), rows, HYPER)
    lines = report.table([tmp_path]).splitlines()
    assert lines[2:6] == ["| alpha | m2 |", "|---|---|", "| 1 | **61.00 ± 1.41 (2)** [a] |", "| 10 | 92.00 ± 2.83 (2) [b] |"]
    assert lines[7] == "selected by validation: m2: 61.00 ± 1.41 (2) with alpha=1, lr=0.01"
    assert lines[8] == "each cell is the configuration best by validation among those that differ in lr: [a] lr=0.01; [b] lr=0.001"


def test_the_raj_cell_is_one_setting_of_beta_gamma_epsilon_and_flags_missing_seeds(tmp_path):
    hyper = {"alpha": "number", "beta": "number", "gamma": "number", "epsilon": "number"}
    number = 0
    for beta in (0.0, 0.1, 1.0):
        for gamma in (0.0, 1.0):
            for epsilon in (0.0, 0.001):
                seeds = range(2) if (beta, gamma, epsilon) == (1.0, 1.0, 0.001) else range(3)  # the best lost a seed
                val = 0.5 + beta / 4 + gamma / 10 + epsilon * 10
                rows = [{**trial_row(f"o{number}", "optimized_elbo", s, test_acc=val + s / 100), "beta": beta, "gamma": gamma,
                         "epsilon": epsilon, "dataset": "mnist", "best_val_acc": val} for s in seeds]
                for r in rows:
                    r.pop("hidden"), r.pop("lr")
                results.write_configuration(tmp_path, f"o{number}", epoch_rows(f"o{number}", "optimized_elbo", 0), rows, hyper)
                number += 1
    (tmp_path / "spec.yaml").write_text("name: x\nseeds: [0, 1, 2]\n")
    lines = report.table([tmp_path], layout="raj").splitlines()
    assert lines[2:6] == ["| dataset | m2 | optimized_elbo |", "|---|---|---|", "| mnist | – | **86.50 ± 0.71 (2)*** [a] |",
                          "| cifar10 | – | – |"]
    assert "[a] beta=1, gamma=1, epsilon=0.001" in text_of(lines)


def text_of(lines):
    return "\n".join(lines)


def test_each_trial_counts_once_however_the_directories_are_given(sweep_dir, tmp_path_factory):
    once = report.table([sweep_dir])
    assert report.table([sweep_dir, sweep_dir]).replace(f"provenance of {sweep_dir}: not recorded\n", "") == \
        once.replace(f"provenance of {sweep_dir}: not recorded\n", "")
    (sweep_dir / "trials" / "old").mkdir()  # a copy in a subfolder, and a stray file: not sweeper's files
    for f in (sweep_dir / "trials").glob("*.parquet"):
        (sweep_dir / "trials" / "old" / f.name).write_bytes(f.read_bytes())
    (sweep_dir / "trials" / "notes.txt").write_text("not results")
    assert report.table([sweep_dir]) == once
    copy = tmp_path_factory.mktemp("copy")
    results.write_configuration(copy, "m2x", epoch_rows("m2x", "m2", 0), [trial_row("m21.0", "m2", 0, test_acc=0.5, alpha=1.0)], HYPER)
    with pytest.raises(SweeperError, match=rf"^trial_id m21.0-seed0 has different rows in {sweep_dir}/trials/m21.0.parquet and "
                                           rf"{copy}/trials/m2x.parquet; report one of the two"):
        report.table([sweep_dir, copy])


def test_a_layout_shows_the_part_of_its_paper_that_exists(tmp_path):
    """jurasinski on M2 alone (no lam column), adgm on results without adgm: the missing show –."""
    for alpha in (1.0, 100.0):
        results.write_configuration(tmp_path, f"m{alpha}", epoch_rows(f"m{alpha}", "m2", 0),
                                    [trial_row(f"m{alpha}", "m2", s, test_acc=0.9 + alpha / 1000, alpha=alpha) for s in range(2)], HYPER)
    lines = report.table([tmp_path], layout="jurasinski").splitlines()
    assert lines[2] == "| alpha or lam | m2 | jurasinski | jurasinski_simplified | baseline |"
    assert lines[4:13] == ["| 0 | – | – | – | – |", "| 0.001 | – | – | – | – |", "| 0.1 | – | – | – | – |", "| 0.5 | – | – | – | – |",
                           "| 1 | 90.10 ± 0.00 (2) | – | – | – |", "| 10 | – | – | – | – |", "| 100 | **100.00 ± 0.00 (2)** | – | – | – |",
                           "| 10000 | – | – | – | – |", "| n/a | – | – | – | – |"]
    lines = report.table([tmp_path], layout="adgm").splitlines()
    assert lines[2:6] == ["| mc_samples | adgm | m2 |", "|---|---|---|", "| 1 | – | – |", "| 10 | – | – |"]
    assert lines[6] == "| n/a | – | **0.00 ± 0.00 (2)** [a] |"  # no mc_samples: both alphas in one cell, the best chosen
    assert "[a] alpha=100" in text_of(lines)


def test_figures_choose_the_configuration_by_validation(tmp_path):
    from sweeper.report.figures import _best_configurations

    for config, val, test in (("by_val", 0.9, 0.5), ("by_test", 0.5, 0.99)):
        rows = [{**trial_row(config, "m2", s, test_acc=test, alpha=val), "best_val_acc": val} for s in range(2)]
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0), rows, HYPER)
    assert _best_configurations(results.read(tmp_path)) == {"m2": ["by_val-seed0", "by_val-seed1"]}


def test_every_report_format_shows_where_the_numbers_came_from(sweep_dir):
    from sweeper import provenance

    provenance.start(sweep_dir, "run", gpu=False)
    provenance.finish(sweep_dir)
    entry = provenance.read(sweep_dir)[0]
    assert entry["sweeper"] == "0.1.0" and entry["torch"] and entry["ray"] and entry["optuna"] and entry["end"] >= entry["start"]
    assert entry["device"].startswith("cpu: ") and entry["git_commit"] is not None and isinstance(entry["uncommitted_changes"], bool)
    line = f"provenance of {sweep_dir}: run: sweeper 0.1.0 (git {entry['git_commit'][:12]}"
    for fmt in ("markdown", "latex", "html", "csv"):
        text = report.table([sweep_dir], fmt=fmt)
        if fmt == "html":  # a table: a row per run, a column per library
            assert "<table class='provenance'>" in text and f"<td>{entry['torch']}</td><td>{entry['ray']}</td>" in text
            continue
        assert {"markdown": line, "csv": "# " + line, "latex": line.replace("_", r"\_")}[fmt] in text
        assert f"torch {entry['torch']}" in text


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
    (published / "j.csv").write_text("# a citation\ntable,row,column,value,std\njurasinski,1,m2,92.0,2.6\n"
                                     "jurasinski,10,jurasinski,78.1,1.3\njurasinski,10,m2,99.0,\n")
    text = report.table([paper_dir(tmp_path / "sweep", "jurasinski")], layout="jurasinski", compare=True, published_dir=str(published))
    lines = text.splitlines()
    assert lines[2] == "| alpha or lam | m2 | jurasinski | jurasinski_simplified | baseline |"
    assert lines[8] == "| 1 | 92.00 ± 2.83 (2); paper 92.00, Δ +0.00, consistent | **89.00 ± 1.41 (2)** | – | – |"
    # 99.0 is inside 94 ± t(0.975, 1) 1.41 / sqrt 2 = [81.3, 106.7]; 78.1 is neither in 72 ± 25.4... it is, the interval is wide
    assert lines[9] == "| 10 | **94.00 ± 1.41 (2)**; paper 99.00, Δ -5.00, consistent | 72.00 ± 2.83 (2); paper 78.10, Δ -6.10, consistent | – | – |"
    assert "3 of 3 cells consistent with the paper" in text


def test_consistency_with_the_paper_uses_the_interval_or_the_papers_spread(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    for seeds, accs in (("a", [0.90, 0.91, 0.92, 0.91, 0.90]), ("b", [0.80])):
        model = {"a": "m2", "b": "baseline"}[seeds]
        results.write_configuration(tmp_path / "s", seeds, epoch_rows(seeds, model, 0),
                                    [trial_row(seeds, model, s, test_acc=a) for s, a in enumerate(accs)], HYPER)
    (published / "p.csv").write_text("table,row,column,value,std\ngeneric,digits,m2,93.0,0.5\ngeneric,digits,baseline,80.5,1.0\n")
    text = report.table([tmp_path / "s"], rows="dataset", compare=True, published_dir=str(published))
    assert "**90.80 ± 0.84 (5)**; paper 93.00, Δ -2.20, not consistent" in text  # interval [89.8, 91.8], paper's ± 0.5
    assert "**80.00 ± – (1)***; paper 80.50, Δ -0.50, consistent" in text  # one seed: within the paper's ± 1.0
    assert "1 of 2 cells consistent with the paper" in text


def test_the_kingma_layout_shows_error_and_labels_m1_for_what_it_is(tmp_path):
    text = report.table([paper_dir(tmp_path, "kingma")], layout="kingma", rows="alpha,lam")
    assert "| 10 | – | – | **6.00 ± 1.41 (2)** | – | 28.00 ± 2.83 (2) |" in text  # the paper's columns, – where missing
    assert "| 1 | – | – | 8.00 ± 2.83 (2) | – | **11.00 ± 1.41 (2)** |" in text
    assert text.startswith("Kingma Table 1: MNIST test error % by number of labels; m1: M1 with sweeper's linear SVM (not the paper's transductive")
    hyper = {"classifier": "text", "hidden": "number", "lr": "number"}
    for count in (100, 600):
        config = f"m1-{count}"
        rows = [{**trial_row(config, "m1", 0, test_acc=0.8), "label_count": count, "classifier": "svm"}]
        results.write_configuration(tmp_path / "k", config, epoch_rows(config, "m1", 0), rows, hyper)
    published = tmp_path / "published"
    published.mkdir()
    (published / "k.csv").write_text("table,row,column,value,std\nkingma,100,m1,11.82,0.25\n")
    text = report.table([tmp_path / "k"], layout="kingma", compare=True, published_dir=str(published))
    assert "| 100 | – | **20.00 ± – (1)**; paper 11.82 (another method) | – | – |" in text
    assert "0 of 0 cells consistent with the paper" in text and "m1: the paper's figure is M1+TSVM, a transductive SVM" in text


def test_paired_comparison_over_the_same_seeds(tmp_path):
    text = report.table([paper_dir(tmp_path, "jurasinski")], layout="jurasinski", pair=("m2", "jurasinski"))
    t = stats.ttest_rel([0.93, 0.95], [0.70, 0.74]).pvalue
    assert f"| 10 | 2 | 22 | {t:.4g} | 0.5 |" in text
    assert "| 1 | 2 | 3 | " in text


def test_a_read_only_copy_is_reported_and_says_where_it_could_not_write(sweep_dir, tmp_path_factory, capsys):
    from sweeper import cli

    (sweep_dir / "report.md").mkdir()  # so that the report cannot be put there (as root, permissions do not stop a write)
    assert cli.main(["report", str(sweep_dir)]) == 0
    out, err = capsys.readouterr()
    assert "| 1 | – | 92.00 ± 2.00 (3) |" in out
    assert err.startswith(f"sweeper: could not write the report into {sweep_dir} (") and "give --out FILE" in err
    elsewhere = tmp_path_factory.mktemp("out") / "table.md"
    assert cli.main(["report", str(sweep_dir), "--out", str(elsewhere)]) == 0
    assert elsewhere.read_text() == capsys.readouterr().out
    (sweep_dir / "figures").write_text("a file where the figures' folder would go")
    assert cli.main(["report", str(sweep_dir), "--out", str(elsewhere), "--figures"]) == 2  # asked for, not made
    assert capsys.readouterr().err.startswith(f"sweeper: error: --figures: cannot write the figures into {sweep_dir}/figures (")


def test_an_out_that_cannot_be_written_is_a_failure(sweep_dir, tmp_path, capsys):
    from sweeper import cli

    (tmp_path / "dangling.md").symlink_to(tmp_path / "no such folder" / "report.md")
    assert cli.main(["report", str(sweep_dir), "--out", str(tmp_path / "dangling.md")]) == 2
    out, err = capsys.readouterr()
    assert "| 1 | – | 92.00 ± 2.00 (3) |" in out  # the table all the same
    assert err.startswith(f"sweeper: error: --out {tmp_path}/dangling.md: cannot write the report there (") and err.count("\n") == 1


def test_an_out_symlink_to_a_file_of_the_users_is_not_written_over(sweep_dir, tmp_path, capsys):
    from sweeper import cli

    precious = tmp_path / "precious.txt"
    precious.write_text("notes of mine\n")
    (tmp_path / "link.md").symlink_to(precious)
    assert cli.main(["report", str(sweep_dir), "--out", str(tmp_path / "link.md")]) == 2
    assert precious.read_text() == "notes of mine\n"
    assert "is a file that is not a report of sweeper's (the symlink leads to" in capsys.readouterr().err
    assert cli.main(["report", str(sweep_dir), "--out", str(tmp_path / "link.md"), "--force"]) == 0
    assert "provenance of" in precious.read_text() and (tmp_path / "link.md").is_symlink()  # written through the link
    assert cli.main(["report", str(sweep_dir), "--out", str(tmp_path / "link.md")]) == 0  # now a report: replaced


@pytest.mark.parametrize("pair, problem", [(("m2", "nosuch"), "no column 'nosuch' in this table"),
                                           (("m2", "m2"), "the same column twice")])
def test_a_paired_comparison_names_two_of_the_tables_columns(tmp_path, pair, problem):
    with pytest.raises(SweeperError) as caught:
        report.table([paper_dir(tmp_path, "jurasinski")], layout="jurasinski", pair=pair)
    assert str(caught.value).startswith(f"--paired {','.join(pair)}: {problem}; give two of its columns (model): ")
    assert "m2" in str(caught.value) and "jurasinski" in str(caught.value)


def test_figures_and_the_html_page(sweep_dir):
    import matplotlib.image

    for config, alpha in (("m2a", 3.0), ("m2b", 30.0)):  # learning curves need epochs of completed trials
        model = "m2"
        rows = [trial_row(config, model, s, alpha=alpha) for s in range(2)]
        curve = [r for s in range(2) for r in epoch_rows(config, model, s, epochs=5)]
        results.write_configuration(sweep_dir, config, curve, rows, HYPER)
    paths = report.write_figures([sweep_dir])
    assert [p.name for p in paths] == ["accuracy.png", "learning_curves.png", "selection.png", "entropy_mi.png"]
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.shape[0] > 300 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05  # not blank
        assert p.with_suffix(".svg").read_text().startswith("<?xml")
    page = report.table([sweep_dir], fmt="html")
    assert page.count("<table class='results'>") == 1 and page.count("<table class='provenance'>") == 1
    assert page.count("data:image/png;base64,") == 4 and "<h1>x</h1>" in page
    assert "<th>alpha</th>" in page and "<figcaption>Learning curves: validation accuracy by epoch" in page  # what it shows
    markdown = report.table([sweep_dir])  # the page's cells are the markdown table's, rendered once
    cell = next(line for line in markdown.splitlines() if line.startswith("| 3")).split(" | ")[1].strip(" |*")
    assert f"<td><b>{cell.split(' [')[0]}</b>" in page or f"<td>{cell}" in page


def test_a_results_dir_with_a_schema_it_cannot_read(tmp_path):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(SweeperError, match=r"trials/x.parquet: cannot read these results \(.*\); was it written by sweeper\?$"):
        report.table([tmp_path])


def test_choosing_the_epoch_by_lowest_training_loss_against_by_validation(tmp_path):
    """Jurasiński Fig. 12: the loss keeps falling after the validation accuracy peaks."""
    import pandas as pd

    from sweeper.report.figures import _selection

    epochs = [{"trial_id": "c-seed0", "config_id": "c", "model": "m2", "seed": 0, "epoch": e, "loss": 10.0 - e,
               "val_acc": v, "test_acc": t, "wall_s": 0.1} for e, v, t in ((1, 0.5, 0.5), (2, 0.9, 0.8), (3, 0.7, 0.6))]
    rows = [{**trial_row("c", "m2", 0, test_acc=0.8, alpha=1.0), "best_val_acc": 0.9}]
    results.write_configuration(tmp_path, "c", epochs, rows, HYPER)
    figure = _selection(results.read(tmp_path), pd.DataFrame(epochs), "alpha")
    by_validation, by_loss = (line.get_ydata()[0] for line in figure.axes[0].lines[:2])
    assert (by_validation, by_loss) == (80.0, 60.0)
    # eval_every: an unmeasured epoch 4 with the lowest loss is passed over for the lowest measured one
    unmeasured = [*epochs, {**epochs[0], "epoch": 4, "loss": 1.0, "val_acc": float("nan"), "test_acc": float("nan")}]
    figure = _selection(results.read(tmp_path), pd.DataFrame(unmeasured), "alpha")
    assert figure.axes[0].lines[1].get_ydata()[0] == 60.0


def test_configurations_differ_by_exact_values_and_a_seed_run_twice_is_refused(tmp_path, tmp_path_factory):
    for i, (lr, val) in enumerate(((1.0000001e-3, 0.9), (1.0000004e-3, 0.8))):  # both print as 0.001
        rows = [{**trial_row(f"c{i}", "m2", s, test_acc=val, alpha=1.0), "lr": lr, "best_val_acc": val} for s in range(2)]
        results.write_configuration(tmp_path, f"c{i}", epoch_rows(f"c{i}", "m2", 0), rows, HYPER)
    lines = report.table([tmp_path]).splitlines()  # two rows of two seeds each, not one pool of four
    assert lines[2] == "| lr | m2 |" and lines[4:6] == ["| 0.0010000001 | **90.00 ± 0.00 (2)** |", "| 0.0010000004 | 80.00 ± 0.00 (2) |"]
    again = tmp_path_factory.mktemp("again")  # the same grid run again into another directory, same seeds
    rows = [{**trial_row("d0", "m2", s, test_acc=0.9, alpha=1.0), "lr": 1.0000001e-3, "best_val_acc": 0.9} for s in range(2)]
    results.write_configuration(again, "d0", epoch_rows("d0", "m2", 0), rows, HYPER)
    with pytest.raises(SweeperError, match=r"^seed 0 of one configuration ran in two trials \(c0-seed0 and d0-seed0\)"):
        report.table([tmp_path, again])


def test_axes_the_user_changes_leave_the_papers_figures_out(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    (published / "k.csv").write_text("table,row,column,value,std\nkingma,10,m2,11.97,1.71\n")
    text = report.table([paper_dir(tmp_path / "s", "kingma")], layout="kingma", rows="alpha,lam", compare=True, published_dir=str(published))
    assert "; paper " not in text
    assert report.table([paper_dir(tmp_path / "g", "x")], cols="alpha").splitlines()[2] == "| lam | 1 | 10 | n/a |"


def test_the_sigma2_figure_shows_the_squared_error_behind_the_gaussian_recon():
    import math

    import pandas as pd

    from sweeper.report.figures import squared_error

    sse, sigma2, d = 0.3, 0.01, 2  # circles: 2-d; recon is the labelled part's mean plus the unlabelled part's
    recon = 2 * (0.5 * (sse / 2) / sigma2 + 0.5 * d * math.log(2 * math.pi * sigma2))
    assert squared_error(pd.Series([recon]), pd.Series([sigma2]), pd.Series(["circles"])).iloc[0] == pytest.approx(sse)


def test_a_seed_stopped_by_patience_counts_and_one_a_scheduler_stopped_does_not(tmp_path):
    """Patience stops a seed at its result (test accuracy at its best validation epoch); a scheduler's stop
    cuts a configuration short, so it has none."""
    rows = [trial_row("c1", "m2", 0, test_acc=0.8, alpha=1.0),
            {**trial_row("c1", "m2", 1, status="stopped", test_acc=0.9, alpha=1.0), "stopped_by": "patience"},
            {**trial_row("c1", "m2", 2, status="stopped", test_acc=0.1, alpha=1.0), "stopped_by": "scheduler"}]
    results.write_configuration(tmp_path, "c1", [r for s in range(3) for r in epoch_rows("c1", "m2", s)], rows, HYPER)
    assert results.finished(results.read(tmp_path, "trials")).tolist() == [True, True, False]
    assert "85.00 ± 7.07 (2)" in report.table([tmp_path])


def test_the_report_says_what_precision_the_steps_ran_in(tmp_path):
    for config, precision, seeds in [("a", "bfloat16", 3), ("b", "float32", 1)]:
        rows = [{**trial_row(config, "m2", seed, alpha=float(seeds)), "precision": precision} for seed in range(seeds)]
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0), rows, HYPER)
    text = report.table([tmp_path])
    assert text.splitlines()[-1] == "precision of the training step: bfloat16 (3 trials), float32 (1 trial)"
    assert "# precision of the training step: bfloat16 (3 trials), float32 (1 trial)" in report.table([tmp_path], fmt="csv").splitlines()


def test_paired_tests_read_the_seeds_at_the_epoch_the_table_does(tmp_path):
    """--at final: the paired comparison is of final-epoch accuracies, as the table's cells are."""
    hyper = {"alpha": "number", "lam": "number"}
    final = {"m2": [0.80, 0.82], "jurasinski": [0.90, 0.96]}  # at their best epochs: 0.93, 0.95 and 0.70, 0.74
    for model, name, best in (("m2", "alpha", [0.93, 0.95]), ("jurasinski", "lam", [0.70, 0.74])):
        rows = [{**trial_row(model, model, s, test_acc=a), name: 10.0} for s, a in enumerate(best)]
        for r in rows:
            r.pop("hidden"), r.pop("lr")
        epochs = [{**row, "test_acc": final[model][s] if row["epoch"] == 2 else best[s]}
                  for s in (0, 1) for row in epoch_rows(model, model, s)]
        results.write_configuration(tmp_path, model, epochs, rows, hyper)
    text = report.table([tmp_path], layout="jurasinski", pair=("m2", "jurasinski"), at="final")
    t = stats.ttest_rel([0.80, 0.82], [0.90, 0.96]).pvalue
    assert f"| 10 | 2 | -12 | {t:.4g} |" in text


@pytest.mark.parametrize("fmt", ["markdown", "latex", "html"])
def test_a_label_with_control_characters_and_bars_stays_one_cell_of_one_line(tmp_path, fmt):
    odd = "red\x1b[31m|x\ny"
    results.write_configuration(tmp_path, "c", [], [trial_row("c", odd, s, alpha=1.0) for s in range(2)], HYPER)
    text = report.table([tmp_path], fmt=fmt)
    assert "\x1b" not in text and "red\\x1b[31m" in text.replace("\\textbackslash{}", "\\")
    if fmt == "markdown":
        header = next(line for line in text.splitlines() if line.startswith("| "))
        assert header.endswith("| red\\x1b[31m\\|x y |") and header.count(" | ") == 1
    elif fmt == "html":
        assert "<th>red\\x1b[31m|x y</th>" in text
    else:
        assert not any(line.strip() in ("y", "y \\\\") for line in text.splitlines())
