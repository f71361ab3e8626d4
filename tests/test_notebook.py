"""The example notebook runs end to end (at smoke scale), so that it cannot rot."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.ray


def test_the_quickstart_notebook_runs_and_shows_its_table_and_figures(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("SWEEPER_NOTEBOOK_SCALE", "smoke")
    notebook = nbformat.read(ROOT / "docs" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "docs")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o.get("data", {}) for o in outputs if o.output_type in ("execute_result", "display_data")]
    assert any("<table class='results'>" in d.get("text/html", "") for d in shown)  # the table, as HTML
    assert any("image/png" in d for d in shown)  # a figure, drawn inline
    assert any("trial_id" in d.get("text/plain", "") for d in shown)  # the kept model's description
