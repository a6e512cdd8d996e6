"""`metadata_mod`: a ClientApp mod that times each call and attaches its metadata.

    app = ClientApp(mods=[metadata_mod])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        ...  # train as Flower's quickstart does
        report(training_losses=losses, converged=converged)
        return Message(content=content, reply_to=msg)

Around every train (and evaluate) call the mod starts an empty metadata
message of the configured type, times the call, fills the field whose role
is ROLE_DURATION with the seconds it took (unless the function reported
it), applies the node's egress policy (see `egress`) to it and to the reply's
MetricRecords, validates the message
by the schema's rules and puts it into the reply under "train_metadata"
("evaluate_metadata"). The function reports what only it knows with
`report(field=value, ...)`. A report that breaks a rule is not sent: the
reply carries the model update and, in the metadata's place, the rule's
reason (`codec.refusal_record`), which the server records as a rejection;
the update still counts.
"""

import time
from collections.abc import Callable
from contextvars import ContextVar
from logging import WARNING
from pathlib import Path
from typing import TypeVar

from flwr.app import Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.logger import log
from google.protobuf.message import Message as ProtoMessage

from flower_app.client.egress import EgressPolicy
from flower_app.protocol import codec, schema, validation
from flower_app.protocol.metadata_log import append_one
from flower_app.protocol.records import file_accepted, new_record
from flower_app.protocol.rules import DEFAULT_LIMITS, Limits, MetadataDecodeError
from flower_meta.v1.metadata_pb2 import (
    EgressNote,
    EvaluateProcessMetadata,
    TrainProcessMetadata,
)
from flower_meta.v1.options_pb2 import ROLE_DURATION

M = TypeVar("M", bound=ProtoMessage)


class _NotCollected:
    """What `report` fills during a call whose stage the mod has no type for."""


_building: ContextVar[ProtoMessage | _NotCollected | None] = ContextVar(
    "metadata", default=None
)


def report(**fields: object) -> None:
    """Set fields of the metadata the mod sends with this call's reply.

    Ignored in a call whose stage the mod sends no metadata for. For a call
    mypy checks against the schema, see `reply_metadata`.

    Parameters
    ----------
    **fields : object
        Field name to value: scalars are set (an enum by number), lists fill
        repeated fields, dicts map fields, messages are copied in, None
        leaves a field absent.

    Raises
    ------
    RuntimeError
        Outside a call wrapped by the mod.
    AttributeError, TypeError, ValueError
        Protobuf's own, for a wrong field name or value type.

    """
    meta = _building.get()
    if meta is None:
        raise RuntimeError("report() needs a ClientApp with mods=[metadata_mod]")
    if isinstance(meta, _NotCollected):
        return
    for name, value in fields.items():
        if value is None:
            meta.ClearField(name)
        elif isinstance(value, list | tuple):
            container = getattr(meta, name)
            del container[:]
            container.extend(value)
        elif isinstance(value, dict):
            entries = getattr(meta, name)
            entries.clear()
            for key, item in value.items():
                if isinstance(item, ProtoMessage):
                    entries[key].CopyFrom(item)
                else:
                    entries[key] = item
        elif isinstance(value, ProtoMessage):
            getattr(meta, name).CopyFrom(value)
        else:
            setattr(meta, name, value)


def reply_metadata(kind: type[M]) -> M:
    """Return the metadata message this call's reply carries, to fill in place.

    The typed twin of `report`: mypy checks every field you set against the
    generated stubs, e.g.
    ``reply_metadata(TrainProcessMetadata).training_losses.extend(losses)``.

    Parameters
    ----------
    kind : type[Message]
        The metadata type the mod was given for this stage.

    Returns
    -------
    Message
        The message the mod validates and sends when the call returns; in a
        stage the mod sends no metadata for, a fresh one that goes nowhere.

    Raises
    ------
    RuntimeError
        Outside a call wrapped by the mod.
    TypeError
        If the mod sends another type in this stage.

    """
    meta = _building.get()
    if meta is None:
        raise RuntimeError("reply_metadata() needs ClientApp(mods=[metadata_mod])")
    if isinstance(meta, _NotCollected):
        return kind()
    if not isinstance(meta, kind):
        raise TypeError(
            f"this call sends {meta.DESCRIPTOR.full_name}, "
            f"not {kind.DESCRIPTOR.full_name}"
        )
    return meta


class MetadataMod:
    """The mod, for any metadata types; `metadata_mod` is the default one.

    Parameters
    ----------
    train : type[Message] | None (default: TrainProcessMetadata)
        The metadata type sent with train replies; None sends none.
    evaluate : type[Message] | None (default: EvaluateProcessMetadata)
        The metadata type sent with evaluate replies; None sends none.
    limits : Limits (default: DEFAULT_LIMITS)
        The bounds the node checks its own metadata against before sending.
    clock : Callable[[], float] (default: time.perf_counter)
        Seconds, for the field whose role is ROLE_DURATION.

    """

    def __init__(
        self,
        train: type[ProtoMessage] | None = TrainProcessMetadata,
        evaluate: type[ProtoMessage] | None = EvaluateProcessMetadata,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Attach `train` metadata to train replies, `evaluate` to evaluate ones."""
        for kind in (train, evaluate):  # a rule it cannot apply: refused now
            if kind is not None:
                validation.validator(kind.DESCRIPTOR)
        self.kinds = {
            MessageType.TRAIN: (train, codec.TRAIN_RECORD_KEY),
            MessageType.EVALUATE: (evaluate, codec.EVALUATE_RECORD_KEY),
        }
        self.limits = limits
        self.clock = clock

    def __call__(
        self, msg: Message, context: Context, call_next: ClientAppCallable
    ) -> Message:
        """Time `call_next`, then attach the reported, validated metadata."""
        kind, record_key = self.kinds.get(msg.metadata.message_type, (None, ""))
        if kind is None:
            token = _building.set(_NotCollected())
            try:
                return call_next(msg, context)
            finally:
                _building.reset(token)
        meta = kind()
        token = _building.set(meta)
        try:
            start = self.clock()
            reply = call_next(msg, context)
            elapsed = self.clock() - start
        finally:
            _building.reset(token)
        if not reply.has_content():
            return reply
        duration = schema.with_role(kind.DESCRIPTOR, ROLE_DURATION)
        if duration is not None and not schema.is_present(meta, duration):
            setattr(meta, duration.name, elapsed)
        policy = EgressPolicy.from_node_config(context.node_config)
        note = policy.apply(meta)
        policy.apply_to_metrics(reply)
        try:
            record = codec.to_config_record(meta, self.limits, note)
        except MetadataDecodeError as err:
            log(WARNING, "metadata not sent, it breaks a rule: %s", err)
            reply.content[record_key] = codec.refusal_record(err, meta)
            return reply
        reply.content[record_key] = record
        if policy.log is not None:
            _keep_a_copy(policy.log, msg, context, record_key, meta, note)
        return reply


def _keep_a_copy(
    folder: Path,
    msg: Message,
    context: Context,
    record_key: str,
    meta: ProtoMessage,
    note: EgressNote,
) -> None:
    """Append what this node sent to its own metadata log in `folder`.

    One record a call, in time flat in the log's length (`append_one`).
    """
    config = msg.content.config_records.get("config") if msg.has_content() else None
    server_round = config.get("server-round", 0) if config is not None else 0
    record = new_record(context.run_id, int(server_round), context.node_id, record_key)  # type: ignore[arg-type]
    file_accepted(record, meta)
    if note.ByteSize():
        record.egress.CopyFrom(note)
    try:
        append_one(folder, record, [type(meta)])
    except OSError as err:  # the node's own copy never costs the reply
        log(WARNING, "metadata copy not kept in %s: %s", folder, err)


metadata_mod = MetadataMod()
"""Attaches `TrainProcessMetadata` and `EvaluateProcessMetadata` to replies."""
