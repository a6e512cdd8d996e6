"""proto/README.md's guide to metadata.jsonl: its pandas snippet runs and is right."""

import re
from pathlib import Path

import pytest

from flower_app.protocol.metadata_log import MetadataLog
from flower_meta.v1.metadata_pb2 import (
    CentralizedEvaluation,
    EvaluateProcessMetadata,
    Failure,
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)
from tests.helpers import ROOT

GUIDE = (ROOT / "proto" / "README.md").read_text()


def _snippet() -> str:
    section = GUIDE.split("## Reading `metadata.jsonl`", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)\n```", section, flags=re.DOTALL)
    return str(code)


def _write(folder: Path) -> None:
    """Two rounds: every kind of line, numbers chosen to be told apart."""
    log = MetadataLog(folder)

    def record(at: int, node: int, key: str = "") -> MetadataLogRecord:
        return MetadataLogRecord(
            run_id=7, server_round=at, node_id=node, record_key=key
        )

    for at, accuracy in ((0, 0.1), (1, 0.5), (2, 0.75)):
        found = record(at, 0)
        found.centralized.CopyFrom(
            CentralizedEvaluation(metrics={"accuracy": accuracy})
        )
        log.append(found)
        if not at:
            continue
        for node, seconds in ((11, 1.0 * at), (12, 3.0 * at), (13, 8.0 * at)):
            train = record(at, node, "train_metadata")
            train.accepted.CopyFrom(
                TrainProcessMetadata(training_time=seconds, training_losses=[0.5])
            )
            log.append(train)
        evaluated = record(at, 11, "evaluate_metadata")
        evaluated.evaluated.CopyFrom(
            EvaluateProcessMetadata(
                evaluation_time=0.1, num_examples=9, loss=0.4, accuracy=0.8
            )
        )
        log.append(evaluated)
        rejected = record(at, 14, "train_metadata")
        rejected.rejected.CopyFrom(
            Rejection(reason="out_of_range", field_path="training_time")
        )
        log.append(rejected)
        if at == 2:
            failed = record(at, 15, "train_metadata")
            failed.failed.CopyFrom(
                Failure(reason="no reply before the round's timeout")
            )
            log.append(failed)
    log.close()


def test_the_snippet_reads_every_kind_of_line_by_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path)
    monkeypatch.chdir(tmp_path)
    found: dict[str, object] = {}
    exec(compile(_snippet(), "proto/README.md", "exec"), found)  # the guide's code
    counts = found["counts"].to_dict("index")  # type: ignore[attr-defined]
    assert counts == {
        0: {
            "accepted": 0,
            "centralized": 1,
            "evaluated": 0,
            "failed": 0,
            "rejected": 0,
        },
        1: {
            "accepted": 3,
            "centralized": 1,
            "evaluated": 1,
            "failed": 0,
            "rejected": 1,
        },
        2: {
            "accepted": 3,
            "centralized": 1,
            "evaluated": 1,
            "failed": 1,
            "rejected": 1,
        },
    }
    assert found["median_time"].to_dict() == {1: 3.0, 2: 6.0}  # type: ignore[attr-defined]
    assert found["accuracy"].to_dict() == {0: 0.1, 1: 0.5, 2: 0.75}  # type: ignore[attr-defined]
    assert "accepted" in capsys.readouterr().out


def test_round_0_is_the_line_without_server_round(tmp_path: Path) -> None:
    """What the guide says of proto3 JSON: a 0 is left out."""
    _write(tmp_path)
    first = (tmp_path / "metadata.jsonl").read_text().splitlines()[0]
    assert '"centralized"' in first
    assert "serverRound" not in first
    assert "nodeId" not in first
