"""The one codec between `TrainProcessMetadata` and Flower `ConfigRecord` bytes.

A reply's ConfigRecord "train_metadata" holds a google.protobuf.Any,
flattened: "type_url" names the message and its major version, "meta" holds
its bytes. Decoding checks the type, parses, then validates.
"""

from flwr.app import ConfigRecord, Message
from google.protobuf.message import DecodeError

from flower_app.validation import (
    Limits,
    MetadataDecodeError,
    Reason,
    check_size,
    validate,
)
from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

RECORD_KEY = "train_metadata"
"""Key of the `ConfigRecord` in a train reply's `RecordDict`."""
FIELD_KEY = "meta"
"""Key of the serialized `TrainProcessMetadata` inside that `ConfigRecord`."""
TYPE_URL_KEY = "type_url"
"""Key of the payload's type URL inside that `ConfigRecord`."""
FULL_NAME = TrainProcessMetadata.DESCRIPTOR.full_name
TYPE_URL = f"type.googleapis.com/{FULL_NAME}"
"""The type URL this project writes, as `google.protobuf.Any` would."""

_FAMILY = TrainProcessMetadata.DESCRIPTOR.file.package.rpartition(".")[0]
"""The package without its major version: "flower_meta"."""

DEFAULT_LIMITS = Limits()

TutorialDict = dict[str, float | bool | dict[str, float] | None]


def to_config_record(
    meta: TrainProcessMetadata, limits: Limits = DEFAULT_LIMITS
) -> ConfigRecord:
    """Validate `meta` and put its type URL and bytes into a `ConfigRecord`."""
    validate(meta, limits)
    payload = meta.SerializeToString()
    check_size(payload, limits)
    return ConfigRecord({TYPE_URL_KEY: TYPE_URL, FIELD_KEY: payload})


def check_type_url(type_url: str) -> None:
    """Refuse a type URL naming another message or another major version."""
    got = type_url.rsplit("/", 1)[-1]
    if got == FULL_NAME:
        return
    package, _, name = got.rpartition(".")
    family, _, version = package.rpartition(".")
    if (family, name) == (_FAMILY, TrainProcessMetadata.DESCRIPTOR.name):
        raise MetadataDecodeError(
            Reason.UNSUPPORTED_VERSION,
            f"payload is {got} (major version {version}); this reader decodes "
            f"{FULL_NAME} only: upgrade it to one that reads {package}",
        )
    raise MetadataDecodeError(
        Reason.WRONG_TYPE, f"payload is a {got!r}, expected {FULL_NAME!r}"
    )


def decode(
    type_url: str, payload: bytes, limits: Limits = DEFAULT_LIMITS
) -> TrainProcessMetadata:
    """Check the type and size, parse, then validate one payload."""
    check_type_url(type_url)
    check_size(payload, limits)
    meta = TrainProcessMetadata()
    try:
        meta.ParseFromString(payload)
    except DecodeError as err:
        raise MetadataDecodeError(
            Reason.MALFORMED,
            f"{len(payload)} bytes are not a {FULL_NAME} payload ({err}); "
            "was the ClientApp built from this project's proto/?",
        ) from err
    validate(meta, limits)
    return meta


def payload_of(reply: Message) -> tuple[str, bytes]:
    """Return the type URL and payload bytes a ClientApp put in its train reply."""
    if not reply.has_content():
        raise MetadataDecodeError(
            Reason.MISSING_RECORD, f"reply carries an error, not content: {reply.error}"
        )
    record = reply.content.config_records.get(RECORD_KEY)
    if record is None:
        raise MetadataDecodeError(
            Reason.MISSING_RECORD,
            f"reply has no ConfigRecord {RECORD_KEY!r}; the ClientApp must add "
            "codec.to_config_record(meta) to its train reply",
        )
    type_url, payload = record.get(TYPE_URL_KEY), record.get(FIELD_KEY)
    if payload is None:
        raise MetadataDecodeError(
            Reason.MISSING_META, f"ConfigRecord {RECORD_KEY!r} has no {FIELD_KEY!r}"
        )
    if not isinstance(payload, bytes):
        raise MetadataDecodeError(
            Reason.META_NOT_BYTES,
            f"ConfigRecord {RECORD_KEY!r} needs bytes under {FIELD_KEY!r}, "
            f"got {type(payload).__name__}",
        )
    if not isinstance(type_url, str):
        raise MetadataDecodeError(
            Reason.MISSING_TYPE_URL,
            f"ConfigRecord {RECORD_KEY!r} needs the payload's type URL under "
            f"{TYPE_URL_KEY!r}, e.g. {TYPE_URL!r}",
        )
    return type_url, payload


def from_reply(reply: Message, limits: Limits = DEFAULT_LIMITS) -> TrainProcessMetadata:
    """Decode the training metadata a ClientApp put in its train reply."""
    return decode(*payload_of(reply), limits)


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
