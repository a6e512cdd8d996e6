"""Our compiled path: the rules protovalidate's verdict is proven equal on, fast.

A message type whose rules are all of the few kinds below, its nested
types' too, is checked here rather than by protovalidate (see
`validation`): presence (`required` on a field with explicit presence),
finiteness and the four bounds of the field's own number type (of its
elements under `repeated.items`), annotations (`example`), and nested
messages. Each type compiles once into a plan, one step a field, and one
closure walks it (no source text, no `exec`: a field name is only ever
data), so that checking a report costs little more than reading its fields.
Integers are compared as integers, doubles as doubles, so every bound is
exact. A refusal names the field and rule protovalidate names first
(`tests/test_rule_kinds.py` holds the two to the same verdicts). A v1.0
schema's rules, written in `(flower_meta.v1.field)`, are read here too.
"""

import math
import sys
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from flower_app.protocol import field_rules, rule_kinds, schema, series
from flower_app.protocol.canonical_json import number_text
from flower_app.protocol.rules import (
    EPOCH,
    NOTHING_EXCUSED,
    Excused,
    Limits,
    MetadataDecodeError,
    Validator,
    epoch_policy,
    required_missing,
)
from flower_app.protocol.schema import Descriptor, FieldDescriptor

_NUMBER_RULES = frozenset({"gt", "gte", "lt", "lte", "finite", "example"})
"""What the plan checks of a number type's rules (`example` is an annotation)."""


def plans(descriptor: Descriptor) -> bool:
    """Say whether every rule of the type, and of the types it holds, is the plan's."""
    return _planned(descriptor, set())


def _planned(descriptor: Descriptor, visiting: set[str]) -> bool:
    if descriptor.full_name in visiting:
        return True  # a type that holds itself: its rules are being looked at
    visiting.add(descriptor.full_name)
    if field_rules.buf_message_rules(descriptor) is not None or any(
        field_rules.buf_oneof_rules(oneof) is not None for oneof in descriptor.oneofs
    ):
        return False
    for field in descriptor.fields:
        if not _field_planned(field):
            return False
        held = field_rules.held_type(field)
        if held is None:
            continue
        if field_rules.is_map(field) and not _rule_free(held, set()):
            return False  # the plan does not walk a map's values
        if not _planned(held, visiting):
            return False
    return True


def _rule_free(descriptor: Descriptor, visiting: set[str]) -> bool:
    """Say whether no rule applies inside the type, nor inside any type it holds."""
    if descriptor.full_name in visiting:
        return True
    visiting.add(descriptor.full_name)
    if field_rules.buf_message_rules(descriptor) is not None or any(
        field_rules.buf_oneof_rules(oneof) is not None for oneof in descriptor.oneofs
    ):
        return False
    for field in descriptor.fields:
        if field_rules.buf_rules(field) is not None or field_rules.has_legacy_rules(
            schema.field_spec(field)
        ):
            return False
        held = field_rules.held_type(field)
        if held is not None and not _rule_free(held, visiting):
            return False
    return True


def _field_planned(field: FieldDescriptor) -> bool:
    """Say whether the field's own `buf.validate` rules are all the plan's."""
    rules = field_rules.buf_rules(field)
    if rules is None:
        return True
    if field_rules.is_map(field):
        return False  # a map's rules go to protovalidate
    kinds = list(rule_kinds.field_kinds(rules))
    if "required" in kinds:
        if field.is_repeated or not field.has_presence:
            return False  # protovalidate: not empty, not zero
        kinds.remove("required")
    if field.is_repeated:
        if not kinds or kinds[0] != "repeated.items":
            return not kinds
        kinds = kinds[1:]
    own = schema.NUMBER_KINDS.get(field.type)
    if own is None:
        return all(kind.endswith(".example") for kind in kinds)
    typed = field_rules.typed_rules(rules, field)
    return (
        all(kind.startswith(f"{own}.") for kind in kinds)
        and {kind.split(".", 1)[1] for kind in kinds} <= _NUMBER_RULES
        and (typed is None or not field_rules.exclusive_range(typed))
    )


def compile_plan(descriptor: Descriptor) -> Validator:
    """Turn a planned message type's rules into one function: once per type.

    The rules are a plan, checked step by step in declaration order, then
    the epoch policy: each step names a field, its kind of check and its
    closed interval (`_interval`). The function is a closure over the plan.
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
        steps += [(_EPOCHS, f.name, False, False, 0, 0, f, None) for f in epochs]
    plan = tuple(steps)
    long_from = series.LONG

    def check(
        m: Message, limits: Limits, excused: Excused, path: str, wire: bytes
    ) -> None:
        for kind, name, presence, required, low, high, field, long in plan:
            if not path and name in excused.withheld:
                continue  # absent on purpose: its rules do not apply
            if kind is _SCALAR:
                if presence and not m.HasField(name):
                    if required:
                        required_missing(field, path)
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
                    epoch_policy(field, n, limits, excused, path)
            elif kind is _EPOCHS:
                n = len(getattr(m, name))
                least = limits.expected_epochs
                if n > limits.max_epochs or (least is not None and n < least):
                    epoch_policy(field, n, limits, excused, path)
            elif kind is _MESSAGES:
                for k, item in enumerate(getattr(m, name)):
                    planned(field.message_type)(  # type: ignore[arg-type]
                        item, limits, NOTHING_EXCUSED, f"{path}{name}[{k}].", b""
                    )
            elif m.HasField(name):
                planned(field.message_type)(  # type: ignore[arg-type]
                    getattr(m, name), limits, NOTHING_EXCUSED, f"{path}{name}.", b""
                )
            elif required:
                required_missing(field, path)

    return check


_SCALAR, _SERIES, _EPOCH_SERIES, _EPOCHS, _MESSAGES, _MESSAGE = (
    "scalar",
    "series",
    "epoch series",  # a series' values, then the epoch policy on it
    "epochs",  # the epoch policy alone
    "messages",
    "message",
)
Number = int | float
_Step = tuple[
    str,
    str,
    bool,
    bool,
    Number,
    Number,
    FieldDescriptor,
    Callable[[bytes, int], bool] | None,
]
"""(kind, name, has presence, required, low, high, field, long-series checker):
one field's check. low > high: no value rule."""


def _step(field: FieldDescriptor) -> _Step | None:
    """Plan one field's check, or None when it has none."""
    name, required = field.name, field_rules.is_required(field)
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return None  # no rules inside (`plans`)
        kind = _MESSAGES if field.is_repeated else _MESSAGE
        return kind, name, True, required, 0, 0, field, None
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


def _interval(field: FieldDescriptor) -> tuple[Number, Number] | None:
    """Return the closed interval [low, high] a field's values must lie in, or None.

    A bound is one end; `finite` closes a side with no bound of its own at
    the largest finite double. An open bound (`gt`, `lt`, or finiteness) is
    the nearest value inward the field can hold (`_inward`), so the test is
    exact; an integer field's ends are integers. NaN lies in no interval.
    """
    rule = field_rules.number_rule(field)
    if rule is None:
        return None
    integer = not schema.is_floating(field)
    low: Number = -math.inf
    high: Number = math.inf
    bounds = dict(rule.bounds)
    if "gte" in bounds:
        low = bounds["gte"]
    elif "gt" in bounds:
        low = _inward(bounds["gt"], math.inf, integer)
    elif rule.finite and not integer:
        low = -sys.float_info.max
    if "lte" in bounds:
        high = bounds["lte"]
    elif "lt" in bounds:
        high = _inward(bounds["lt"], -math.inf, integer)
    elif rule.finite and not integer:
        high = sys.float_info.max
    return low, high


def unsatisfiable(field: FieldDescriptor) -> bool:
    """Say whether no value meets the field's bounds (`gt: 1, lt: 1`, `gt: inf`).

    Read as a conjunction, as the plan applies them: call it only for
    bounds that are not protovalidate's exclusive range.
    """
    interval = _interval(field)
    if interval is None:
        return False
    low, high = interval
    rule = field_rules.number_rule(field)
    names = {name for name, _ in rule.bounds} if rule is not None else set()
    return (
        low > high
        or (low == math.inf and "gt" in names)
        or (high == -math.inf and "lt" in names)
    )


def _inward(bound: Number, toward: float, integer: bool) -> Number:
    """Return the value next to an open bound, toward `toward`, that a field holds.

    A double field's values are doubles, so the next double (`nextafter`)
    is exact; an integer field's next value is the next integer.
    """
    if integer and math.isfinite(bound):
        return math.floor(bound) + 1 if toward > bound else math.ceil(bound) - 1
    return math.nextafter(bound, toward)


def _within(low: Number, high: Number) -> Callable[[Number], bool]:
    """Return the test `low <= v <= high`."""
    return lambda v: low <= v <= high


_PLANS: dict[object, Validator] = {}


def planned(descriptor: Descriptor) -> Validator:
    """Return the message type's compiled plan, compiling it on first use."""
    check = _PLANS.get(descriptor)
    if check is None:
        check = _PLANS.setdefault(descriptor, compile_plan(descriptor))
    return check


def _refused(field: FieldDescriptor, value: Number, path: str) -> None:
    _refuse(field, f"{path}{field.name}", value)


def rule_test(field: FieldDescriptor) -> Callable[[Number], bool]:
    """Return the field's value rule as a test of one value (none: always true)."""
    interval = _interval(field)
    return (lambda _: True) if interval is None else _within(*interval)


def _refused_in(field: FieldDescriptor, values: Sequence[Number], path: str) -> None:
    """Refuse the first element of `values` that breaks the field's rule."""
    test = rule_test(field)
    for index, value in enumerate(values):
        if not test(value):
            _refuse(field, f"{path}{field.name}[{index}]", value)


def _refuse(field: FieldDescriptor, where: str, value: Number) -> None:
    rule = field_rules.number_rule(field)
    assert rule is not None  # only a field with a number rule refuses a value
    raise MetadataDecodeError(
        schema.invalid_reason(field),
        f"{where}: must be {rule.words()}",
        where,
        rule.rule_id(value),
        number_text(value),
    )
