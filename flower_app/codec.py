"""The one codec between `TrainProcessMetadata` and Flower `ConfigRecord` bytes."""

import math

from flwr.app import ConfigRecord, Message
from google.protobuf.message import DecodeError

from generated.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

RECORD_KEY = "train_metadata"
"""Key of the `ConfigRecord` in a train reply's `RecordDict`."""
FIELD_KEY = "meta"
"""Key of the serialized `TrainProcessMetadata` inside that `ConfigRecord`."""

TutorialDict = dict[str, float | bool | dict[str, float] | None]


class MetadataDecodeError(ValueError):
    """A reply's training metadata is missing, undecodable or invalid."""


def validate(meta: TrainProcessMetadata) -> None:
    """Raise `MetadataDecodeError` unless `meta` obeys the schema's documented rules."""
    if not meta.HasField("training_time"):
        raise MetadataDecodeError("training_time is missing; every report needs it")
    if not (math.isfinite(meta.training_time) and meta.training_time >= 0):
        raise MetadataDecodeError(
            f"training_time must be finite and >= 0 seconds, got {meta.training_time}"
        )
    for epoch, loss in enumerate(meta.training_losses, start=1):
        if not (math.isfinite(loss) and loss >= 0):
            raise MetadataDecodeError(
                f"training_losses[epoch_{epoch}] must be finite and >= 0, got {loss}"
            )


def to_config_record(meta: TrainProcessMetadata) -> ConfigRecord:
    """Validate `meta` and serialize it into the reply's `ConfigRecord`."""
    validate(meta)
    return ConfigRecord({FIELD_KEY: meta.SerializeToString()})


def decode(payload: bytes) -> TrainProcessMetadata:
    """Parse and validate serialized `TrainProcessMetadata` bytes."""
    meta = TrainProcessMetadata()
    try:
        meta.ParseFromString(payload)
    except DecodeError as err:
        raise MetadataDecodeError(
            f"{len(payload)} bytes are not a "
            f"{TrainProcessMetadata.DESCRIPTOR.full_name} payload ({err}); "
            "was the ClientApp built from this project's proto/?"
        ) from err
    validate(meta)
    return meta


def from_reply(reply: Message) -> TrainProcessMetadata:
    """Decode the training metadata a ClientApp put in its train reply."""
    if not reply.has_content():
        raise MetadataDecodeError(f"reply carries an error, not content: {reply.error}")
    record = reply.content.config_records.get(RECORD_KEY)
    if record is None:
        raise MetadataDecodeError(
            f"reply has no ConfigRecord {RECORD_KEY!r}; the ClientApp must add "
            "codec.to_config_record(meta) to its train reply"
        )
    payload = record.get(FIELD_KEY)
    if not isinstance(payload, bytes):
        raise MetadataDecodeError(
            f"ConfigRecord {RECORD_KEY!r} needs bytes under {FIELD_KEY!r}, "
            f"got {type(payload).__name__}"
        )
    return decode(payload)


def to_tutorial_dict(meta: TrainProcessMetadata) -> TutorialDict:
    """Show `meta` in the tutorial's dict form; absent fields become None."""
    return {
        "training_time": meta.training_time if meta.HasField("training_time") else None,
        "converged": meta.converged if meta.HasField("converged") else None,
        "training_losses": {
            f"epoch_{epoch}": loss
            for epoch, loss in enumerate(meta.training_losses, start=1)
        },
    }
