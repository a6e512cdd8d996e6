"""The one codec between flower_meta.v1 messages and Flower `ConfigRecord`s.

A `ConfigRecord` carrying a message holds a google.protobuf.Any, flattened:
"type_url" names the message and its major version, "meta" holds its bytes.
Train replies carry `TrainProcessMetadata` under "train_metadata", evaluate
replies `EvaluateProcessMetadata` under "evaluate_metadata"; instructions
carry `TrainInstructions` / `EvaluateInstructions` under "config". Decoding
checks the type and size, parses, then validates.
"""

from typing import TypeVar

from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    TrainProcessMetadata,
)
from flwr.app import ConfigRecord
from flwr.app import Message as FlowerMessage
from google.protobuf.message import DecodeError, Message

from flower_app.protocol.validation import (
    Limits,
    MetadataDecodeError,
    Reason,
    check_size,
    validate,
)

M = TypeVar("M", bound=Message)

RECORD_KEY = "train_metadata"
"""Key of the `ConfigRecord` with the metadata in a train reply."""
EVALUATE_RECORD_KEY = "evaluate_metadata"
"""Key of the `ConfigRecord` with the metadata in an evaluate reply."""
INSTRUCTIONS_KEY = "config"
"""Key of the `ConfigRecord` with the instructions in a train/evaluate message."""
FIELD_KEY = "meta"
"""Key of the serialized message inside such a `ConfigRecord`."""
TYPE_URL_KEY = "type_url"
"""Key of the message's type URL inside such a `ConfigRecord`."""

DEFAULT_LIMITS = Limits()

TutorialDict = dict[str, float | bool | dict[str, float] | None]


def type_url_of(schema: type[Message]) -> str:
    """Return the type URL of `schema`, as `google.protobuf.Any` writes it."""
    return f"type.googleapis.com/{schema.DESCRIPTOR.full_name}"


FULL_NAME = TrainProcessMetadata.DESCRIPTOR.full_name
TYPE_URL = type_url_of(TrainProcessMetadata)
EVALUATE_TYPE_URL = type_url_of(EvaluateProcessMetadata)


def to_config_record(message: Message, limits: Limits = DEFAULT_LIMITS) -> ConfigRecord:
    """Validate `message` and put its type URL and bytes into a `ConfigRecord`."""
    validate(message, limits)
    payload = message.SerializeToString()
    check_size(payload, limits)
    return ConfigRecord({TYPE_URL_KEY: type_url_of(type(message)), FIELD_KEY: payload})


def check_type_url(type_url: str, schema: type[Message] = TrainProcessMetadata) -> None:
    """Refuse a type URL naming another message or another major version."""
    expected = schema.DESCRIPTOR.full_name
    got = type_url.rsplit("/", 1)[-1]
    if got == expected:
        return
    package, _, name = got.rpartition(".")
    family, _, version = package.rpartition(".")
    ours = schema.DESCRIPTOR.file.package.rpartition(".")[0]
    if (family, name) == (ours, schema.DESCRIPTOR.name):
        raise MetadataDecodeError(
            Reason.UNSUPPORTED_VERSION,
            f"payload is {got} (major version {version}); this reader decodes "
            f"{expected} only: upgrade it to one that reads {package}",
        )
    raise MetadataDecodeError(
        Reason.WRONG_TYPE, f"payload is a {got!r}, expected {expected!r}"
    )


def decode_as(
    schema: type[M], type_url: str, payload: bytes, limits: Limits = DEFAULT_LIMITS
) -> M:
    """Check the type and size, parse, then validate one payload of `schema`."""
    check_type_url(type_url, schema)
    check_size(payload, limits)
    try:
        message = schema.FromString(payload)
    except DecodeError as err:
        raise MetadataDecodeError(
            Reason.MALFORMED,
            f"{len(payload)} bytes are not a {schema.DESCRIPTOR.full_name} payload "
            f"({err}); was the sender built from this project's proto/?",
        ) from err
    validate(message, limits)
    return message


def decode(
    type_url: str, payload: bytes, limits: Limits = DEFAULT_LIMITS
) -> TrainProcessMetadata:
    """Decode one `TrainProcessMetadata` payload."""
    return decode_as(TrainProcessMetadata, type_url, payload, limits)


def payload_of(
    message: FlowerMessage, record_key: str = RECORD_KEY
) -> tuple[str, bytes]:
    """Return the type URL and payload bytes a Flower message carries."""
    if not message.has_content():
        raise MetadataDecodeError(
            Reason.MISSING_RECORD,
            f"message carries an error, not content: {message.error}",
        )
    record = message.content.get(record_key)
    if not isinstance(record, ConfigRecord):
        raise MetadataDecodeError(
            Reason.MISSING_RECORD,
            f"message has no ConfigRecord {record_key!r}; the sender must add "
            "codec.to_config_record(...) under that key",
        )
    type_url, payload = record.get(TYPE_URL_KEY), record.get(FIELD_KEY)
    if payload is None:
        raise MetadataDecodeError(
            Reason.MISSING_META, f"ConfigRecord {record_key!r} has no {FIELD_KEY!r}"
        )
    if not isinstance(payload, bytes):
        raise MetadataDecodeError(
            Reason.META_NOT_BYTES,
            f"ConfigRecord {record_key!r} needs bytes under {FIELD_KEY!r}, "
            f"got {type(payload).__name__}",
        )
    if not isinstance(type_url, str):
        raise MetadataDecodeError(
            Reason.MISSING_TYPE_URL,
            f"ConfigRecord {record_key!r} needs the payload's type URL under "
            f"{TYPE_URL_KEY!r}, e.g. {TYPE_URL!r}",
        )
    return type_url, payload


def from_message(
    schema: type[M],
    message: FlowerMessage,
    record_key: str,
    limits: Limits = DEFAULT_LIMITS,
) -> M:
    """Decode the `schema` message carried under `record_key`."""
    return decode_as(schema, *payload_of(message, record_key), limits)


def from_reply(
    reply: FlowerMessage, limits: Limits = DEFAULT_LIMITS
) -> TrainProcessMetadata:
    """Decode the training metadata a ClientApp put in its train reply."""
    return from_message(TrainProcessMetadata, reply, RECORD_KEY, limits)


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
