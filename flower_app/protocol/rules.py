"""The schema's rules, enforced on any message from its descriptor; the run's policy.

Each field's rules are protovalidate's `(buf.validate.field)` options in
proto/ (or, written the v1.0 way, in `(flower_meta.v1.field)`; see
`schema.field_spec`): presence, finiteness and bounds, each refused with
the reason code its `(flower_meta.v1.field)` option names. They are
compiled once per message type into a plan, one step a field, and one
closure that walks it (no source text, no `exec`: a field name is only
ever data), so that checking a report costs little more than reading its
fields. `Limits` adds the server's own policy: payload size, and how many
epochs a report may hold.
"""

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.descriptor import FieldDescriptor as pb
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
    """Metadata that is missing, undecodable or breaks a rule.

    Parameters
    ----------
    reason : str
        The stable reason code, e.g. "out_of_range".
    detail : str
        What is wrong, in words a user can act on.
    field_path : str (default: "")
        The field it is about, in protovalidate's form ("x", "xs[3]",
        "inner.x"); empty for the payload as a whole.
    rule_id : str (default: "")
        The rule broken, as protovalidate names it ("required",
        "double.gte"), or the run-config policy ("run_config.max_epochs");
        empty when no field rule applies.

    """

    def __init__(
        self, reason: str, detail: str, field_path: str = "", rule_id: str = ""
    ) -> None:
        """Carry a stable `reason` code and a `detail` a user can act on."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field_path = field_path
        self.rule_id = rule_id


class RuleError(ValueError):
    """A schema rule no validator can apply, as protovalidate's CompilationError.

    Raised when a message type's rules are compiled (by `flower-meta
    generate` and the project's `generate` before any code is written, else
    on first use), never for a payload. Its text is one line: the field's full name,
    the rule and what is wrong with it.
    """

    def __init__(self, field: FieldDescriptor, problem: str) -> None:
        """Name the field and the problem."""
        super().__init__(f"{field.full_name}: {problem}")


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
    """Turn a message type's rules into one function: once per type.

    The rules are a plan, checked step by step in declaration order, then
    the epoch policy: each step names a field, its kind of check and its
    closed interval (`_interval`). The function is a closure over the plan:
    no source text is written or run, so any field name protobuf allows (a
    Python keyword too) is only ever data.
    """
    steps = [step for field in descriptor.fields if (step := _step(field)) is not None]
    epochs = [
        field
        for field in descriptor.fields
        if field.is_repeated and schema.field_spec(field).series == EPOCH
    ]
    if (
        len(epochs) == 1
        and steps
        and steps[-1][0] is _SERIES
        and steps[-1][6] is epochs[0]
    ):
        steps[-1] = (_EPOCH_SERIES, *steps[-1][1:])  # the last check: one step
    else:
        steps += [(_EPOCHS, f.name, False, False, 0.0, 0.0, f, None) for f in epochs]
    plan = tuple(steps)
    long_from = series.LONG

    def check(
        m: Message, limits: Limits, excused: Excused, path: str, wire: bytes
    ) -> None:
        for kind, name, presence, required, low, high, field, long in plan:
            if kind is _SCALAR:
                if presence and not m.HasField(name):
                    if required and (path or name not in excused.withheld):
                        _missing(field, path)
                elif low <= high and not low <= (v := getattr(m, name)) <= high:
                    _refused(field, v, path)
            elif kind is _EPOCH_SERIES or kind is _SERIES:
                values = getattr(m, name)
                n = len(values)
                if long is None or n < long_from or not long(wire, n):
                    for v in values[:]:  # a list walks faster than the container
                        if not low <= v <= high:
                            _refused_in(field, values, path)
                least = limits.expected_epochs
                if kind is _EPOCH_SERIES and (
                    n > limits.max_epochs or (least is not None and n < least)
                ):
                    _epoch_policy(field, n, limits, excused, path)
            elif kind is _EPOCHS:
                n = len(getattr(m, name))
                least = limits.expected_epochs
                if n > limits.max_epochs or (least is not None and n < least):
                    _epoch_policy(field, n, limits, excused, path)
            elif kind is _MESSAGES:
                for k, item in enumerate(getattr(m, name)):
                    _validator(field.message_type)(  # type: ignore[arg-type]
                        item, limits, NOTHING_EXCUSED, f"{path}{name}[{k}].", b""
                    )
            elif m.HasField(name):
                _validator(field.message_type)(  # type: ignore[arg-type]
                    getattr(m, name), limits, NOTHING_EXCUSED, f"{path}{name}.", b""
                )
            elif required and (path or name not in excused.withheld):
                _missing(field, path)

    return check


_SCALAR, _SERIES, _EPOCH_SERIES, _EPOCHS, _MESSAGES, _MESSAGE = (
    "scalar",
    "series",
    "epoch series",  # a series' values, then the epoch policy on it
    "epochs",  # the epoch policy alone
    "messages",
    "message",
)
_Step = tuple[
    str,
    str,
    bool,
    bool,
    float,
    float,
    FieldDescriptor,
    Callable[[bytes, int], bool] | None,
]
"""(kind, name, has presence, required, low, high, field, long-series checker):
one field's check. low > high: no value rule."""


def _step(field: FieldDescriptor) -> _Step | None:
    """Plan one field's check, or None when it has no rule."""
    name, spec = field.name, schema.field_spec(field)
    if problems := schema.unsupported_rules(field):
        raise RuleError(field, problems[0])
    if spec.required and field.is_repeated:
        raise RuleError(field, "required on a repeated field is not supported")
    if spec.required and not field.has_presence:
        raise RuleError(
            field,
            "required needs explicit presence: declare the field optional (or a "
            "message); without it an absent field and a zero are the same bytes",
        )
    required = spec.required
    if (spec.finite or _bounds(spec)) and field.type not in schema.NUMBER_TYPES:
        raise RuleError(
            field, f"{schema.describe_rule(spec)} applies to number fields only"
        )
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return None
        kind = _MESSAGES if field.is_repeated else _MESSAGE
        return kind, name, True, required, 0.0, 0.0, field, None
    interval = _interval(field)
    if field.is_repeated:
        if interval is None:
            return None
        low, high = interval
        long = (
            series.checker(field, _within(low, high))
            if series.packable(field)
            else None
        )
        return _SERIES, name, False, False, low, high, field, long
    if interval is None and not required:
        return None
    low, high = interval or (math.inf, -math.inf)
    return _SCALAR, name, field.has_presence, required, low, high, field, None


def _interval(field: FieldDescriptor) -> tuple[float, float] | None:
    """Return the closed interval [low, high] a field's values must lie in, or None.

    A bound is one end; `finite` closes a side with no bound of its own at
    the largest finite double. An open bound (`gt`, `lt`, or finiteness) is
    the nearest value inward the field can hold (`_inward`), so the test is
    exact. NaN lies in no interval, so it fails any rule.
    """
    spec = schema.field_spec(field)
    bounds = set(_bounds(spec))
    if {"gte", "gt"} <= bounds or {"lte", "lt"} <= bounds:
        raise RuleError(field, "a field takes at most one lower and one upper bound")
    if any(math.isnan(getattr(spec, name)) for name in bounds):
        raise RuleError(field, "a bound is NaN")
    if not bounds and not spec.finite:
        return None
    integer = field.type not in _FLOATING
    low, high = -math.inf, math.inf
    if "gte" in bounds:
        low = spec.gte
    elif "gt" in bounds:
        low = _inward(spec.gt, math.inf, integer)
    elif spec.finite and not integer:
        low = -sys.float_info.max
    if "lte" in bounds:
        high = spec.lte
    elif "lt" in bounds:
        high = _inward(spec.lt, -math.inf, integer)
    elif spec.finite and not integer:
        high = sys.float_info.max
    if (
        low > high
        or (low == math.inf and "gt" in bounds)
        or (high == -math.inf and "lt" in bounds)
    ):
        raise RuleError(field, f"no value can meet {schema.describe_rule(spec)}")
    return low, high


_FLOATING = {pb.TYPE_DOUBLE, pb.TYPE_FLOAT}


def _inward(bound: float, toward: float, integer: bool) -> float:
    """Return the value next to an open bound, toward `toward`, that a field holds.

    A double field's values are doubles, so the next double (`nextafter`)
    is exact; an integer field's next value is the next integer (beyond
    2^53 doubles are further apart than integers).
    """
    if integer and math.isfinite(bound):
        return math.floor(bound) + 1 if toward > bound else math.ceil(bound) - 1
    return math.nextafter(bound, toward)


def _within(low: float, high: float) -> Callable[[float], bool]:
    """Return the test `low <= v <= high`."""
    return lambda v: low <= v <= high


def _rule(field: FieldDescriptor) -> Callable[[float], bool]:
    """Return the field's value rule as a test of one value (none: always true)."""
    interval = _interval(field)
    return (lambda _: True) if interval is None else _within(*interval)


def _validator(descriptor: Descriptor) -> Validator:
    """Return the message type's compiled rules, compiling them on first use."""
    check = _VALIDATORS.get(descriptor)
    if check is None:
        check = _VALIDATORS.setdefault(descriptor, compile_rules(descriptor))
    return check


def _missing(field: FieldDescriptor, path: str) -> None:
    where = f"{path}{field.name}"
    raise MetadataDecodeError(
        schema.missing_reason(field),
        f"{where}: missing; it is required",
        where,
        "required",
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
    spec = schema.field_spec(field)
    raise MetadataDecodeError(
        schema.invalid_reason(field),
        f"{where}: must be {schema.describe_rule(spec)}, got {number_text(value)}",
        where,
        rule_id(field, value),
    )


def rule_id(field: FieldDescriptor, value: float) -> str:
    """Name the rule `value` breaks as protovalidate does, e.g. "double.gte_lte".

    The field's type, then "finite" for a value that is not finite where
    finiteness is asked, else its bounds, lower first ("gt_lte").
    """
    spec = schema.field_spec(field)
    kind = schema.NUMBER_KINDS[field.type]
    if spec.finite and not math.isfinite(value):
        return f"{kind}.finite"
    return f"{kind}.{'_'.join(_bounds(spec))}"


def _bounds(spec: FieldSpec) -> list[str]:
    """List the bounds a field's option sets, lower first: e.g. ["gt", "lte"]."""
    return [name for name in schema.BOUNDS if spec.HasField(name)]


def _epoch_policy(
    field: FieldDescriptor,
    epochs: int,
    limits: Limits,
    excused: Excused,
    path: str,
) -> None:
    """Apply the server's limits to an epoch series: at most max, at least asked."""
    name = field.name
    where = f"{path}{name}"
    if epochs > limits.max_epochs:
        raise MetadataDecodeError(
            Reason.TOO_MANY_EPOCHS,
            f"{where}: {epochs} epochs exceed the limit of "
            f"{limits.max_epochs} (run config max-epochs)",
            where,
            "run_config.max_epochs",
        )
    expected = limits.expected_epochs
    if expected is not None and epochs < expected and name not in excused.last_only:
        raise MetadataDecodeError(
            Reason.EPOCHS_MISSING,
            f"{where}: epochs {epochs + 1}..{expected} are missing: the "
            f"server asked for {expected} local epochs",
            where,
            "run_config.local_epochs",
        )
