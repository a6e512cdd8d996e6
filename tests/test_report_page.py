"""report.html says what a reader needs, read back with `html.parser`.

The fast-loop side of the page (the browser test is in test_html_report.py):
the run config, which node each client label is, stragglers with their
unit, fields with one value (or none) in a sentence, captions, and what the
summary counts.
The oracle is the run's metadata.jsonl and run_config.json, read with
`json`, and the page's own HTML, parsed by the standard library.
"""

import json
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import DoubleValue

from flower_app.outcomes.replay import RUN_CONFIG, run_config
from flower_app.protocol.metadata_log import JSON_LOG, MetadataLog
from flower_app.reporting.html import _cell as HTML_CELL
from flower_app.reporting.report import REPORT_FOLDER, write_report
from flower_meta.v1.metadata_pb2 import (
    EgressNote,
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)
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
    page, lines = crowd
    sent = {line["evaluated"]["numExamples"] for line in lines if "evaluated" in line}
    assert sent == {EXAMPLES}
    assert (
        f"evaluate stage: num_examples was {EXAMPLES} for every client in every round"
    ) in page.items
    assert not [c for c in page.captions if "num_examples" in c]


def _train_replies(folder: Path, replies: list[TrainProcessMetadata]) -> None:
    log = MetadataLog(folder)
    for node, meta in enumerate(replies, start=1):
        record = _stage_record(node)
        record.accepted.CopyFrom(meta)
        log.append(record)
    log.close()


def test_a_field_no_client_sent_is_a_sentence_not_a_plot(tmp_path: Path) -> None:
    _train_replies(
        tmp_path, [TrainProcessMetadata(training_time=t) for t in (1.0, 2.0)]
    )
    page = _page(tmp_path)
    assert "train stage: converged: no client reported it" in page.items
    assert "train stage: training_losses: no client reported it" in page.items
    assert [c.split(":")[1] for c in page.captions] == [" training_time (s)"]


def test_a_value_some_clients_left_out_is_plotted_not_called_the_same(
    tmp_path: Path,
) -> None:
    _train_replies(
        tmp_path,
        [
            TrainProcessMetadata(training_time=1.0, converged=True),
            TrainProcessMetadata(training_time=1.0),  # converged not reported
        ],
    )
    page = _page(tmp_path)
    assert [c.split(":")[1] for c in page.captions] == [" converged"]
    assert "train stage: training_time was 1 s for every client in every round" in (
        page.items
    )
    assert not [i for i in page.items if i.startswith("train stage: converged")]


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


def test_the_centralized_table_is_the_servers_metric_per_round(
    crowd: tuple[_Page, Any],
) -> None:
    page, lines = crowd
    rows = page.tables["centralized evaluation (the server's test set), by round"]
    expected = [
        [
            str(line.get("serverRound", 0)),
            f"{line['centralized']['metrics']['accuracy']:.4g}",
        ]
        for line in lines
        if "centralized" in line
    ]
    assert rows == [["round", "accuracy"], *expected]
    assert page.paragraphs["Refusals and failures"] == (
        "None: every reply was accepted."
    )


def _stage_record(node: int, server_round: int = 1) -> MetadataLogRecord:
    return MetadataLogRecord(
        run_id=7, server_round=server_round, node_id=node, record_key="train_metadata"
    )


def test_egress_refusals_and_undecodable_records_are_each_shown(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path, json_lines=False)  # no mirror: no schema has them
    kept = _stage_record(123)
    kept.accepted.CopyFrom(TrainProcessMetadata(training_time=1.0))
    kept.egress.CopyFrom(EgressNote(withheld=["training_losses"]))
    log.append(kept)
    plain = _stage_record(124)
    plain.accepted.CopyFrom(TrainProcessMetadata(training_time=2.0))
    plain.egress.CopyFrom(EgressNote())  # an empty note: nothing kept back
    log.append(plain)
    refused = _stage_record(125)
    refused.rejected.CopyFrom(Rejection(reason="malformed", detail="<b>x</b>"))
    log.append(refused)
    broke = _stage_record(126)
    broke.rejected.CopyFrom(
        Rejection(
            reason="out_of_range",
            detail="x: must be >= 0, got -1",
            field_path="x",
            rule_id="double.gte",
        )
    )
    log.append(broke)
    for node in range(200, 207):  # 7 records of a type no schema holds
        unknown = _stage_record(node)
        unknown.accepted_other.type_url = f"type.googleapis.com/no.Such{node}"
        log.append(unknown)
    log.close()
    page = _page(tmp_path)
    assert page.tables["train: what node egress policies kept back"] == [
        ["client", "policy"],
        ["123", "withheld training_losses"],
    ]
    assert page.tables["Refusals and failures"][1] == [
        "train",
        "1",
        "125",
        "rejected",
        "malformed: <b>x</b>",
    ]
    assert page.tables["Refusals and failures"][2][-1] == (
        "out_of_range: x: must be >= 0, got -1 (rule double.gte)"
    )
    (undecodable,) = [i for i in page.items if "could not be decoded" in i]
    assert undecodable.startswith("7 records could not be decoded")
    assert [f"no.Such{n}" in undecodable for n in range(200, 207)] == [True] * 5 + [
        False
    ] * 2  # the first five are named


def test_numbers_are_right_aligned_cells_and_text_is_not(tmp_path: Path) -> None:
    folder = write_crowd(tmp_path / "7", clients=2)
    write_report(folder)
    html = (folder / REPORT_FOLDER / "report.html").read_text()
    assert "<td class=text>local-epochs</td><td>4</td>" in html
    assert "<td class=text>lr</td><td>0.05</td>" in html
    assert HTML_CELL("-1e-05") == "<td>-1e-05</td>"
    assert HTML_CELL("50% true") == "<td>50% true</td>"
    assert HTML_CELL("-") == "<td>-</td>"
    assert HTML_CELL("1.2.3") == "<td class=text>1.2.3</td>"
    assert HTML_CELL("e") == "<td class=text>e</td>"


@pytest.mark.parametrize(("size", "kept"), [(1 << 20, True), ((1 << 20) + 1, False)])
def test_a_run_config_of_up_to_a_mebibyte_is_read(
    tmp_path: Path, size: int, kept: bool
) -> None:
    text = json.dumps({"lr": 0.05})
    (tmp_path / RUN_CONFIG).write_text(text + " " * (size - len(text)))
    told: list[str] = []
    assert run_config(tmp_path, told.append) == ({"lr": "0.05"} if kept else {})
    assert bool(told) is not kept


def test_an_own_message_type_is_read_with_the_logs_schema(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path, types=[DoubleValue])  # the log keeps its schema
    for node, value in ((1, 0.25), (2, 0.75)):
        record = _stage_record(node)
        record.accepted_other.Pack(DoubleValue(value=value))
        log.append(record)
    log.close()
    page = _page(tmp_path)
    assert page.captions == [
        "train stage: value: each client's value per round "
        "(hollow: its first report) and the round's median."
    ]
    assert page.tables["train: DoubleValue, by round"] == [
        ["round", "accepted", "rejected", "failed", "value, median"],
        ["1", "2", "0", "0", "0.5"],  # the median of 0.25 and 0.75
    ]
    assert not [i for i in page.items if "could not be decoded" in i]
