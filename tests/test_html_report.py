"""report.html in a real browser: headless Chromium, driven by Selenium.

The page must load offline without a console error, show the run's rounds
and clients, draw every plot, and show client text as text, never as markup.
Its screenshot is kept (in $FLOWER_META_ARTIFACTS if set).
"""

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from flower_app.protocol.metadata_log import MetadataLog
from flower_app.reporting.report import write_report
from flower_meta.v1.metadata_pb2 import Failure, MetadataLogRecord, Rejection
from tests.helpers import sample_metadata

pytestmark = pytest.mark.e2e
FORGED = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"


def _record(server_round: int, node: int) -> MetadataLogRecord:
    key = "train_metadata" if node else ""
    return MetadataLogRecord(
        run_id=7, server_round=server_round, node_id=node, record_key=key
    )


SLOW = (12, 2)
"""(node, round): a straggler, 5.12 s against a median of 1.135 s."""


def _run(folder: Path) -> Path:
    """Three rounds of five clients: four accepted, one rejected with a forged
    reason (or, in round 3, failed)."""
    metadata_log = MetadataLog(folder)
    for server_round in (1, 2, 3):
        for node in (11, 12, 13, 14):
            record = _record(server_round, node)
            record.accepted.CopyFrom(sample_metadata(3))
            slow = 4.0 if (node, server_round) == SLOW else 0.0
            record.accepted.training_time = 1.0 + node / 100 + slow
            metadata_log.append(record)
        bad = _record(server_round, 15)
        if server_round == 3:
            bad.failed.CopyFrom(Failure(reason="no reply before the round's timeout"))
        else:
            rejection = Rejection(reason="malformed", detail=FORGED)
            bad.rejected.CopyFrom(rejection)
        metadata_log.append(bad)
        centralized = _record(server_round, 0)
        centralized.centralized.metrics["accuracy"] = 0.5 + server_round / 10
        metadata_log.append(centralized)
    metadata_log.close()
    return folder


def test_the_page_loads_offline_and_shows_the_run(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    run = _run(tmp_path / "7")
    _, written = write_report(run)
    page = run / "report" / "report.html"
    assert page in written
    browser.get(page.as_uri())

    assert browser.title == "Flower run 7: metadata report"
    assert browser.find_element(By.ID, "rounds").text == "3"
    assert browser.find_element(By.ID, "clients").text == "5"
    logged = browser.get_log("browser")  # type: ignore[no-untyped-call]
    assert [entry for entry in logged if entry["level"] == "SEVERE"] == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images == [True] * (len(written) - 1)  # every plot drawn, none broken
    first = browser.find_elements(By.CSS_SELECTOR, "table")[0]
    rows = first.find_elements(By.CSS_SELECTOR, "tbody tr")
    cells = [row.find_elements(By.TAG_NAME, "td") for row in rows]
    assert [[c.text for c in row[:4]] for row in cells] == [
        ["1", "4", "1", "0"],
        ["2", "4", "1", "0"],
        ["3", "4", "0", "1"],
    ]
    body = browser.find_element(By.TAG_NAME, "body").text
    assert FORGED in body  # shown as text, not run
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert "train 2 12 5.12 straggler" in body
    assert "no reply before the round's timeout" in body

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    if artifacts := os.environ.get("FLOWER_META_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report.png")


def test_the_page_needs_nothing_from_the_network(tmp_path: Path) -> None:
    run = _run(tmp_path / "7")
    write_report(run)
    html = (run / "report" / "report.html").read_text()
    assert "http://" not in html
    assert "https://" not in html
    assert "<link" not in html
