"""A run of 1,000 clients in the trackers' own UIs: real servers, a real browser.

`flower-meta export` writes a crowd run (`tests.crowd`) to TensorBoard and
MLflow; `tensorboard` and `mlflow ui` serve it; headless Chromium opens the
pages the export prints. The charts must be drawn, hold the run's numbers
(the oracle: metadata.jsonl, read with `json`), and stay few: the per-client
charts are capped, whatever the number of clients. The screenshots are kept
(in $FLOWER_META_ARTIFACTS if set).
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from flower_app.protocol.metadata_log import JSON_LOG
from flower_app.reporting.trackers import MLFLOW_UI, TRACKED_CLIENTS
from tests.crowd import write_crowd
from tests.testing import VENV_BIN, free_port, pids_with, stop

pytestmark = pytest.mark.e2e
CLIENTS = 1000
PATIENCE = 300
"""Seconds a server or a page may take to come up on a busy machine."""


@contextmanager
def _serve(command: list[str], home: Path, url: str) -> Iterator[None]:
    """Run a server until `url` answers, and until the block ends.

    Its environment is marked with a FLWR_HOME of its own, so it and every
    process it starts are found, and stopped, by pid.
    """
    home.mkdir()
    env = {**os.environ, "FLWR_HOME": str(home)}
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            assert server.poll() is None, (home / "server.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=10):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"{command[0]} never served {url}"
                time.sleep(1)
        yield
    finally:
        stop(pids_with(home))
        server.wait()
        log.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The run folder, the MLflow store and what the MLflow export printed."""
    root = tmp_path_factory.mktemp("uis")
    run = write_crowd(root / "runs" / "7", CLIENTS)
    store = f"sqlite:///{root / 'mlflow.db'}"
    said = []
    for to in (["--to", "mlflow", "--tracking-uri", store], ["--to", "tensorboard"]):
        done = subprocess.run(
            [str(VENV_BIN / "flower-meta"), "export", str(run), *to],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        said.append(done.stdout)
    return run, store, said[0]


def _accuracies(run: Path) -> list[float]:
    """The server's centralized accuracy per round, from metadata.jsonl."""
    lines = [json.loads(line) for line in (run / JSON_LOG).read_text().splitlines()]
    return [
        line["centralized"]["metrics"]["accuracy"]
        for line in sorted(lines, key=lambda line: line.get("serverRound", 0))
        if "centralized" in line
    ]


def _keep(browser: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    assert browser.save_screenshot(str(shot))
    if artifacts := os.environ.get("FLOWER_META_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / name)


def test_tensorboard_draws_the_run(
    browser: webdriver.Chrome,
    exported: tuple[Path, str, str],
    tmp_path: Path,
) -> None:
    run, _, _ = exported
    port = free_port()
    command = [
        str(VENV_BIN / "tensorboard"),
        "--logdir",
        str(run.parent.with_name("runs-trackers") / "tensorboard"),  # every run
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    url = f"http://127.0.0.1:{port}"
    with _serve(command, tmp_path / "tensorboard-home", f"{url}/data/runs"):
        browser.get(f"{url}/?tagFilter=centralized#timeseries")
        wait = WebDriverWait(browser, PATIENCE)
        card = wait.until(
            lambda b: next(
                (
                    c
                    for c in b.find_elements(By.TAG_NAME, "scalar-card")
                    if "centralized/accuracy" in "".join(c.text.split())
                    and c.find_elements(By.TAG_NAME, "canvas")
                ),
                None,
            )
        )
        assert card is not None
        wait.until(lambda _: "Value" in card.text)
        last = _accuracies(run)[-1]
        assert f"{last:g}" in card.text.split("Value", 1)[1]  # the last round's
        _keep(browser, tmp_path, "tensorboard-1000-clients.png")
        with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags") as answer:
            tags = json.load(answer)[run.name]  # one TensorBoard run per run folder
        per_client = [tag for tag in tags if "/node_" in tag]
        assert per_client
        assert (
            len({tag.rsplit("/node_", 1)[1] for tag in per_client}) == TRACKED_CLIENTS
        )


def test_mlflow_shows_the_run_where_the_export_says(
    browser: webdriver.Chrome,
    exported: tuple[Path, str, str],
    tmp_path: Path,
) -> None:
    run, store, said = exported
    (page,) = re.findall(r"open (\S+)", said)
    assert page.startswith(f"{MLFLOW_UI}/#/experiments/")
    port = free_port()
    command = [
        str(VENV_BIN / "mlflow"),
        "ui",
        "--backend-store-uri",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    with _serve(command, tmp_path / "mlflow-home", f"{url}/health"):
        browser.get(page.replace(MLFLOW_UI, url))
        wait = WebDriverWait(browser, PATIENCE)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
        drawn = wait.until(
            lambda b: b.execute_script(
                "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".flatMap(p => (p.data || []).map(t => Array.from(t.y)))"
            )
        )
        assert _accuracies(run) in drawn  # the centralized accuracy chart
        assert [float(CLIENTS)] * 3 in drawn  # train/accepted, every round
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Evaluation runs" not in body  # the model-training view, not GenAI
        _keep(browser, tmp_path, "mlflow-1000-clients.png")
    client = MlflowClient(tracking_uri=store)
    (found,) = client.search_runs([page.split("/experiments/")[1].split("/")[0]])
    per_client = [m for m in found.data.metrics if "/node_" in m]
    assert len({m.rsplit("/node_", 1)[1] for m in per_client}) == TRACKED_CLIENTS
