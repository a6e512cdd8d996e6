"""The schema's rules, enforced on any message from its descriptor; the run's policy.

Each field's rules are `(flower_meta.v1.field)` options in proto/ (see
options.proto): presence, finiteness and bounds, each with its reason code.
They are compiled once per message type into one Python function (its
source is the rules, spelled out), so that checking a report costs little
more than reading its fields. `Limits` adds the server's own policy:
payload size, and how many epochs a report may hold.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.message import Message

from flower_app.protocol import schema, series
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
    EGRESS_NOTE_MISMATCH = "egress_note_mismatch"
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
    """The server's policy on top of the schema's rules.

    Parameters
    ----------
    max_payload_bytes : int (default: 65536)
        Larger payloads are refused before parsing (1000 epochs take 8 KB).
    max_epochs : int (default: 4096)
        An "epoch" series longer than this is refused.
    expected_epochs : int | None (default: None)
        Epochs the server asked for; a shorter "epoch" series misses some.

    """

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
    """Series sent as their last element: epochs are not missing (the payload
    holding at most one is checked first, `codec.check_note`)."""


NOTHING_EXCUSED = Excused()
Validator = Callable[[Message, Limits, Excused, str, bytes], None]
"""A message type's rules: (message, limits, excused, path prefix, its wire bytes
or b"") -> None, or raise."""
_VALIDATORS: dict[object, Validator] = {}


def validate(
    message: Message,
    limits: Limits = DEFAULT_LIMITS,
    excused: Excused = NOTHING_EXCUSED,
    wire: bytes = b"",
) -> None:
    """Raise `MetadataDecodeError` unless `message` obeys its schema and `limits`.

    `wire`, the bytes `message` was parsed from, lets long series be checked
    on them (see `series`).
    """
    check = _VALIDATORS.get(message.DESCRIPTOR) or _validator(message.DESCRIPTOR)
    check(message, limits, excused, "", wire)


def compile_rules(descriptor: Descriptor) -> Validator:
    """Write a message type's rules as one Python function: once per type.

    The rules are checked field by field in declaration order, then the
    epoch policy. The function's source names fields only by identifiers
    (checked) and bounds only by their `repr`; it is kept as `__source__`.
    """
    fields: list[FieldDescriptor] = list(descriptor.fields)
    env: dict[str, object] = {
        "inf": math.inf,
        "F": fields,
        "NOTHING": NOTHING_EXCUSED,
        "missing": _missing,
        "refused": _refused,
        "refused_in": _refused_in,
        "epoch_policy": _epoch_policy,
        "validator": _validator,
        "within": {
            index: series.checker(field, _rule(field))
            for index, field in enumerate(fields)
            if series.packable(field) and _condition(schema.field_spec(field))
        },
        "LONG": series.LONG,
    }
    body: list[str] = []
    for index, field in enumerate(fields):
        if not field.name.isidentifier():
            raise ValueError(f"field name {field.name!r} is not an identifier")
        body += _field_source(index, field)
    for index, field in enumerate(fields):
        if field.is_repeated and schema.field_spec(field).series == EPOCH:
            body += [
                f"    n = len(m.{field.name})",
                "    low = limits.expected_epochs",
                "    if n > limits.max_epochs or (low is not None and n < low):",
                f"        epoch_policy(F[{index}], n, limits, excused, path)",
            ]
    lines = "\n".join(body) or "    pass"
    source = f"def check(m, limits, excused, path, wire):\n{lines}\n"
    exec(compile(source, f"<rules of {descriptor.full_name}>", "exec"), env)
    check = env["check"]
    check.__source__ = source  # type: ignore[attr-defined]
    return check  # type: ignore[return-value]


def _field_source(index: int, field: FieldDescriptor) -> list[str]:
    """Write the source lines that check one field."""
    name, spec = field.name, schema.field_spec(field)
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return []
        if field.is_repeated:
            return [
                f"    for k, item in enumerate(m.{name}):",
                f"        validator(F[{index}].message_type)(item, limits, NOTHING, "
                f"f'{{path}}{name}[{{k}}].', b'')",
            ]
        lines = [f"    if m.HasField('{name}'):"]
        lines.append(
            f"        validator(F[{index}].message_type)(m.{name}, limits, NOTHING, "
            f"path + '{name}.', b'')"
        )
        return lines + _missing_source(index, field) if spec.required else lines
    condition = _condition(spec)
    if field.is_repeated:
        if condition is None:
            return []
        loop = [
            "    for v in values:",
            f"        if not ({condition}):",
            f"            refused_in(F[{index}], values, path)",
        ]
        if not series.packable(field):
            return [f"    values = m.{name}", *loop]
        return [
            f"    values = m.{name}",
            f"    if len(values) < LONG or not within[{index}](wire, len(values)):",
            *("    " + line for line in loop),
        ]
    checked = (
        []
        if condition is None
        else [
            f"        if not ({condition}):",
            f"            refused(F[{index}], v, path)",
        ]
    )
    if not field.has_presence:
        return [f"    v = m.{name}", *(line[4:] for line in checked)]
    lines = [f"    if m.HasField('{name}'):", f"        v = m.{name}", *checked]
    if spec.required:
        return lines + _missing_source(index, field)
    return lines if checked else []


def _missing_source(index: int, field: FieldDescriptor) -> list[str]:
    return [
        "    elif path or " + repr(field.name) + " not in excused.withheld:",
        f"        missing(F[{index}], path)",
    ]


def _condition(spec: FieldSpec) -> str | None:
    """Write the value rule of `spec` as one Python comparison on `v`, or None.

    A bound is one comparison; `finite` adds the open bound -inf or +inf on
    a side with no bound of its own. NaN fails every comparison, so it
    fails any rule.
    """
    bounds = [name for name in ("gte", "gt", "lte", "lt") if spec.HasField(name)]
    if {"gte", "gt"} <= set(bounds) or {"lte", "lt"} <= set(bounds):
        raise ValueError("a field takes at most one lower and one upper bound")
    values = {name: getattr(spec, name) for name in bounds}
    if any(math.isnan(v) for v in values.values()):
        raise ValueError("a bound is NaN")
    low = (
        f"{values['gte']!r} <= "
        if "gte" in values
        else f"{values['gt']!r} < "
        if "gt" in values
        else "-inf < "
        if spec.finite
        else ""
    )
    high = (
        f" <= {values['lte']!r}"
        if "lte" in values
        else f" < {values['lt']!r}"
        if "lt" in values
        else " < inf"
        if spec.finite
        else ""
    )
    return f"{low}v{high}" if low or high else None


def _rule(field: FieldDescriptor) -> Callable[[float], bool]:
    """Return the field's value rule as a function."""
    rule: Callable[[float], bool] = eval(
        f"lambda v: {_condition(schema.field_spec(field))}", {"inf": math.inf}
    )
    return rule


def _validator(descriptor: Descriptor) -> Validator:
    """Return the message type's compiled rules, compiling them on first use."""
    check = _VALIDATORS.get(descriptor)
    if check is None:
        check = _VALIDATORS.setdefault(descriptor, compile_rules(descriptor))
    return check


def _missing(field: FieldDescriptor, path: str) -> None:
    raise MetadataDecodeError(
        schema.missing_reason(field), f"{path}{field.name}: missing; it is required"
    )


def _refused(field: FieldDescriptor, value: float, path: str) -> None:
    _refuse(field, f"{path}{field.name}", value)


def _refused_in(field: FieldDescriptor, values: Sequence[float], path: str) -> None:
    """Refuse the first element of `values` that breaks the field's rule."""
    test = _rule(field)
    for index, value in enumerate(values):
        if not test(value):
            _refuse(field, f"{path}{field.name}[{index}]", value)


def _refuse(field: FieldDescriptor, where: str, value: float) -> None:
    rule = schema.describe_rule(schema.field_spec(field))
    raise MetadataDecodeError(
        schema.invalid_reason(field),
        f"{where}: must be {rule}, got {number_text(value)}",
    )


def _epoch_policy(
    field: FieldDescriptor,
    epochs: int,
    limits: Limits,
    excused: Excused,
    path: str,
) -> None:
    """Apply the server's limits to an epoch series: at most max, at least asked."""
    name = field.name
    if epochs > limits.max_epochs:
        raise MetadataDecodeError(
            Reason.TOO_MANY_EPOCHS,
            f"{path}{name}: {epochs} epochs exceed the limit of "
            f"{limits.max_epochs} (run config max-epochs)",
        )
    expected = limits.expected_epochs
    if expected is not None and epochs < expected and name not in excused.last_only:
        raise MetadataDecodeError(
            Reason.EPOCHS_MISSING,
            f"{path}{name}: epochs {epochs + 1}..{expected} are missing: the "
            f"server asked for {expected} local epochs",
        )
