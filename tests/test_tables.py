"""The summary tables show what their headings say, recomputed from metadata.jsonl.

The fixture's clients differ (so a median, a mean and a weighted mean all
differ), rounds have even and odd client counts, one round has failures
only, and the oracle reads the JSON lines with `json` and `statistics`,
never through the reporting code.
"""

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FieldOptions

from flower_app.outcomes.replay import load
from flower_app.outcomes.statistics import numeric_fields
from flower_app.protocol.metadata_log import JSON_LOG, MetadataLog
from flower_app.reporting.tables import (
    Table,
    as_rich,
    as_text,
    tables,
)
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    Failure,
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)

# Per round: (training_time, losses, converged or None), one tuple a client.
TRAIN: dict[int, list[tuple[float, list[float], bool | None]]] = {
    1: [
        (1.0, [0.9, 0.1], True),
        (2.0, [0.8, 0.4], False),
        (10.0, [0.7, 0.5], True),
        (20.0, [0.6, 3.0], None),
    ],
    2: [(3.0, [0.5, 0.2], True), (4.5, [0.4, 0.3], True), (30.0, [0.3, 0.25], False)],
}
EVALUATE = {1: [(0.2, 10, 0.9, 0.5), (0.4, 30, 0.6, 0.7)]}
"""Per round: (evaluation_time, num_examples, loss, accuracy) a client."""


@pytest.fixture
def run(tmp_path: Path) -> Path:
    log = MetadataLog(tmp_path)
    node = 0
    for server_round, clients in TRAIN.items():
        for seconds, losses, converged in clients:
            node += 1
            record = MetadataLogRecord(
                run_id=1,
                server_round=server_round,
                node_id=node,
                record_key="train_metadata",
            )
            meta = TrainProcessMetadata(training_time=seconds, training_losses=losses)
            if converged is not None:
                meta.converged = converged
            record.accepted.CopyFrom(meta)
            log.append(record)
    failed = MetadataLogRecord(
        run_id=1, server_round=3, node_id=99, record_key="train_metadata"
    )
    failed.failed.CopyFrom(Failure(reason="error reply: boom"))
    log.append(failed)
    for server_round, evaluated in EVALUATE.items():
        for seconds, examples, loss, accuracy in evaluated:
            node += 1
            record = MetadataLogRecord(
                run_id=1,
                server_round=server_round,
                node_id=node,
                record_key="evaluate_metadata",
            )
            record.evaluated.CopyFrom(
                EvaluateProcessMetadata(
                    evaluation_time=seconds,
                    num_examples=examples,
                    loss=loss,
                    accuracy=accuracy,
                )
            )
            log.append(record)
    log.close()
    return tmp_path


def _column(table: Table, starts: str) -> dict[str, str]:
    (index,) = [i for i, c in enumerate(table.columns) if c.startswith(starts)]
    return {row[0]: row[index] for row in table.rows}


def _lines(folder: Path) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Outcome -> round -> the JSON objects of that outcome."""
    found: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for line in (folder / JSON_LOG).read_text().splitlines():
        record = json.loads(line)
        outcome = next(k for k in ("accepted", "evaluated", "failed") if k in record)
        found[outcome][record.get("serverRound", 0)].append(record.get(outcome, {}))
    return found


def test_every_train_cell_is_the_median_its_heading_names(run: Path) -> None:
    (train, *_) = tables(load(run))
    lines = _lines(run)
    times = _column(train, "training_time (s), median")
    losses = _column(train, "last epoch: training_losses (nats/example), median")
    converged = _column(train, "converged")
    accepted = _column(train, "accepted")
    failed = _column(train, "failed")
    for server_round in (1, 2):
        mine = lines["accepted"][server_round]
        median_time = statistics.median(float(m["trainingTime"]) for m in mine)
        assert times[str(server_round)] == f"{median_time:.4g}"
        last = [m["trainingLosses"][-1] for m in mine]
        assert losses[str(server_round)] == f"{statistics.median(last):.4g}"
        said = [m["converged"] for m in mine if "converged" in m]
        share = said.count(True) / len(said)
        assert converged[str(server_round)] == f"{share:.0%} true"
        assert accepted[str(server_round)] == str(len(mine))
    # Round 1 has four clients: its median is no mean, weighted or not.
    assert times["1"] == "6"
    assert losses["1"] == "0.45"
    assert failed == {"1": "0", "2": "0", "3": "1"}
    assert times["3"] == "-"


def test_every_evaluate_cell_is_the_median_its_heading_names(run: Path) -> None:
    evaluate = next(t for t in tables(load(run)) if "Evaluate" in t.title)
    mine = _lines(run)["evaluated"][1]
    for field, json_name in (
        ("evaluation_time", "evaluationTime"),
        ("loss", "loss"),
        ("accuracy", "accuracy"),
    ):
        column = _column(evaluate, f"{field} (")
        median = statistics.median(float(m[json_name]) for m in mine)
        assert column["1"] == f"{median:.4g}"
    heading = next(c for c in evaluate.columns if c.startswith("loss"))
    assert heading.endswith(", median")


def _centralized_run(folder: Path) -> Path:
    """Centralized records whose metrics differ by round; an old-style rejection."""
    log = MetadataLog(folder)
    for server_round, metrics in {
        0: {"accuracy": 0.1},
        1: {"accuracy": 0.5, "loss": 2.0},
    }.items():
        record = MetadataLogRecord(run_id=1, server_round=server_round)
        record.centralized.metrics.update(metrics)
        log.append(record)
    old = MetadataLogRecord(run_id=1, server_round=1, node_id=5)  # no record key
    old.rejected.CopyFrom(Rejection(reason="malformed", record_key="train_metadata"))
    log.append(old)
    log.close()
    return folder


def test_the_centralized_table_shows_each_rounds_metrics(tmp_path: Path) -> None:
    found = tables(load(_centralized_run(tmp_path)))
    (centralized,) = [t for t in found if t.title.startswith("centralized")]
    assert centralized.columns == ["round", "accuracy", "loss"]
    assert centralized.rows == [["0", "0.1", "-"], ["1", "0.5", "2"]]
    (train,) = [t for t in found if t.title.startswith("train")]
    assert _column(train, "rejected") == {"1": "1"}  # its key is in the rejection


def test_text_columns_are_left_aligned_and_numbers_right(run: Path) -> None:
    (train, *_) = tables(load(run))
    shown = as_rich(train)
    justify = {column.header: column.justify for column in shown.columns}
    assert justify["round"] == "right"
    assert justify["training_time (s), median"] == "right"  # holds a "-" too
    assert justify["converged"] == "right"  # "50% true" reads as a number
    refused = Table("t", ["round", "reason"], [["1", "boom"], ["2", "-"]])
    assert [c.justify for c in as_rich(refused).columns] == ["right", "left"]
    text = as_text(load(run))
    assert "train: TrainProcessMetadata, by round" in text
    assert "evaluate: EvaluateProcessMetadata, by round" in text


def test_numbers_flags_and_number_series_are_shown_text_and_enums_are_not() -> None:
    found = {f.name for f in numeric_fields(FieldDescriptorProto.DESCRIPTOR)}
    # FieldDescriptorProto: name, extendee, type_name, default_value, json_name
    # are text, label and type enums, options a message: none is a number.
    assert found == {"number", "oneof_index", "proto3_optional"}
    series = {f.name for f in numeric_fields(TrainProcessMetadata.DESCRIPTOR)}
    assert {"training_time", "converged", "training_losses"} <= series
    flags = {f.name for f in numeric_fields(FieldOptions.DESCRIPTOR)}
    assert "packed" in flags  # a flag; a repeated message (uninterpreted_option) not
    assert "uninterpreted_option" not in flags
