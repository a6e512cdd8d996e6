"""Every field of a user's type is shown, whatever its type; series steps align;
a log holding two types under one key is reported type by type.

The own type is `acme.fleet.v1.ClientReport` (tests/fixtures), read from its
golden vectors' schema: a string `device`, an enum `accelerator`, a map
`layer_seconds`, a oneof of a string and a count, numbers and a series.
"""

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import BytesValue
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from flower_app import cli
from flower_app.outcomes.replay import load
from flower_app.protocol.metadata_log import MetadataLog
from flower_app.reporting.report import write_report
from flower_app.reporting.tables import in_terminal, tables
from flower_app.reporting.trackers import TensorBoardBackend, Tracker, export
from flower_meta.v1.metadata_pb2 import (
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)
from tests.helpers import vector_type

REPORT = vector_type(
    {
        "schema": "acme_fleet.binpb",
        "type_url": "type.googleapis.com/acme.fleet.v1.ClientReport",
    }
)
DEVICES = {1: "pixel-7", 2: "pixel-7", 3: "jetson"}
"""node -> device: two values, so the field varies."""


def _report(node: int, at: int, **fields: Any) -> Message:
    values: dict[str, Any] = {
        "wall_seconds": float(node + at),
        "device": DEVICES[node],
        "accelerator": 1 if node < 3 else 2,
        "dataset": "digits",  # the same everywhere: a sentence
        "grad_norms": [0.5] * (node + 1),
        **fields,
    }
    return REPORT(**values)


def _record(at: int, node: int, key: str = "train_metadata") -> MetadataLogRecord:
    return MetadataLogRecord(run_id=5, server_round=at, node_id=node, record_key=key)


def _write(folder: Path, reject: tuple[int, int] | None = None) -> Path:
    """Three rounds of three clients; `reject`: (round, node) refused."""
    log = MetadataLog(folder, types=[REPORT])
    for at in (1, 2, 3):
        for node in (1, 2, 3):
            record = _record(at, node)
            if (at, node) == reject:
                record.rejected.CopyFrom(
                    Rejection(reason="out_of_range", record_key="train_metadata")
                )
            else:
                record.accepted_other.Pack(_report(node, at))
            log.append(record)
    log.close()
    return folder


def test_text_and_enum_fields_are_tabled_by_value_and_constants_said(
    tmp_path: Path,
) -> None:
    records = load(_write(tmp_path))
    found = {table.title: table for table in tables(records)}
    device = found["train: device, clients per value, by round"]
    assert device.columns == ["round", "pixel-7", "jetson"]
    assert device.rows == [["1", "2", "1"], ["2", "2", "1"], ["3", "2", "1"]]
    accelerator = found["train: accelerator, clients per value, by round"]
    assert accelerator.columns == ["round", "ACCELERATOR_CPU", "ACCELERATOR_GPU"]
    assert accelerator.rows == [["1", "2", "1"], ["2", "2", "1"], ["3", "2", "1"]]
    (constant,) = [t for t in in_terminal(records) if t.title.startswith("the same")]
    assert ["train", "dataset", '"digits"'] in constant.rows
    assert ["train", "layer_seconds", "not sent"] in constant.rows  # proto3: empty
    assert ["train", "synthetic_examples", "not sent"] in constant.rows

    write_report(tmp_path)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "train: device, clients per value, by round" in page
    assert (
        "train stage: dataset was &quot;digits&quot; for every client in every round"
        in page
    )
    assert "train stage: synthetic_examples: no client reported it" in page


def test_the_terminal_tables_show_them_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(_write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "train: device, clients per value, by round" in out
    assert "the same for every client in every round" in out
    assert '"digits"' in out


def test_bytes_are_shown_as_hex_and_many_values_are_counted_together(
    tmp_path: Path,
) -> None:
    log = MetadataLog(tmp_path, types=[BytesValue])
    for node in range(12):
        record = _record(1, node + 1)
        record.accepted_other.Pack(BytesValue(value=bytes([node % 10, 255])))
        log.append(record)
    log.close()
    (table,) = [t for t in tables(load(tmp_path)) if "clients per value" in t.title]
    assert table.columns == [
        "round",
        *(f"0x{n:02x}ff" for n in (0, 1, 2, 3, 4, 5, 6, 7)),
        "2 other values",
    ]
    assert table.rows == [["1", "2", "2", "1", "1", "1", "1", "1", "1", "2"]]


def _tensorboard(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_gets_each_rounds_values_as_text(tmp_path: Path) -> None:
    run = _write(tmp_path / "run")
    export(run, Tracker(TensorBoardBackend(tmp_path / "tb")))
    events = _tensorboard(tmp_path / "tb")
    shown = {
        event.step: tensor_util.make_ndarray(event.tensor_proto).item().decode()
        for event in events.Tensors("train/device/text_summary")
    }
    assert shown == {
        at: "| value | clients |\n| --- | --- |\n| pixel-7 | 2 |\n| jetson | 1 |"
        for at in (1, 2, 3)
    }


def test_a_series_step_depends_on_its_round_and_index_only(tmp_path: Path) -> None:
    """Node 3 is refused in round 2: its round 3 sits where everyone's does.

    Series lengths: node n sends n + 1 elements, so each round's longest is 4
    (node 3's) where node 3 is accepted, 3 where it is refused.
    """
    run = _write(tmp_path / "run", reject=(2, 3))
    export(run, Tracker(TensorBoardBackend(tmp_path / "tb")))
    events = _tensorboard(tmp_path / "tb")
    steps = {
        node: [
            e.step for e in events.Scalars(f"train_per_epoch/grad_norms/node_{node}")
        ]
        for node in (1, 2, 3)
    }
    assert steps == {
        1: [1, 2, 5, 6, 8, 9],  # rounds start at 1, 5 (after 4), 8 (after 4 + 3)
        2: [1, 2, 3, 5, 6, 7, 8, 9, 10],
        3: [1, 2, 3, 4, 8, 9, 10, 11],
    }


def test_two_types_under_one_key_are_reported_type_by_type(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path, types=[TrainProcessMetadata, REPORT])
    for node in (1, 2):
        first = _record(1, node)
        first.accepted.CopyFrom(TrainProcessMetadata(training_time=float(node)))
        log.append(first)
        second = _record(2, node)
        second.accepted_other.Pack(_report(node, 2))
        log.append(second)
    log.close()
    records = load(tmp_path)
    assert [stage.name for stage in records.stages.values()] == [
        "train",
        "train (ClientReport)",
    ]
    titles = [table.title for table in tables(records)]
    assert "train: TrainProcessMetadata, by round" in titles
    assert "train (ClientReport): ClientReport, by round" in titles
    assert cli.main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "train (ClientReport): ClientReport, by round" in page


def test_mlflow_keeps_each_rounds_values_as_a_text_artifact(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from flower_app.reporting.trackers import MlflowBackend

    run = _write(tmp_path / "runs" / "5")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    backend = MlflowBackend(uri, "flower-meta", "5", {})
    export(run, Tracker(backend))
    text = MlflowClient(uri).download_artifacts(
        backend.run_id, "text/train/device.md", str(tmp_path / "down")
    )
    table = "| value | clients |\n| --- | --- |\n| pixel-7 | 2 |\n| jetson | 1 |\n"
    assert Path(text).read_text() == "\n".join(
        f"## round {at}\n\n{table}" for at in (1, 2, 3)
    )
