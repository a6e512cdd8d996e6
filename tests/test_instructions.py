"""Typed server-to-client instructions and evaluation metadata, both directions."""

import math

import pytest
from flower_meta.v1.metadata_pb2 import (
    EvaluateInstructions,
    EvaluateProcessMetadata,
    TrainInstructions,
)
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    RecordDict,
)
from google.protobuf.message import Message as ProtoMessage

from flower_app.app import client_app, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.validation import MetadataDecodeError, Reason
from flower_app.server.strategy import CustomFedAdagrad
from tests.conftest import node_context, reply_from

SETTINGS = Settings.from_run_config(pyproject_run_config())
CONTEXT = node_context(4, partition_id=1)


V2_TYPE_URL = "type.googleapis.com/flower_meta.v2.TrainProcessMetadata"


def _unchecked(message: ProtoMessage) -> ConfigRecord:
    """A record as codec.to_config_record makes it, minus the validation."""
    return ConfigRecord(
        {
            codec.TYPE_URL_KEY: codec.type_url_of(type(message)),
            codec.FIELD_KEY: message.SerializeToString(),
        }
    )


def _instruction(
    kind: str, instructions: TrainInstructions | EvaluateInstructions
) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord(task.Net(64, 10).state_dict()),
            codec.INSTRUCTIONS_KEY: codec.to_config_record(instructions),
        }
    )
    return Message(content, dst_node_id=4, message_type=kind)


def test_server_hyperparameters_reach_the_client_typed() -> None:
    instructions = SETTINGS.train_instructions
    message = _instruction(MessageType.TRAIN, instructions)
    decoded = codec.from_message(TrainInstructions, message, codec.INSTRUCTIONS_KEY)
    assert decoded == instructions
    assert (decoded.local_epochs, decoded.batch_size) == (5, 16)
    assert decoded.metadata_type_url == codec.TYPE_URL


def test_client_trains_as_instructed() -> None:
    instructions = SETTINGS.train_instructions
    instructions.local_epochs = 2
    reply = client_app.train(_instruction(MessageType.TRAIN, instructions), CONTEXT)
    meta = codec.from_reply(reply)
    assert len(meta.training_losses) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"local_epochs": 0}, Reason.INVALID_INSTRUCTIONS),
        ({"learning_rate": math.nan}, Reason.INVALID_INSTRUCTIONS),
        ({"batch_size": 0}, Reason.INVALID_INSTRUCTIONS),
        ({"metadata_type_url": V2_TYPE_URL}, Reason.UNSUPPORTED_VERSION),
    ],
)
def test_client_refuses_instructions_it_cannot_follow(
    change: dict[str, object], reason: Reason
) -> None:
    instructions = SETTINGS.train_instructions
    for field, value in change.items():
        setattr(instructions, field, value)
    message = Message(
        RecordDict(
            {
                "arrays": ArrayRecord(task.Net(64, 10).state_dict()),
                codec.INSTRUCTIONS_KEY: _unchecked(instructions),
            }
        ),
        dst_node_id=4,
        message_type=MessageType.TRAIN,
    )
    with pytest.raises(MetadataDecodeError) as caught:
        client_app.train(message, CONTEXT)
    assert caught.value.reason is reason


def test_evaluation_metadata_round_trips_through_the_strategy() -> None:
    instructions = EvaluateInstructions(metadata_type_url=codec.EVALUATE_TYPE_URL)
    reply = client_app.evaluate(
        _instruction(MessageType.EVALUATE, instructions), CONTEXT
    )
    meta = codec.from_message(EvaluateProcessMetadata, reply, codec.EVALUATE_RECORD_KEY)
    assert meta.num_examples > 0
    assert 0 <= meta.accuracy <= 1
    assert meta.evaluation_time >= 0

    bad = EvaluateProcessMetadata(
        evaluation_time=0.1, num_examples=3, loss=0.2, accuracy=1.5
    )
    broken = reply_from(7, RecordDict({"metrics": reply.content["metrics"]}))
    broken.content[codec.EVALUATE_RECORD_KEY] = _unchecked(bad)
    strategy = CustomFedAdagrad()
    metrics = strategy.aggregate_evaluate(2, [reply_from(4, reply.content), broken])
    assert metrics is not None
    report = strategy.evaluations[2]
    assert report.accepted == {4: meta}
    assert report.rejected[7].startswith("evaluation_out_of_range: ")
