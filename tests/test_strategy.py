"""`CustomFedAdagrad.aggregate_train` on constructed replies."""

import logging

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

from flower_app import codec
from flower_app.strategy import CustomFedAdagrad
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

    assert strategy.metadata[1] == {n: sample_metadata(n) for n in (1, 2, 3)}
    assert (
        "round 1 node 2: {'training_time': 12.5, 'converged': True, "
        "'training_losses': {'epoch_1': 1.0, 'epoch_2': 0.5}}" in caplog.text
    )


def test_bad_metadata_is_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    strategy = CustomFedAdagrad()
    with caplog.at_level(logging.INFO, logger="flwr"):
        _aggregate(strategy, _replies())

    assert set(strategy.rejected[1]) == {4, 5}
    assert "has no ConfigRecord 'train_metadata'" in strategy.rejected[1][5]
    assert (
        "round 1 node 4: metadata skipped: malformed: 3 bytes are not a" in caplog.text
    )
    assert "round 1 node 5: metadata skipped" in caplog.text


def test_model_aggregation_is_unaffected_by_metadata() -> None:
    ours = _aggregate(CustomFedAdagrad(), _replies())
    plain = _aggregate(FedAdagrad(), _replies())
    assert ours is not None
    assert plain is not None
    for key in CURRENT:
        np.testing.assert_array_equal(ours[key].numpy(), plain[key].numpy())


def test_failed_nodes_are_left_to_fedadagrad() -> None:
    failed = Message(
        Error(code=0, reason="client crashed"),
        reply_to=Message(RecordDict(), dst_node_id=9, message_type=MessageType.TRAIN),
    )
    strategy = CustomFedAdagrad()
    arrays = _aggregate(strategy, [*_replies()[:3], failed])
    assert arrays is not None
    assert 9 not in strategy.rejected[1]
    assert 9 not in strategy.metadata[1]
