"""The one model of a run's outcomes: filled live by the strategy, replayed from
the log, the same value; its summary line; its straggler and stage rules."""

import json
from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, Message, MessageType
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.wrappers_pb2 import BytesValue

from flower_app import report
from flower_app.app import client_app
from flower_app.client.mod import metadata_mod
from flower_app.outcomes import statistics as stats
from flower_app.outcomes.model import Outcomes, StageOutcomes
from flower_app.outcomes.replay import load
from flower_app.outcomes.summary import summary
from flower_app.protocol.schema import FieldDescriptor
from flower_meta.v1.metadata_pb2 import (
    CentralizedEvaluation,
    Failure,
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)
from tests.conftest import Simulate
from tests.helpers import RUNS_FOLDER, vector_type


def dump(outcomes: Outcomes) -> dict[str, Any]:
    """Everything the model holds, as plain values: messages by their bytes,
    types by their names (a replay builds its classes from schema.binpb)."""
    return {
        "run_id": outcomes.run_id,
        "centralized": outcomes.centralized,
        "damage": outcomes.damage,
        "undecodable": outcomes.undecodable,
        "stages": {
            key: {
                "name": stage.name,
                "type": stage.message_type and stage.message_type.full_name,
                "first_accepted": stage.first_accepted,
                "rounds": {
                    at: {
                        "accepted": {
                            node: found.accepted[node].SerializeToString(
                                deterministic=True
                            )
                            for node in found.accepted
                        },
                        "rejected": found.rejected,
                        "failed": found.failed,
                        "egress": found.egress,
                        "last_record": found.last_record,
                    }
                    for at, found in stage.by_round.items()
                },
            }
            for key, stage in outcomes.stages.items()
        },
    }


def _trouble(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Partition 1 breaks a rule in round 2's training; partition 2's training
    fails in round 3."""
    partition = int(context.node_config["partition-id"])
    at = int(msg.content["config"]["server-round"])  # type: ignore[arg-type]
    if (partition, at, msg.metadata.message_type) == (2, 3, MessageType.TRAIN):
        raise RuntimeError("this node's training broke")
    return call_next(msg, context)


troubled_app = ClientApp(mods=[_trouble, metadata_mod])


@troubled_app.train()
def _train(msg: Message, context: Context) -> Message:
    reply = client_app.train(msg, context)
    partition = int(context.node_config["partition-id"])
    if partition == 1 and int(msg.content["config"]["server-round"]) == 2:  # type: ignore[arg-type]
        report(training_time=-1.0)  # the node refuses it, the update counts
    return reply


troubled_app.evaluate()(client_app.evaluate)


@pytest.mark.e2e
def test_the_live_model_is_the_replayed_one_for_a_real_run(
    simulate: Simulate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    strategy = simulate(troubled_app, 3)
    (run_dir,) = (tmp_path / RUNS_FOLDER).iterdir()
    live, replayed = dump(strategy.outcomes), dump(load(run_dir))
    assert live == replayed
    train = live["stages"]["train_metadata"]["rounds"]
    assert [len(train[at]["accepted"]) for at in (1, 2, 3)] == [3, 2, 2]
    (refusal,) = train[2]["rejected"].values()
    assert refusal.startswith("training_time_out_of_range: refused by the node")
    (failure,) = train[3]["failed"].values()
    assert "this node's training broke" in failure
    assert sorted(live["centralized"]) == [0, 1, 2, 3]


def _record(at: int, node: int, key: str = "train_metadata") -> MetadataLogRecord:
    return MetadataLogRecord(run_id=4, server_round=at, node_id=node, record_key=key)


def test_the_summary_counts_every_stage_and_names_the_last_evaluation() -> None:
    outcomes = Outcomes()
    for at in (1, 2):
        for node in (1, 2):
            accepted = _record(at, node)
            accepted.accepted.CopyFrom(TrainProcessMetadata(training_time=1.0))
            outcomes.add(accepted)
        refused = _record(at, 3)
        refused.rejected.CopyFrom(Rejection(reason="malformed"))
        outcomes.add(refused)
        failed = _record(at, 4, "evaluate_metadata")
        failed.failed.CopyFrom(Failure(reason="no reply"))
        outcomes.add(failed)
        centralized = _record(at, 0, "")
        centralized.centralized.CopyFrom(
            CentralizedEvaluation(metrics={"loss": 1 / at, "accuracy": 0.5 + at / 10})
        )
        outcomes.add(centralized)
    other = _record(2, 5, "probe_metadata")
    other.accepted.CopyFrom(TrainProcessMetadata(training_time=2.0))
    outcomes.add(other)
    assert summary(outcomes) == (
        "2 rounds, final centralized accuracy 0.7000, loss 0.5000; metadata over "
        "all rounds: train 4 accepted, 2 rejected, 0 failed; evaluate 0 accepted, "
        "0 rejected, 2 failed; probe 1 accepted, 0 rejected, 0 failed"
    )


def test_a_run_of_one_round_and_no_evaluation_says_so() -> None:
    outcomes = Outcomes()
    record = _record(1, 1)
    record.accepted.CopyFrom(TrainProcessMetadata(training_time=1.0))
    outcomes.add(record)
    assert summary(outcomes) == (
        "1 round, metadata over all rounds: train 1 accepted, 0 rejected, 0 failed; "
        "evaluate 0 accepted, 0 rejected, 0 failed"
    )


def test_a_nodes_first_accepted_round_is_its_earliest_whatever_the_order() -> None:
    outcomes = Outcomes()
    for at in (3, 1, 2):
        record = _record(at, 7)
        record.accepted.CopyFrom(TrainProcessMetadata(training_time=1.0))
        outcomes.add(record)
    refused = _record(0, 8)  # a refusal is no first report
    refused.rejected.CopyFrom(Rejection(reason="malformed"))
    outcomes.add(refused)
    stage = outcomes.stages["train_metadata"]
    assert stage.first_accepted == {7: 1}
    assert stage.rounds == [0, 1, 2, 3]
    assert outcomes.rounds() == [0, 1, 2, 3]


def test_a_rounds_last_record_is_its_latest_stamp() -> None:
    outcomes = Outcomes()
    for node, seconds in ((1, 20), (2, 10), (3, 0)):
        record = _record(1, node)
        record.received_at.seconds = seconds
        record.failed.CopyFrom(Failure(reason="x"))
        outcomes.add(record)
    assert outcomes.stages["train_metadata"].round(1).last_record == 20_000


def test_a_rounds_messages_read_back_as_put_a_node_put_twice_the_later() -> None:
    from google.protobuf.wrappers_pb2 import DoubleValue

    from flower_app.outcomes.model import Messages

    kept = Messages()
    for node, seconds in ((5, 1.0), (3, 2.0), (5, 3.0), (9, 4.0)):
        kept.put(node, TrainProcessMetadata(training_time=seconds))
    kept.put(7, DoubleValue(value=0.5))  # another type, kept as what it is
    assert list(kept) == [5, 3, 9, 7]
    assert len(kept) == 4
    assert kept[5] == TrainProcessMetadata(training_time=3.0)
    assert dict(kept.items()) == {
        5: TrainProcessMetadata(training_time=3.0),
        3: TrainProcessMetadata(training_time=2.0),
        9: TrainProcessMetadata(training_time=4.0),
        7: DoubleValue(value=0.5),
    }
    assert list(kept.values()) == [kept[n] for n in kept]
    assert 9 in kept
    assert 4 not in kept
    with pytest.raises(KeyError):
        kept[4]


FLEET: Any = vector_type(  # a class of the vectors' own schema
    {
        "schema": "acme_fleet.binpb",
        "type_url": "type.googleapis.com/acme.fleet.v1.ClientReport",
    }
)


def _field(message_type: type[ProtoMessage], name: str) -> FieldDescriptor:
    found: FieldDescriptor = message_type.DESCRIPTOR.fields_by_name[name]
    return found


def test_a_text_value_is_shown_whole_up_to_the_limit_then_cut() -> None:
    device = _field(FLEET, "device")
    whole = "d" * stats.VALUE_LIMIT
    assert stats.value_text(FLEET(device=whole), device) == whole
    cut = stats.value_text(FLEET(device=whole + "e"), device)
    assert cut == f"{whole}... ({stats.VALUE_LIMIT + 1} characters in all)"


def test_bytes_are_shown_as_hex_whole_up_to_16_bytes_then_cut() -> None:
    value = _field(BytesValue, "value")
    sixteen = bytes(range(16))
    assert stats.value_text(BytesValue(value=sixteen), value) == "0x" + sixteen.hex()
    seventeen = bytes(range(17))
    shown = stats.value_text(BytesValue(value=seventeen), value)
    assert shown == "0x" + seventeen.hex()[:32] + "…"


def test_a_map_is_shown_as_json_with_its_text_as_written() -> None:
    layers = _field(FLEET, "layer_seconds")
    shown = stats.value_text(FLEET(layer_seconds={"é": 1.5, "b": 2.0}), layers)
    assert shown is not None
    assert json.loads(shown) == {"é": 1.5, "b": 2.0}
    assert "é" in shown  # not \u00e9


def _stage(*rounds: list[ProtoMessage]) -> StageOutcomes:
    stage = StageOutcomes("train_metadata", rounds[0][0].DESCRIPTOR)
    for at, messages in enumerate(rounds, 1):
        for node, message in enumerate(messages, 1):
            stage.round(at).accepted.put(node, message)
    return stage


def test_a_field_is_the_same_only_with_one_value_sent_by_everyone() -> None:
    losses = _field(TrainProcessMetadata, "training_losses")
    time = _field(TrainProcessMetadata, "training_time")
    one = TrainProcessMetadata(training_time=2.0, training_losses=[0.5, 0.5])
    assert stats.same(_stage([one, one], [one]), losses) == stats.Same(0.5)
    assert stats.same(_stage([one, one], [one]), time) == stats.Same(2.0)
    other = TrainProcessMetadata(training_time=3.0, training_losses=[0.5, 0.25])
    assert stats.same(_stage([one], [other]), losses) is None  # two values
    assert stats.same(_stage([one], [other]), time) is None
    empty = TrainProcessMetadata(training_time=2.0)  # the series not sent
    assert stats.same(_stage([one, empty]), losses) is None  # a value and none
    assert stats.same(_stage([empty, empty]), losses) == stats.Same(None)


def test_a_rounds_longest_series_counts_every_node() -> None:
    losses = _field(TrainProcessMetadata, "training_losses")
    stage = _stage(
        [
            TrainProcessMetadata(training_losses=[1.0] * 3),
            TrainProcessMetadata(training_losses=[1.0] * 5),
            TrainProcessMetadata(),
        ]
    )
    assert stats.longest(stats.columns(stage.round(1).accepted), losses) == 5
    assert stats.longest(stats.columns(stage.round(2).accepted), losses) == 0
