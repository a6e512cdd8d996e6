"""Fixtures: Hypothesis profiles, message identity, npm packages, simulations.

Plain helpers live in tests/helpers.py.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flwr.clientapp import ClientApp
from flwr.simulation import run_simulation
from hypothesis import settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from flower_app.app import server_app
from flower_app.app import settings as settings_module
from flower_app.run import MetadataRun
from flower_app.server.strategy import MetadataStrategy
from tests.helpers import ROOT, TYPESCRIPT, require, require_file
from tests.testing import as_in_a_server_app

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
"""`HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py` runs 10,000 examples a test."""
os.environ.setdefault("RAY_worker_niceness", "0")
"""Ray starts simulation workers at niceness 15: beside busy processes they get
a few percent of a core (one strategy's simulation took 10 minutes, not 17 s,
under tests.busy). Here they run at the suite's own priority; subprocesses
(flwr run, SuperLinks) inherit it."""


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The TypeScript consumer's npm packages, installed from its lock file."""
    npm = require("npm", "Node.js 20+ and npm (Debian: nodejs npm)")
    package = json.loads((TYPESCRIPT / "package.json").read_text())
    wanted = {**package["dependencies"], **package["devDependencies"]}
    installed = TYPESCRIPT / "node_modules"
    if not all((installed / name / "package.json").is_file() for name in wanted):
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT, check=True
        )
    return installed


@pytest.fixture(scope="session")
def typescript_build(node_modules: Path) -> Path:
    """The TypeScript reader and its tools, compiled: their folder in dist/."""
    subprocess.run([node_modules / ".bin" / "tsc", "-p", TYPESCRIPT], check=True)
    return TYPESCRIPT / "dist" / "examples" / "typescript" / "src"


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C++ reader and its tools, built with CMake: their build folder."""
    cmake = require("cmake", "cmake (Debian: cmake)")
    require("protoc", "Debian's protobuf-compiler and libprotobuf-dev")
    require_file(Path("/usr/include/re2/re2.h"), "Debian's libre2-dev")
    build = tmp_path_factory.mktemp("cpp-build")
    source = str(ROOT / "examples" / "cpp")
    python = f"-DFLOWER_META_PYTHON={sys.executable}"  # writes validate.proto's set
    for step in (
        ["-S", source, "-B", str(build), python],
        ["--build", str(build), "-j2"],
    ):
        done = subprocess.run([cmake, *step], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    return build


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Undo what an in-process simulation leaves in os.environ.

    Ray sets PYTHONPATH (this checkout included) and PYTHONBREAKPOINT for the
    whole process; later subprocesses would then import the project from the
    checkout, hiding a FAB or wheel that lacks a file.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def task_identity() -> None:
    """Messages need a run and task identity, as inside a real ServerApp."""
    as_in_a_server_app()


Simulate = Callable[[ClientApp, int], MetadataStrategy[Any]]


AppRunConfig = Callable[[dict[str, Any]], None]


@pytest.fixture
def app_run_config(monkeypatch: pytest.MonkeyPatch) -> AppRunConfig:
    """Set run-config keys of the example app for `simulate`'s run.

    `run_simulation` gives the ServerApp an empty run config, which the app
    fills from pyproject.toml: these keys take the defaults' place there, for
    the app's settings and the library's keys alike (the simulated
    ClientApps, in their own processes, keep the defaults).
    """

    def override(keys: dict[str, Any]) -> None:
        defaults = settings_module.pyproject_run_config()
        monkeypatch.setattr(
            server_app, "pyproject_run_config", lambda: {**defaults, **keys}
        )

    return override


@pytest.fixture
def simulate(monkeypatch: pytest.MonkeyPatch) -> Simulate:
    """Run the real ServerApp in-process against `client` on `nodes` SuperNodes.

    Returns the strategy the ServerApp used, to inspect its round reports.
    """

    def run(client: ClientApp, nodes: int) -> MetadataStrategy[Any]:
        strategies: list[MetadataStrategy[Any]] = []
        wrap = MetadataRun.wrap

        def recorded(run: MetadataRun, strategy: Any) -> MetadataStrategy[Any]:
            strategies.append(wrap(run, strategy))
            return strategies[-1]

        monkeypatch.setattr(MetadataRun, "wrap", recorded)
        run_simulation(
            server_app=server_app.app,
            client_app=client,
            num_supernodes=nodes,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
        )
        (strategy,) = strategies
        return strategy

    return run


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium, with no network access of its own (but localhost)."""
    binary = require("chromium", "Debian's chromium and chromium-driver")
    driver = require("chromedriver", "Debian's chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()
