"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

.ci/run installs chromium and sets SWEEPER_REQUIRE_BROWSER=1, so that there a missing browser fails
instead of skipping.
"""
import io
import os
import shutil

import pytest

from helpers import HYPER, epoch_rows, tiny_spec, trial_row
from sweeper import provenance, results
from sweeper.cli import main


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("SWEEPER_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    return found


@pytest.fixture
def report_page(tmp_path):
    """A report.html of two baseline configurations (hidden 16 and 32), two seeds each, with figures."""
    from sweeper.spec import parse, to_yaml

    out = tmp_path / "sweep"
    out.mkdir()
    spec = parse(tiny_spec(name="browser-check", description="two widths of the baseline, two seeds each", models=["baseline"],
                           search={"hidden": [16, 32]}, fixed={}))
    (out / "spec.yaml").write_text(to_yaml(spec))
    for config_id, hidden, accuracies in (("c0", 16.0, (0.90, 0.92)), ("c1", 32.0, (0.80, 0.82))):
        trials = [trial_row(config_id, "baseline", seed, test_acc=acc, hidden=hidden) for seed, acc in enumerate(accuracies)]
        epochs = [row for seed in (0, 1) for row in epoch_rows(config_id, "baseline", seed, epochs=3)]
        results.write_configuration(out, config_id, epochs, trials, HYPER)
    provenance.start(out, "run", False)
    provenance.finish(out)
    assert main(["report", str(out), "--format", "html"]) == 0
    return out / "report.html"


def test_the_html_report_loads_in_chromium_with_its_table_figures_and_provenance(report_page, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            problems = []
            page.on("console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(report_page.as_uri(), wait_until="load")
            title, lead = page.inner_text("h1"), page.inner_text("p.description")
            header = page.eval_on_selector_all("table.results th", "cells => cells.map(c => c.innerText.trim())")
            cells = page.eval_on_selector_all("table.results td", "cells => cells.map(c => c.innerText.trim())")
            images = page.eval_on_selector_all("img", "all => all.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            captions = page.eval_on_selector_all("figcaption", "all => all.map(c => c.innerText)")
            provenance_rows = page.eval_on_selector_all("table.provenance tr", "rows => rows.map(r => r.innerText)")
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert title == "browser-check" and lead == "two widths of the baseline, two seeds each"
    assert header == ["hidden", "baseline", "16", "32"] and cells == ["91.00 ± 1.41 (2)", "81.00 ± 1.41 (2)"]
    assert len(images) >= 3 and all(complete and width > 0 and height > 0 for complete, width, height in images)
    assert "Learning curves: validation accuracy by epoch, mean and ±1 std over seeds, per model" in " ".join(captions)
    assert not any(caption.endswith(("accuracy", "learning_curves", "entropy_mi")) for caption in captions)  # no file names
    assert len(provenance_rows) == 2 and "run" in provenance_rows[1] and "torch" in provenance_rows[0]
    picture = Image.open(io.BytesIO(shot)).convert("L")
    assert picture.height > 900 and sum(1 for count in picture.histogram() if count) > 20  # text and figures, not a blank page
