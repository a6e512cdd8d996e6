"""ruff and mypy stay clean (mypy strict on flower_app/, typed by generated stubs)."""

import subprocess

import pytest

from tests.helpers import ROOT
from tests.testing import VENV_BIN


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "--strict", "flower_app", "tests", "benchmarks"],
    ],
    ids=" ".join,
)
def test_tool_is_clean(command: list[str]) -> None:
    tool, *args = command
    result = subprocess.run(
        [str(VENV_BIN / tool), *args], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
