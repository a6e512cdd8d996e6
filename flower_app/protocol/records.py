"""One MetadataLogRecord, built and read: a reply's outcome, filed under its stage.

Writers (the strategy, the node's copy) start a record with `new_record`
and file accepted metadata with `file_accepted`; readers (the outcomes
model, the trackers, `flower-meta`) ask a record of any schema revision
its stage (`stage_key`), its time (`written_at`) and which fields its
schema revision has (`has_field`).
"""

import time
from functools import cache

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from flower_app.protocol.codec import EVALUATE_RECORD_KEY, TRAIN_RECORD_KEY
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)

_KEYS = {"accepted": TRAIN_RECORD_KEY, "evaluated": EVALUATE_RECORD_KEY}
"""Record keys of outcomes in logs written before records named them."""


def new_record(
    run_id: int, server_round: int, node_id: int, record_key: str
) -> MetadataLogRecord:
    """Start a record of one outcome, stamped with the time it is written."""
    record = MetadataLogRecord(
        run_id=run_id, server_round=server_round, node_id=node_id, record_key=record_key
    )
    stamp = record.received_at
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
    return record


def file_accepted(record: MetadataLogRecord, meta: Message) -> None:
    """File accepted metadata under its own field, or packed as an Any."""
    if isinstance(meta, TrainProcessMetadata):
        record.accepted.CopyFrom(meta)
    elif isinstance(meta, EvaluateProcessMetadata):
        record.evaluated.CopyFrom(meta)
    else:
        record.accepted_other.Pack(meta)


def stage_key(record: Message) -> str:
    """Return the record key of the stage a record is about; "" if none.

    Logs written before records named it: "train_metadata" for `accepted`,
    "evaluate_metadata" for `evaluated`, a rejection's own record key.
    """
    outcome = record.WhichOneof("outcome")
    if outcome in (None, "centralized"):
        return ""
    named = has_field(record.DESCRIPTOR, "record_key")  # not in v1.0's logs
    key = (named and record.record_key) or _KEYS.get(str(outcome), "")  # type: ignore[attr-defined]
    if not key and outcome == "rejected":
        key = record.rejected.record_key  # type: ignore[attr-defined]
    return str(key)


@cache
def has_field(message_type: Descriptor, name: str) -> bool:
    """Say whether a message type (of this build or a log's schema) has a field."""
    return name in message_type.fields_by_name


def written_at(record: Message) -> int | None:
    """When a record was written (its `received_at`), ms since the Unix epoch."""
    stamp = record.received_at  # type: ignore[attr-defined]
    if not stamp.seconds and not stamp.nanos:
        return None
    return int(stamp.seconds * 1000 + stamp.nanos // 1_000_000)
