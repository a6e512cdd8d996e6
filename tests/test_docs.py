"""The README's two commands are the ones CI and users run."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _bash_blocks()[1]
    assert test_command.endswith("pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_run_command_is_flwr_run_on_this_app() -> None:
    run_command = _bash_blocks()[0]
    assert "flwr run . --stream" in run_command
    assert run_command.startswith("python3.11 -m venv .venv")


def test_every_run_config_key_is_documented() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for key in config["tool"]["flwr"]["app"]["config"]:
        assert f"| `{key}` |" in README, f"README misses run-config key {key!r}"
