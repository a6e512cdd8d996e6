"""The example ClientApp: typed instructions in, exactly what it measured out.

Training is replaced by a known loss sequence and the mod's clock by one the
test advances, so every reported number has an oracle.
"""

import math

import pytest
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from google.protobuf.message import Message as ProtoMessage

from flower_app.app import client_app, data, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.client.mod import metadata_mod
from flower_app.protocol import codec
from flower_app.protocol.rules import MetadataDecodeError
from flower_meta.v1.metadata_pb2 import (
    EvaluateInstructions,
    EvaluateProcessMetadata,
    TrainInstructions,
    TrainProcessMetadata,
)
from tests.helpers import node_context

SETTINGS = Settings.from_run_config(pyproject_run_config())
CONTEXT = node_context(4, partition_id=1)
V2_URL = "type.googleapis.com/flower_meta.v2.TrainProcessMetadata"


def _unchecked(message: ProtoMessage) -> ConfigRecord:
    """A record as codec.to_config_record makes it, minus the validation."""
    return ConfigRecord(
        {
            "type_url": codec.type_url_of(type(message)),
            "meta": message.SerializeToString(),
        }
    )


def _instruction(kind: str, instructions: ProtoMessage) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord(task.Net(64, 10).state_dict()),
            "config": _unchecked(instructions),
        }
    )
    return Message(content, dst_node_id=4, message_type=kind)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(metadata_mod, "clock", fake)
    return fake


@pytest.fixture
def losses(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> list[list[float]]:
    """Make training return 1.0, 0.9, ... and take 2.5 s; record each call's args."""
    calls: list[list[float]] = []

    def train(net: task.Net, data: object, **kwargs: float) -> list[float]:
        clock.now += 2.5
        calls.append([kwargs["epochs"], kwargs["learning_rate"], kwargs["batch_size"]])
        return [1.0 - 0.1 * epoch for epoch in range(int(kwargs["epochs"]))]

    monkeypatch.setattr(task, "train", train)
    return calls


def _train(instructions: TrainInstructions, context: Context = CONTEXT) -> Message:
    return client_app.app(_instruction(MessageType.TRAIN, instructions), context)


def test_the_reply_reports_what_training_did(losses: list[list[float]]) -> None:
    instructions = SETTINGS.train_instructions
    instructions.local_epochs, instructions.convergence_tolerance = 3, 0.05
    reply = _train(instructions)

    meta = codec.from_message(TrainProcessMetadata, reply, "train_metadata")
    assert meta.training_time == 2.5
    assert list(meta.training_losses) == [1.0, 0.9, 0.8]
    assert meta.HasField("converged")
    assert meta.converged is False  # |0.9 - 0.8| / 0.9 = 0.11 > 0.05
    assert losses == [[3, instructions.learning_rate, instructions.batch_size]]
    metrics = reply.content["metrics"]
    train, _ = data.load_partition(data.partitions("digits", "iid", 10, 0.5), 1)
    assert metrics["num-examples"] == len(train) == 115  # 1437 / 10 * 0.8
    assert metrics["train_loss"] == 0.8


def test_the_instructed_tolerance_decides_convergence(
    losses: list[list[float]],
) -> None:
    instructions = SETTINGS.train_instructions
    instructions.local_epochs, instructions.convergence_tolerance = 3, 0.125
    meta = codec.from_message(
        TrainProcessMetadata, _train(instructions), "train_metadata"
    )
    assert meta.converged is True  # 0.111 <= 0.125


def test_one_epoch_leaves_convergence_unassessed(losses: list[list[float]]) -> None:
    instructions = SETTINGS.train_instructions
    instructions.local_epochs = 1
    meta = codec.from_message(
        TrainProcessMetadata, _train(instructions), "train_metadata"
    )
    assert not meta.HasField("converged")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"local_epochs": 0}, "invalid_instructions"),
        ({"learning_rate": math.nan}, "invalid_instructions"),
        ({"batch_size": 0}, "invalid_instructions"),
        ({"convergence_tolerance": -1.0}, "invalid_instructions"),
        (
            {"metadata_type_url": V2_URL},
            "unsupported_version",
        ),
    ],
)
def test_client_refuses_instructions_it_cannot_follow(
    change: dict[str, object], reason: str, losses: list[list[float]]
) -> None:
    instructions = SETTINGS.train_instructions
    for field, value in change.items():
        setattr(instructions, field, value)
    with pytest.raises(MetadataDecodeError) as caught:
        _train(instructions)
    assert caught.value.reason == reason
    assert losses == []  # refused before training


def test_the_server_hyperparameters_reach_the_client_typed() -> None:
    instructions = SETTINGS.train_instructions
    message = _instruction(MessageType.TRAIN, instructions)
    decoded = codec.from_message(TrainInstructions, message, "config")
    assert decoded == TrainInstructions(
        local_epochs=5,
        learning_rate=0.1,
        batch_size=16,
        convergence_tolerance=0.05,
        metadata_type_url="type.googleapis.com/flower_meta.v1.TrainProcessMetadata",
    )


def test_evaluation_reports_its_time_examples_loss_and_accuracy(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def evaluate(net: task.Net, data: object) -> tuple[float, float]:
        clock.now += 0.25
        return 0.75, 0.5

    monkeypatch.setattr(task, "evaluate", evaluate)
    instructions = EvaluateInstructions(metadata_type_url=codec.EVALUATE_TYPE_URL)
    reply = client_app.app(_instruction(MessageType.EVALUATE, instructions), CONTEXT)
    meta = codec.from_message(EvaluateProcessMetadata, reply, "evaluate_metadata")
    _, test = data.load_partition(data.partitions("digits", "iid", 10, 0.5), 1)
    assert meta == EvaluateProcessMetadata(
        evaluation_time=0.25, num_examples=len(test), loss=0.75, accuracy=0.5
    )
    assert dict(reply.content["metrics"]) == {
        "eval_loss": 0.75,
        "eval_acc": 0.5,
        "num-examples": len(test),
    }


def test_a_real_training_call_reports_five_finite_decreasing_losses() -> None:
    reply = _train(SETTINGS.train_instructions)
    meta = codec.from_message(TrainProcessMetadata, reply, "train_metadata")
    assert len(meta.training_losses) == 5
    assert meta.training_losses[-1] < meta.training_losses[0]
    assert 0 < meta.training_time < 120


def test_each_partition_and_round_gets_its_own_batch_seed() -> None:
    from flower_app.app.client_app import batch_seed

    seeds = {batch_seed(42, p, r) for p in range(10) for r in range(1, 11)}
    assert len(seeds) == 100
    assert batch_seed(42, 3, 2) == batch_seed(42, 3, 2)
    assert batch_seed(43, 3, 2) != batch_seed(42, 3, 2)
