"""report.html says what a reader needs, read back with `html.parser`.

The fast-loop side of the page (the browser test is in test_html_report.py):
the run config, which node each client label is, stragglers with their
unit, constant fields in a sentence, captions, and what the summary counts.
The oracle is the run's metadata.jsonl and run_config.json, read with
`json`, and the page's own HTML, parsed by the standard library.
"""

import json
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flower_app.protocol.metadata_log import JSON_LOG
from flower_app.reporting.report import REPORT_FOLDER, write_report
from flower_app.reporting.run_records import RUN_CONFIG
from tests.crowd import EXAMPLES, RUN_CONFIG_KEPT, straggler, write_crowd


class _Page(HTMLParser):
    """The page's tables (by the heading before them), list items and captions."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.items: list[str] = []
        self.captions: list[str] = []
        self.alts: list[str] = []
        self.paragraphs: dict[str, str] = {}
        self._heading = ""
        self._text: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"h2", "td", "th", "li", "figcaption", "p"}:
            self._text = []
        elif tag == "tr":
            self._row = []
        elif tag == "table":
            self.tables[self._heading] = []
        elif tag == "img":
            self.alts.append(dict(attrs).get("alt") or "")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or [])
        if tag == "h2":
            self._heading = text
        elif tag in {"td", "th"} and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None:
            self.tables[self._heading].append(self._row)
            self._row = None
        elif tag == "li":
            self.items.append(text)
        elif tag == "figcaption":
            self.captions.append(text)
        elif tag == "p":
            self.paragraphs[self._heading] = text
        if tag in {"h2", "td", "th", "li", "figcaption", "p"}:
            self._text = None


def _page(folder: Path) -> _Page:
    write_report(folder)
    parsed = _Page()
    parsed.feed((folder / REPORT_FOLDER / "report.html").read_text())
    return parsed


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / JSON_LOG).read_text().splitlines()]


@pytest.fixture(scope="module")
def crowd(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[_Page, list[dict[str, Any]]]:
    folder = write_crowd(tmp_path_factory.mktemp("run") / "7", clients=10)
    return _page(folder), _lines(folder)


def test_the_run_config_is_on_the_page(crowd: tuple[_Page, Any]) -> None:
    page, _ = crowd
    assert page.tables["Run config"] == [
        ["key", "value"],
        *sorted([key, str(value)] for key, value in RUN_CONFIG_KEPT.items()),
    ]


def test_a_run_folder_without_its_config_says_so(tmp_path: Path) -> None:
    folder = write_crowd(tmp_path / "7", clients=2)
    (folder / RUN_CONFIG).unlink()
    page = _page(folder)
    assert "Run config" not in page.tables
    assert page.paragraphs["Run config"] == "Not kept with this run folder."


def test_every_client_label_names_its_node(crowd: tuple[_Page, Any]) -> None:
    page, lines = crowd
    nodes = sorted({int(line["nodeId"]) for line in lines if "nodeId" in line})
    rows = page.tables["Clients: label and node id"]
    assert rows[0] == ["label", "node id"]
    assert rows[1:] == [["…" + str(node)[-6:], str(node)] for node in nodes]


def test_the_straggler_is_listed_with_its_duration_in_seconds(
    crowd: tuple[_Page, Any],
) -> None:
    page, lines = crowd
    (title,) = [t for t in page.tables if t.startswith("Stragglers")]
    rows = page.tables[title]
    assert rows[0] == ["stage", "round", "client", "duration (s)", "kind"]
    slow = straggler(10)
    (seconds,) = [
        line["accepted"]["trainingTime"]
        for line in lines
        if line.get("recordKey") == "train_metadata"
        and line["nodeId"] == str(slow)
        and line["serverRound"] == 2
    ]
    round_two = [
        line["accepted"]["trainingTime"]
        for line in lines
        if line.get("recordKey") == "train_metadata" and line["serverRound"] == 2
    ]
    assert seconds > 2 * statistics.median(round_two)
    assert ["train", "2", "…" + str(slow)[-6:], f"{seconds:.3g}", "straggler"] in rows


def test_a_constant_field_is_a_sentence_not_a_plot(crowd: tuple[_Page, Any]) -> None:
    page, _ = crowd
    assert (
        f"evaluate stage: num_examples was {EXAMPLES} for every client in every "
        "round (so it is not plotted)"
    ) in page.items
    assert not [c for c in page.captions if "num_examples" in c]


def test_each_plot_has_its_caption_as_text_and_alt(crowd: tuple[_Page, Any]) -> None:
    page, _ = crowd
    assert page.captions == page.alts
    assert len(page.captions) == 6  # 7 fields of two stages, num_examples constant
    assert all(
        c.startswith(("train stage: ", "evaluate stage: ")) for c in page.captions
    )


def test_the_summary_says_what_it_counts(crowd: tuple[_Page, Any]) -> None:
    page, lines = crowd
    for key, stage in (("train_metadata", "train"), ("evaluate_metadata", "evaluate")):
        accepted = sum(
            line.get("recordKey") == key and ("accepted" in line or "evaluated" in line)
            for line in lines
        )
        assert accepted == 30  # 10 clients, 3 rounds
        assert (
            f"{stage} stage, replies over all rounds: {accepted} accepted, "
            "0 rejected, 0 failed"
        ) in page.items
    assert "3 rounds, 10 clients" in page.items
