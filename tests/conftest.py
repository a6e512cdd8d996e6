"""Shared helpers: Flower reply Messages built the way a SuperLink delivers them."""

import pytest
from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from flower_app import codec
from generated.flower_meta.v1.metadata_pb2 import TrainProcessMetadata


@pytest.fixture(autouse=True)
def task_identity() -> None:
    """Messages need a run and task identity, as inside a real ServerApp."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1


def reply_from(node_id: int, content: RecordDict) -> Message:
    """A train reply from `node_id` carrying `content`."""
    instruction = Message(
        RecordDict(), dst_node_id=node_id, message_type=MessageType.TRAIN
    )
    return Message(content, reply_to=instruction)


def sample_metadata(epochs: int = 2) -> TrainProcessMetadata:
    """A valid report with `epochs` decreasing losses."""
    return TrainProcessMetadata(
        training_time=12.5,
        converged=True,
        training_losses=[1.0 / (epoch + 1) for epoch in range(epochs)],
    )


def train_content(
    arrays: ArrayRecord, num_examples: int, meta: TrainProcessMetadata | None
) -> RecordDict:
    """What the ClientApp's train function replies, optionally without metadata."""
    content = RecordDict(
        {
            "arrays": arrays,
            "metrics": MetricRecord({"train_loss": 0.5, "num-examples": num_examples}),
        }
    )
    if meta is not None:
        content[codec.RECORD_KEY] = codec.to_config_record(meta)
    return content
