"""The READMEs say what is true: commands CI and users run, keys, links."""

import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()
READMES = sorted(
    p
    for p in ROOT.rglob("README.md")
    if not any(
        part == "node_modules" or part.startswith(".")  # .venv, .pytest_cache
        for part in p.relative_to(ROOT).parts
    )
)


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _bash_blocks()[1]
    assert test_command.endswith("pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_run_command_is_flwr_run_on_this_app_from_a_venv_outside_it() -> None:
    run_command = _bash_blocks()[0]
    assert "flwr run . --stream" in run_command
    venv = re.match(r"python3\.11 -m venv (\S+) ", run_command)
    assert venv is not None
    assert venv.group(1).startswith("~/"), "a venv inside the app folder slows flwr run"
    assert run_command.startswith(_bash_blocks()[1].split(" && pip")[0])


def test_every_run_config_key_is_documented_beside_the_app() -> None:
    app_readme = (ROOT / "flower_app" / "app" / "README.md").read_text()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for key in config["tool"]["flwr"]["app"]["config"]:
        assert f"| `{key}` |" in app_readme, f"README misses run-config key {key!r}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(readme: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme.read_text()):
        assert (readme.parent / target).exists(), f"{readme}: no {target}"


def test_the_top_readme_stays_short() -> None:
    assert len(README.splitlines()) <= 110


def test_the_library_layout_names_every_module() -> None:
    layout = re.search(
        r"```text\n(.*?)\n```",
        (ROOT / "flower_app" / "README.md").read_text(),
        flags=re.DOTALL,
    )
    assert layout is not None
    words = set(re.findall(r"[\w.]+", layout.group(1)))
    modules = {
        p.stem if p.parent.name != "flower_app" else p.name
        for p in (ROOT / "flower_app").rglob("*.py")
        if p.stem not in {"__init__", "__main__"}
    }
    folders = {
        p.parent.name + "/" for p in (ROOT / "flower_app").rglob("*/__init__.py")
    }
    assert not modules - words, "modules missing from flower_app/README.md"
    assert all(folder in layout.group(1) for folder in folders)


def test_package_and_schema_share_one_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    latest = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert latest is not None
    assert version == latest.group(1)
    major, minor, _ = version.split(".")
    assert f"New in v{major}.{minor}:" in (ROOT / "proto" / "README.md").read_text()
    packages = {p.parent.name for p in ROOT.glob("proto/flower_meta/*/*.proto")}
    assert packages == {f"v{major}"}


def test_the_run_command_installs_what_the_example_app_imports() -> None:
    """Every package the example app imports comes with the core or `example`."""
    import ast
    import tomllib
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        found = set()
        for text in requirements:
            requirement = Requirement(text)
            if requirement.name == project["name"]:
                for extra in requirement.extras:
                    found |= names(extras[extra])
            else:
                found.add(requirement.name.lower())
        return found

    assert "pip install -e '.[example]'" in _bash_blocks()[0]
    installed = names(project["dependencies"]) | names(extras["example"])
    modules = set()
    for path in (ROOT / "flower_app" / "app").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    distributions = packages_distributions()
    third_party = {
        dist.lower()
        for module in modules
        for dist in distributions.get(module, [])
        if module not in {"flower_app", "flower_meta"}
    }
    assert {"torch", "scikit-learn", "flwr-datasets"} <= third_party
    assert third_party <= installed, third_party - installed
    assert not {"torch", "scikit-learn", "matplotlib"} & names(project["dependencies"])
