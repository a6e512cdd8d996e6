"""`CustomFedAdagrad` on constructed replies: reading, reporting, logging."""

import logging
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MessageType,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdagrad

from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, JSON_LOG, MetadataLog, read_log
from flower_app.server.strategy import CustomFedAdagrad
from tests.conftest import reply_from, sample_metadata, train_content

CURRENT = {"w": np.zeros(4, dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


def _arrays(value: float) -> ArrayRecord:
    return ArrayRecord({k: Array(np.full_like(v, value)) for k, v in CURRENT.items()})


def _replies() -> list[Message]:
    """Three good replies, one with undecodable metadata, one without any."""
    replies = [
        reply_from(node, train_content(_arrays(node), 10 * node, sample_metadata(node)))
        for node in (1, 2, 3)
    ]
    broken = train_content(_arrays(4.0), 40, None)
    broken[codec.RECORD_KEY] = ConfigRecord(
        {codec.TYPE_URL_KEY: codec.TYPE_URL, codec.FIELD_KEY: b"\xff\xff\xff"}
    )
    replies.append(reply_from(4, broken))
    replies.append(reply_from(5, train_content(_arrays(5.0), 50, None)))
    return replies


def _aggregate(strategy: FedAdagrad, replies: list[Message]) -> ArrayRecord | None:
    strategy.current_arrays = {k: v.copy() for k, v in CURRENT.items()}
    arrays, _ = strategy.aggregate_train(1, iter(replies))
    return arrays


def test_metadata_is_decoded_logged_and_kept_per_node(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = CustomFedAdagrad()
    with caplog.at_level(logging.INFO, logger="flwr"):
        _aggregate(strategy, _replies())

    assert strategy.reports[1].accepted == {n: sample_metadata(n) for n in (1, 2, 3)}
    assert (
        "round 1 node 2: {'training_time': 12.5, 'converged': True, "
        "'training_losses': {'epoch_1': 1.0, 'epoch_2': 0.5}}"
    ) in caplog.text


def test_bad_metadata_is_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    strategy = CustomFedAdagrad()
    with caplog.at_level(logging.INFO, logger="flwr"):
        _aggregate(strategy, _replies())

    report = strategy.reports[1]
    assert set(report.rejected) == {4, 5}
    assert report.rejected[5].startswith("missing_record: message has no ConfigRecord")
    assert (
        "round 1 node 4: metadata skipped: malformed: 3 bytes are not a" in caplog.text
    )
    assert "round 1 metadata: 3 accepted, 2 rejected, 0 failed" in caplog.text


def test_model_aggregation_is_unaffected_by_metadata() -> None:
    ours = _aggregate(CustomFedAdagrad(), _replies())
    plain = _aggregate(FedAdagrad(), _replies())
    assert ours is not None
    assert plain is not None
    for key in CURRENT:
        np.testing.assert_array_equal(ours[key].numpy(), plain[key].numpy())


def test_error_replies_and_silent_nodes_count_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    instruction = Message(RecordDict(), dst_node_id=9, message_type=MessageType.TRAIN)
    crashed = Message(Error(code=0, reason="ClientApp raised"), reply_to=instruction)
    strategy = CustomFedAdagrad()
    strategy._instructions["train", 1] = [  # node 11 never answers
        Message(RecordDict(), dst_node_id=node, message_type=MessageType.TRAIN)
        for node in (1, 2, 3, 9, 11)
    ]
    with caplog.at_level(logging.INFO, logger="flwr"):
        arrays = _aggregate(strategy, [*_replies()[:3], crashed])

    assert arrays is not None
    report = strategy.reports[1]
    assert set(report.accepted) == {1, 2, 3}
    assert report.failed == {
        9: "error reply: ClientApp raised",
        11: "no reply before the round's timeout",
    }
    assert "round 1 metadata: 3 accepted, 0 rejected, 2 failed" in caplog.text


def test_every_outcome_is_appended_to_the_log(tmp_path: Path) -> None:
    metadata_log = MetadataLog(tmp_path)
    strategy = CustomFedAdagrad(metadata_log=metadata_log, run_id=77)
    _aggregate(strategy, _replies())

    records = list(read_log(tmp_path / BINARY_LOG))
    assert [r.node_id for r in records] == [1, 2, 3, 4, 5]
    assert {r.run_id for r in records} == {77}
    assert {r.server_round for r in records} == {1}
    assert [r.WhichOneof("outcome") for r in records] == 3 * ["accepted"] + 2 * [
        "rejected"
    ]
    assert records[1].accepted == sample_metadata(2)
    assert records[3].rejected.reason == "malformed"
    assert records[3].rejected.payload == b"\xff\xff\xff"
    assert all(r.received_at.seconds > 0 for r in records)
    lines = (tmp_path / JSON_LOG).read_text().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith('{"accepted":{"converged":true,')
