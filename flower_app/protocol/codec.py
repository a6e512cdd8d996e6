"""The one codec between protobuf messages and Flower `ConfigRecord`s.

A `ConfigRecord` carrying a message holds a google.protobuf.Any, flattened:
"type_url" names the message and its major version, "meta" holds its bytes.
Train replies carry their metadata under "train_metadata", evaluate replies
under "evaluate_metadata", instructions under "config". Decoding has one
path: the record's shape, the type URL, the size, the parse, the rules.
"""

import hashlib
import re
from typing import TypeVar

from flwr.app import ConfigRecord
from flwr.app import Message as FlowerMessage
from google.protobuf.message import DecodeError, Message

from flower_app.protocol import schema
from flower_app.protocol.rules import (
    DEFAULT_LIMITS,
    NOTHING_EXCUSED,
    Excused,
    Limits,
    MetadataDecodeError,
    Reason,
)
from flower_app.protocol.text import printable
from flower_app.protocol.validation import validate
from flower_meta.v1.metadata_pb2 import (
    EgressNote,
    EvaluateProcessMetadata,
    Rejection,
    TrainProcessMetadata,
)

M = TypeVar("M", bound=Message)

TRAIN_RECORD_KEY = "train_metadata"
"""Key of the `ConfigRecord` with the metadata in a train reply."""
EVALUATE_RECORD_KEY = "evaluate_metadata"
"""Key of the `ConfigRecord` with the metadata in an evaluate reply."""
INSTRUCTIONS_KEY = "config"
"""Key of the `ConfigRecord` with the instructions in a train/evaluate message."""
META_KEY = "meta"
"""Key of the serialized message inside such a `ConfigRecord`."""
TYPE_URL_KEY = "type_url"
"""Key of the message's type URL inside such a `ConfigRecord`."""
EGRESS_KEY = "egress"
"""Key of the node's `EgressNote` inside such a `ConfigRecord`, if its policy acted."""
MAX_TYPE_URL = 256
"""Longest type URL a reader looks at."""
PAYLOAD_KEPT = 256
"""Bytes of a refused payload a `Rejection` keeps for inspection."""
MAX_REASON = 64
"""Longest reason code a node may give for refusing its own metadata."""
MAX_REMEMBERED = 1024
"""Type URLs accepted before, remembered so that the next check is one lookup."""
_ACCEPTED: dict[str, type[Message]] = {}
_TYPE_URL = re.compile(rf"[A-Za-z0-9._~:/-]{{1,{MAX_TYPE_URL}}}")
_REASON = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_REASON - 1}}}")


def type_url_of(schema: type[Message]) -> str:
    """Return the type URL of `schema`, as `google.protobuf.Any` writes it.

    Parameters
    ----------
    schema : type[Message]
        A generated message class, e.g. `TrainProcessMetadata`.

    Returns
    -------
    str
        E.g. "type.googleapis.com/flower_meta.v1.TrainProcessMetadata".

    """
    return f"type.googleapis.com/{schema.DESCRIPTOR.full_name}"


TRAIN_TYPE_URL = type_url_of(TrainProcessMetadata)
EVALUATE_TYPE_URL = type_url_of(EvaluateProcessMetadata)


REFUSAL_TYPE_URL = type_url_of(Rejection)
"""Type URL of what a node sends in place of metadata it refused itself."""


class Refused(MetadataDecodeError):
    """A refused record, with what it held: its type URL and payload, if any."""

    def __init__(self, error: MetadataDecodeError, type_url: str, payload: bytes):
        """Wrap `error` with the record's type URL and payload."""
        super().__init__(
            error.reason, error.rule_words, error.field_path, error.rule_id, error.got
        )
        self.type_url = type_url
        self.payload = payload
        self.payload_size = len(payload)
        self.payload_sha256 = hashlib.sha256(payload).digest() if payload else b""

    def rejection(self, record_key: str) -> Rejection:
        """Describe this refusal for the metadata log, text escaped and bounded."""
        return Rejection(
            reason=self.reason,
            detail=printable(self.detail),
            payload=self.payload[:PAYLOAD_KEPT],
            payload_size=self.payload_size,
            payload_sha256=self.payload_sha256,
            type_url=printable(self.type_url),
            record_key=record_key,
            field_path=printable(self.field_path),
            rule_id=printable(self.rule_id),
        )


def refusal_record(error: MetadataDecodeError, message: Message) -> ConfigRecord:
    """Build what a node sends in place of metadata that breaks a rule.

    A `Rejection` under the refusal type URL that carries no data of the
    refused report: its reason code, field path and rule id, the rule in
    words without the refused value, and the payload's type URL, size and
    SHA-256 (not a byte of it). The server records the reply's metadata as
    rejected with that reason, and its model update still counts, as for
    metadata the server refuses itself. (The node's own log keeps the
    value: the mod logs the whole refusal.)
    """
    payload = message.SerializeToString()
    sent = Rejection(
        reason=error.reason,
        detail=printable(error.rule_words),
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).digest(),
        type_url=printable(type_url_of(type(message))),
        field_path=printable(error.field_path),
        rule_id=printable(error.rule_id),
    )
    return ConfigRecord(
        {TYPE_URL_KEY: REFUSAL_TYPE_URL, META_KEY: sent.SerializeToString()}
    )


def _refused_by_node(payload: bytes, limits: Limits) -> Refused:
    """Read the `Rejection` a node sent for its own metadata (`refusal_record`)."""
    _check_size(payload, limits)
    try:
        sent = Rejection.FromString(payload)
    except DecodeError as err:
        raise MetadataDecodeError(
            Reason.MALFORMED, f"{len(payload)} bytes are not a node's refusal ({err})"
        ) from err
    if not _REASON.fullmatch(sent.reason):
        raise MetadataDecodeError(
            Reason.MALFORMED,
            f"the node refused its metadata with reason "
            f"{printable(repr(sent.reason), 80)}, not 1 to {MAX_REASON} characters "
            "of a-z 0-9 _",
        )
    error = MetadataDecodeError(
        sent.reason,
        f"refused by the node: {sent.detail}",
        sent.field_path,
        sent.rule_id,
    )
    refused = Refused(error, sent.type_url, sent.payload[:PAYLOAD_KEPT])
    refused.payload_size = sent.payload_size
    whole = len(sent.payload_sha256) == hashlib.sha256().digest_size
    refused.payload_sha256 = sent.payload_sha256 if whole else b""  # never the prefix's
    return refused


def to_config_record(
    message: Message, limits: Limits = DEFAULT_LIMITS, note: EgressNote | None = None
) -> ConfigRecord:
    """Validate `message`; put its type URL, bytes and egress note into a record."""
    validate(message, limits, excused_by(note))
    payload = message.SerializeToString()
    _check_size(payload, limits)
    record = ConfigRecord({TYPE_URL_KEY: type_url_of(type(message)), META_KEY: payload})
    if note is not None and note.ByteSize():
        record[EGRESS_KEY] = note.SerializeToString()
    return record


def read(
    schema: type[M],
    message: FlowerMessage,
    record_key: str,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[M, EgressNote | None]:
    """Decode the `schema` message a Flower message carries under `record_key`.

    Returns it with the node's egress note (None if its policy did nothing).
    Raises `Refused` for anything that is not a valid `schema` message, and
    with the node's own reason when the node refused it (`refusal_record`).
    """
    type_url, payload = "", b""
    try:
        type_url, payload, note = _envelope(message, record_key, schema)
        if type_url == REFUSAL_TYPE_URL:
            refused = _refused_by_node(payload, limits)
        else:
            return decode(schema, type_url, payload, limits, note), note
    except MetadataDecodeError as err:
        raise Refused(err, type_url, payload) from err
    raise refused


def from_message(
    schema: type[M],
    message: FlowerMessage,
    record_key: str,
    limits: Limits = DEFAULT_LIMITS,
) -> M:
    """Decode the `schema` message a Flower message carries (see `read`)."""
    return read(schema, message, record_key, limits)[0]


def instructions_config(instructions: Message) -> ConfigRecord:
    """Pack typed instructions for the nodes as a strategy's config.

    Parameters
    ----------
    instructions : Message
        E.g. a `TrainInstructions`, validated by its schema's rules.

    Returns
    -------
    ConfigRecord
        What `Strategy.start(train_config=..., evaluate_config=...)` takes;
        the strategy adds its own keys ("server-round") beside it.

    Raises
    ------
    MetadataDecodeError
        If the instructions break a rule of their schema.

    """
    return to_config_record(instructions)


def read_instructions(kind: type[M], message: FlowerMessage) -> M:
    """Decode and validate the typed instructions a train or evaluate message carries.

    Parameters
    ----------
    kind : type[Message]
        The instructions' type, e.g. `TrainInstructions`.
    message : flwr.app.Message
        The message the ClientApp received.

    Returns
    -------
    Message
        The instructions, of type `kind`.

    Raises
    ------
    MetadataDecodeError
        If the message carries none, another type, or ones that break a rule.

    """
    return from_message(kind, message, INSTRUCTIONS_KEY)


def excused_by(note: EgressNote | None) -> Excused:
    """Read what the rules excuse a report for from its egress note."""
    if note is None or not (note.withheld or note.last_only):
        return NOTHING_EXCUSED
    return Excused(frozenset(note.withheld), frozenset(note.last_only))


def decode(
    schema: type[M],
    type_url: str,
    payload: bytes,
    limits: Limits = DEFAULT_LIMITS,
    note: EgressNote | None = None,
) -> M:
    """Check the type URL and size, parse, then validate one `schema` payload."""
    if _ACCEPTED.get(type_url) is not schema:
        check_type_url(type_url, schema)
    if len(payload) > limits.max_payload_bytes:
        _check_size(payload, limits)
    try:
        message = schema.FromString(payload)
    except DecodeError as err:
        raise MetadataDecodeError(
            Reason.MALFORMED,
            f"{len(payload)} bytes are not a {schema.DESCRIPTOR.full_name} payload "
            f"({err}); was the sender built from this project's proto/?",
        ) from err
    if note is None:
        validate(message, limits, NOTHING_EXCUSED, payload)
    else:
        check_note(message, note)
        validate(message, limits, excused_by(note), payload)
    return message


def check_note(message: Message, note: EgressNote) -> None:
    """Refuse an egress note its payload contradicts.

    The note excuses what the node's policy did, so it must be true of the
    payload: a field said to be withheld is absent, a series said to be
    sent as its last element holds at most one. Otherwise a note could
    lift the server's rules and limits.
    """
    fields = message.DESCRIPTOR.fields_by_name
    for name in note.withheld:
        if schema.is_present(message, fields[name]):
            raise MetadataDecodeError(
                Reason.EGRESS_NOTE_MISMATCH,
                f"{name}: the egress note says it was withheld, the payload holds it",
                name,
                "egress_note.withheld",
            )
    for name in note.last_only:
        field = fields[name]
        if not field.is_repeated or len(getattr(message, name)) > 1:
            held = len(getattr(message, name)) if field.is_repeated else "a scalar"
            raise MetadataDecodeError(
                Reason.EGRESS_NOTE_MISMATCH,
                f"{name}: the egress note says only its last element was sent, "
                f"the payload holds {held}",
                name,
                "egress_note.last_only",
            )


def check_type_url(type_url: str, schema: type[Message]) -> None:
    """Refuse a malformed type URL, or one naming another message or version."""
    if not _TYPE_URL.fullmatch(type_url):
        raise MetadataDecodeError(
            Reason.INVALID_TYPE_URL,
            f"type URL {printable(type_url, 80)!r} is not 1 to {MAX_TYPE_URL} "
            "characters of A-Z a-z 0-9 . _ ~ : / -",
        )
    expected = schema.DESCRIPTOR.full_name
    got = type_url.rsplit("/", 1)[-1]
    if got == expected:
        if len(_ACCEPTED) < MAX_REMEMBERED:
            _ACCEPTED[type_url] = schema
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


def _check_size(payload: bytes, limits: Limits) -> None:
    """Refuse a payload over the size limit, before anything parses it."""
    if len(payload) > limits.max_payload_bytes:
        raise MetadataDecodeError(
            Reason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes exceed the limit of {limits.max_payload_bytes} "
            "(run config max-payload-bytes)",
        )


def _envelope(
    message: FlowerMessage, record_key: str, schema: type[Message]
) -> tuple[str, bytes, EgressNote | None]:
    """Return the type URL, payload bytes and egress note a Flower message carries."""
    if not message.has_content():
        raise MetadataDecodeError(
            Reason.MISSING_RECORD, "message carries an error, not content"
        )
    record = message.content.get(record_key)
    if not isinstance(record, ConfigRecord):
        raise MetadataDecodeError(
            Reason.MISSING_RECORD,
            f"message has no ConfigRecord {record_key!r}; the sender must add "
            "codec.to_config_record(...) under that key",
        )
    fields = dict(record.items())  # one pass: a record's lookups are slow
    type_url, payload = fields.get(TYPE_URL_KEY), fields.get(META_KEY)
    if payload is None:
        raise MetadataDecodeError(
            Reason.MISSING_META, f"ConfigRecord {record_key!r} has no {META_KEY!r}"
        )
    if not isinstance(payload, bytes):
        raise MetadataDecodeError(
            Reason.META_NOT_BYTES,
            f"ConfigRecord {record_key!r} needs bytes under {META_KEY!r}, "
            f"got {type(payload).__name__}",
        )
    if not isinstance(type_url, str) or not type_url:
        raise MetadataDecodeError(
            Reason.MISSING_TYPE_URL,
            f"ConfigRecord {record_key!r} needs the payload's type URL under "
            f"{TYPE_URL_KEY!r}, e.g. {TRAIN_TYPE_URL!r}",
        )
    return type_url, payload, _note(fields.get(EGRESS_KEY), schema)


def _note(value: object, schema: type[Message]) -> EgressNote | None:
    """Parse the egress note beside a payload; it may only name message fields."""
    if value is None:
        return None
    try:
        if not isinstance(value, bytes):
            raise DecodeError(f"{EGRESS_KEY!r} holds {type(value).__name__}, not bytes")
        note = EgressNote.FromString(value)
    except DecodeError as err:
        raise MetadataDecodeError(
            Reason.MALFORMED, f"the egress note does not parse: {err}"
        ) from err
    fields = schema.DESCRIPTOR.fields_by_name
    unknown = [n for n in (*note.withheld, *note.last_only) if n not in fields]
    if unknown:
        raise MetadataDecodeError(
            Reason.MALFORMED,
            f"the egress note names {printable(repr(unknown), 120)}, not fields of "
            f"{schema.DESCRIPTOR.full_name}",
        )
    return note if note.ByteSize() else None
