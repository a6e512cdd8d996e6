"""The schema's rules, enforced on any message from its descriptor; the run's policy.

Each field's rules are `(flower_meta.v1.field)` options in proto/ (see
options.proto): presence, finiteness and bounds, each with its reason code.
They are compiled into checks once per message type. `Limits` adds the
server's own policy: payload size, and how many epochs a report may hold.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from google.protobuf.message import Message

from flower_app.protocol import schema
from flower_app.protocol.canonical_json import number_text
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_meta.v1.options_pb2 import FieldSpec


class Reason(StrEnum):
    """Reason codes of the protocol and the server's policy.

    Field rules refuse with the codes their options name (see the generated
    reference); `MISSING_FIELD` and `OUT_OF_RANGE` are the defaults.
    """

    MISSING_RECORD = "missing_record"
    MISSING_META = "missing_meta"
    META_NOT_BYTES = "meta_not_bytes"
    MISSING_TYPE_URL = "missing_type_url"
    INVALID_TYPE_URL = "invalid_type_url"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED = "malformed"
    TOO_MANY_EPOCHS = "too_many_epochs"
    EPOCHS_MISSING = "epochs_missing"
    MISSING_FIELD = schema.MISSING_FIELD
    OUT_OF_RANGE = schema.OUT_OF_RANGE


class MetadataDecodeError(ValueError):
    """Metadata that is missing, undecodable or breaks a rule."""

    def __init__(self, reason: str, detail: str) -> None:
        """Carry a stable `reason` code and a `detail` a user can act on."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """The server's policy on top of the schema's rules."""

    max_payload_bytes: int = 65_536
    """Larger payloads are refused before parsing (1000 epochs take 8 KB)."""
    max_epochs: int = 4_096
    """An "epoch" series longer than this is refused."""
    expected_epochs: int | None = None
    """Epochs the server asked for; a shorter "epoch" series misses some."""


EPOCH = "epoch"
"""The series the epoch limits apply to."""
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Excused:
    """What a node's egress policy did to a report, not counted against it."""

    withheld: frozenset[str] = frozenset()
    """Top-level fields absent on purpose: their `required` does not apply."""
    last_only: frozenset[str] = frozenset()
    """Series sent as their last element: the epoch policy does not apply."""


NOTHING_EXCUSED = Excused()
Check = Callable[[Message, Limits, Excused, str], None]
"""One compiled rule: (message, limits, excused, path prefix) -> None or raise."""


def validate(
    message: Message,
    limits: Limits = DEFAULT_LIMITS,
    excused: Excused = NOTHING_EXCUSED,
) -> None:
    """Raise `MetadataDecodeError` unless `message` obeys its schema and `limits`."""
    for check in checks(message.DESCRIPTOR):
        check(message, limits, excused, "")


@cache
def checks(descriptor: Descriptor) -> tuple[Check, ...]:
    """Compile the message's rules into checks: field by field, then the policy."""
    rules = [c for field in descriptor.fields for c in _field_checks(field)]
    policy = [
        _epoch_policy(field)
        for field in descriptor.fields
        if field.is_repeated and schema.field_spec(field).series == EPOCH
    ]
    return (*rules, *policy)


def _field_checks(field: FieldDescriptor) -> list[Check]:
    spec = schema.field_spec(field)
    found: list[Check] = []
    if spec.required:
        found.append(_presence(field))
    if field.message_type is not None and not field.message_type.GetOptions().map_entry:
        if checks(field.message_type):
            found.append(_nested(field))
    elif (test := _value_test(spec)) is not None:
        found.append(_values(field, test) if field.is_repeated else _value(field, test))
    return found


def _presence(field: FieldDescriptor) -> Check:
    name, reason = field.name, schema.missing_reason(field)

    def check(message: Message, _: Limits, excused: Excused, path: str) -> None:
        if not message.HasField(name) and (path or name not in excused.withheld):
            raise MetadataDecodeError(reason, f"{path}{name}: missing; it is required")

    return check


def _value_test(spec: FieldSpec) -> Callable[[float], bool] | None:
    """Build a predicate for one value under the spec's bounds (None: no bounds)."""
    tests: list[Callable[[float], bool]] = []
    if spec.finite:
        tests.append(math.isfinite)
    if spec.HasField("gte"):
        tests.append(spec.gte.__le__)
    if spec.HasField("gt"):
        tests.append(spec.gt.__lt__)
    if spec.HasField("lte"):
        tests.append(spec.lte.__ge__)
    if spec.HasField("lt"):
        tests.append(spec.lt.__gt__)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


def _refusal(field: FieldDescriptor, path: str, value: float) -> MetadataDecodeError:
    rule = schema.describe_rule(schema.field_spec(field))
    return MetadataDecodeError(
        schema.invalid_reason(field),
        f"{path}: must be {rule}, got {number_text(value)}",
    )


def _value(field: FieldDescriptor, test: Callable[[float], bool]) -> Check:
    name, presence = field.name, field.has_presence

    def check(message: Message, _: Limits, __: Excused, path: str) -> None:
        if presence and not message.HasField(name):
            return  # absent is not 0: `required` alone says whether it may be
        value = getattr(message, name)
        if not test(value):
            raise _refusal(field, f"{path}{name}", value)

    return check


def _values(field: FieldDescriptor, test: Callable[[float], bool]) -> Check:
    name = field.name

    def check(message: Message, _: Limits, __: Excused, path: str) -> None:
        values: Sequence[float] = getattr(message, name)
        for index, value in enumerate(values):
            if not test(value):
                raise _refusal(field, f"{path}{name}[{index}]", value)

    return check


def _nested(field: FieldDescriptor) -> Check:
    name, repeated = field.name, field.is_repeated

    def check(message: Message, limits: Limits, _: Excused, path: str) -> None:
        if repeated:
            items = [(f"[{i}]", item) for i, item in enumerate(getattr(message, name))]
        elif message.HasField(name):
            items = [("", getattr(message, name))]
        else:
            items = []
        for index, item in items:
            prefix = f"{path}{name}{index}."
            for nested in checks(item.DESCRIPTOR):
                nested(item, limits, NOTHING_EXCUSED, prefix)

    return check


def _epoch_policy(field: FieldDescriptor) -> Check:
    name = field.name

    def check(message: Message, limits: Limits, excused: Excused, path: str) -> None:
        if name in excused.last_only:
            return
        epochs = len(getattr(message, name))
        if epochs > limits.max_epochs:
            raise MetadataDecodeError(
                Reason.TOO_MANY_EPOCHS,
                f"{path}{name}: {epochs} epochs exceed the limit of "
                f"{limits.max_epochs} (run config max-epochs)",
            )
        expected = limits.expected_epochs
        if expected is not None and epochs < expected:
            raise MetadataDecodeError(
                Reason.EPOCHS_MISSING,
                f"{path}{name}: epochs {epochs + 1}..{expected} are missing: the "
                f"server asked for {expected} local epochs",
            )

    return check
