"""The documentation holds together: every relative link resolves, and every figure docs/performance.md
quotes carries the command that measures it."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_readme_is_short_enough_to_finish():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


MEASURED = re.compile(r"\d[\d,.]*\s?(ms|s|×|GFLOP/s|%)(?!\w)")
COMMAND = re.compile(r"`[^`]*(sweeper |python |benchmarks/)[^`]*`")


def test_every_performance_figure_carries_its_command():
    """A paragraph (or a table, with the paragraph before it) that quotes a measured figure names a command."""
    blocks = re.split(r"\n\s*\n", (ROOT / "docs" / "performance.md").read_text())
    missing, previous = [], ""
    for block in blocks:
        context = block if not block.lstrip().startswith("|") else previous + "\n" + block
        if MEASURED.search(block) and not COMMAND.search(context):
            missing.append(block.strip()[:120])
        if not block.lstrip().startswith("|"):
            previous = block
    assert missing == []
