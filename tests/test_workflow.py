"""The copyable CI workflow runs the README's commands: the CPU torch install, the package install, the tests."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    lines = [re.sub(r"^\s*(run:\s*)?", "", line) for line in text.splitlines()]
    return [line.strip() for line in lines if re.match(r"(pip install|pytest)\b", line)]


def test_workflow_uses_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    workflow = _commands((REPO / ".github" / "workflows" / "book.yml").read_text())
    assert workflow == [
        "pip install torch --index-url https://download.pytorch.org/whl/cpu",
        'pip install -e ".[dev]"',
        "pytest",
    ]
    assert "`pip install torch --index-url https://download.pytorch.org/whl/cpu`" in readme  # the CPU-only row
    assert 'pip install -e ".[dev]" && pytest' in readme  # "Pass the tests"
