from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("Run the tests:\n\n```\n", 1)[1].split("\n```", 1)[0]
    assert command.startswith("pip install torch==2.13.0") and "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci
