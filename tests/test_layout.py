"""The house's walls: no import circles between sweeper's modules (function-level imports count), and the
Ray-side searchers and trackers run without torch."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sweeper"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The sweeper modules a file imports anywhere in it, resolved to module names."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_no_module_imports_one_that_imports_it_back():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}
    circles = []

    def visit(name, trail):
        for nxt in graph[name]:
            if nxt in trail:
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif len(trail) < 12:
                visit(nxt, trail + [nxt])

    for start in ("sweeper.tracking", "sweeper.sweep", "sweeper.bench", "sweeper.estimate", "sweeper.searchers", "sweeper.results"):
        visit(start, [start])
    package_init = {"sweeper", "sweeper.models", "sweeper.data", "sweeper.report"}  # a package imports its own modules
    circles = [c for c in circles if not set(c) & package_init]
    assert circles == []


def test_the_searchers_and_trackers_import_no_torch():
    code = "import sys, sweeper.searchers, sweeper.tracking, sweeper.ids, sweeper.results; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_validating_every_shipped_spec_imports_no_torch():
    specs = sorted(str(p) for p in (Path(__file__).resolve().parent.parent / "search_spaces").glob("*.yaml"))
    code = ("import sys; from sweeper.cli import main\n"
            f"codes = [main(['validate', s]) for s in {specs!r}] + [main(['validate', s, '--scale', 'smoke']) for s in {specs!r}]\n"
            "print(set(codes), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "{0} False", done.stdout[-500:]
