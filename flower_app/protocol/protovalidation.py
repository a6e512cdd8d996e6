"""protovalidate's path: a message type's rules applied by protovalidate-python.

Every rule protovalidate's language can express is enforced here, on the
parsed message, by the engine of record. Its violations become one
refusal, the same in every reader of this project:

- the first violation in the canonical order (`violation_order`): a
  message's fields in declaration order (each field's own rules, then its
  elements' or entries' by index or key, each before the message inside
  it), then the message's own rules, then its oneofs'; within one place,
  rules in validate.proto's declaration order. protovalidate's
  implementations order them differently (protovalidate-python puts a
  message's own rules first, protovalidate-es last), so each reader sorts;
- its field path as protovalidate-es prints paths (`xs[2]`, `m["k"].x`);
- the reason code of the field it is about (`required`: the field's
  missing reason, any other rule its invalid reason; a message's or
  oneof's own rule: the message's), else the defaults;
- its words: for presence and the number rules our plan knows, the
  plan's words (`xs[2]: must be finite and >= 0, got -1`),
  so a type's refusals read the same whichever path checks it; else
  protovalidate's message.

A rule that cannot be evaluated on a payload (a CEL expression that
errors) refuses it with `rule_error`; one that cannot be compiled, or
errors on the type's empty message, refuses the type when it is loaded
(`check`).
"""

from collections.abc import Iterable, Sequence
from typing import Any

import protovalidate
from buf.validate import validate_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor as pb
from google.protobuf.message import Message

from flower_app.protocol import field_rules, schema
from flower_app.protocol.canonical_json import number_text
from flower_app.protocol.rules import (
    EPOCH,
    Excused,
    Limits,
    MetadataDecodeError,
    Reason,
    RuleError,
    Validator,
    epoch_policy,
)
from flower_app.protocol.schema import Descriptor, FieldDescriptor

_ENGINES: dict[object, protovalidate.Validator] = {}
"""One protovalidate validator a descriptor pool: a validator keeps the rules
it compiled by message name, so two schemas that both define `acme.v1.Stats`
(two revisions of a run's schema, in one process) must not share one."""


def _engine(descriptor: Descriptor) -> protovalidate.Validator:
    pool = descriptor.file.pool
    found = _ENGINES.get(pool)
    if found is None:
        found = _ENGINES.setdefault(pool, protovalidate.Validator())
    return found


_MESSAGE_RULES = {
    (field.name, field.number) for field in validate_pb2.MessageRules.DESCRIPTOR.fields
}
"""A violation's rule path that starts here is a message's own rule."""
_ROOTS = {
    "field": validate_pb2.FieldRules.DESCRIPTOR,
    "message": validate_pb2.MessageRules.DESCRIPTOR,
    "oneof": validate_pb2.OneofRules.DESCRIPTOR,
}
_OWN, _SUBSCRIPT, _FIELD, _MESSAGE_RULE, _ONEOF = range(5)
"""Places in a message, in the canonical order (see the module's text)."""


def check(descriptor: Descriptor) -> None:
    """Compile the type's rules, and every type's it holds, or raise RuleError.

    protovalidate compiles a type's rules when it first validates one, a
    nested type's when it first meets a value, and evaluates a field's
    rules only when the field is set: so each type of the closure validates
    its empty message and one with every field set to its zero value here,
    and a rule that does not compile, or fails to evaluate, refuses the
    type now. (`flower-meta generate` also has buf type-check every CEL
    expression.)
    """
    engine = _engine(descriptor)
    for message_type in closure(descriptor):
        for probe in _probes(message_type):
            try:
                engine.collect_violations(probe)
            except protovalidate.CompilationError as err:
                raise RuleError(
                    message_type, f"protovalidate cannot compile: {err}"
                ) from err
            except protovalidate.EvaluationError as err:
                raise RuleError(
                    message_type, f"a rule fails on a message of zero values: {err}"
                ) from err


def _probes(descriptor: Descriptor) -> list[Message]:
    """Return the empty message, and messages of every field's zero value.

    A member of each oneof is set: as many messages as the largest oneof
    has members.
    """
    kind = message_factory.GetMessageClass(descriptor)  # type: ignore[arg-type]
    probes = [kind()]
    widest = max((len(oneof.fields) for oneof in descriptor.oneofs), default=1)
    for choice in range(widest):
        probe = kind()
        for field in descriptor.fields:
            oneof = field.containing_oneof
            if (
                oneof is not None
                and oneof.fields[choice % len(oneof.fields)] is not field
            ):
                continue
            _set_zero(probe, field)
        probes.append(probe)
    return probes


def _set_zero(message: Message, field: FieldDescriptor) -> None:
    """Set `field` of `message` to its zero value: present, or one zero element."""
    value = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key = entry.fields_by_name["key"].default_value
        target = entry.fields_by_name["value"]
        if target.message_type is not None:
            value[key].SetInParent()
        else:
            value[key] = target.default_value
    elif field.is_repeated:
        if entry is not None:
            value.add()
        else:
            value.append(_ZEROS.get(field.type, 0))
    elif entry is not None:
        value.SetInParent()
    else:
        setattr(message, field.name, field.default_value)


_ZEROS: dict[int, object] = {
    pb.TYPE_BOOL: False,
    pb.TYPE_STRING: "",
    pb.TYPE_BYTES: b"",
}
"""Zero elements of the repeated types whose zero is not 0."""


def closure(descriptor: Descriptor) -> list[Descriptor]:
    """List the type and every message type its fields hold, each once."""
    found: dict[str, Descriptor] = {}
    todo = [descriptor]
    while todo:
        current = todo.pop()
        if current.full_name in found:
            continue
        found[current.full_name] = current
        for field in current.fields:
            if field.message_type is not None:
                todo.append(field.message_type)
    return list(found.values())


def compile_protovalidate(descriptor: Descriptor) -> Validator:
    """Return the type's validator by protovalidate, then the epoch policy."""
    check(descriptor)
    engine = _engine(descriptor)
    epochs = tuple(
        (field.name, field)
        for field in descriptor.fields
        if field.is_repeated and schema.field_spec(field).series == EPOCH
    )
    collect = engine.collect_violations

    def validate(
        m: Any, limits: Limits, excused: Excused, path: str, wire: bytes
    ) -> None:
        try:
            violations = collect(m)
        except protovalidate.EvaluationError as err:
            raise MetadataDecodeError(
                Reason.RULE_ERROR,
                f"{descriptor.full_name}: a rule could not be evaluated on this "
                "payload",
            ) from err
        if violations:
            kept = [v for v in violations if not _excused(v, excused)]
            if kept:
                raise refusal(descriptor, kept)
        for name, field in epochs:
            n = len(getattr(m, name))
            least = limits.expected_epochs
            if n > limits.max_epochs or (least is not None and n < least):
                epoch_policy(field, n, limits, excused, path)

    return validate


def _excused(violation: Any, excused: Excused) -> bool:
    """Say whether a violation is inside a field the node withheld on purpose."""
    field = violation.proto.field
    return (
        field is not None
        and bool(field.elements)
        and field.elements[0].field_name in excused.withheld
    )


def refusal(root: Descriptor, violations: Sequence[Any]) -> MetadataDecodeError:
    """Turn protovalidate's violations of a `root` message into one refusal."""
    first = (
        violations[0]
        if len(violations) == 1
        else min(violations, key=lambda v: violation_order(root, v.proto))
    )
    proto = first.proto
    elements = list(proto.field.elements) if proto.field is not None else []
    where = field_path(elements)
    field, oneof_or_message = _subject(root, elements, _own_rule(proto))
    rule_id = proto.rule_id
    if rule_id == "required":
        reason = (
            schema.missing_reason(field)
            if field is not None
            else schema.message_spec(oneof_or_message).missing_reason
            or schema.MISSING_FIELD
        )
    elif field is not None:
        reason = schema.invalid_reason(field)
    else:
        reason = schema.message_spec(oneof_or_message).invalid_reason or (
            schema.OUT_OF_RANGE
        )
    said, got = _words(field, elements, first)
    if proto.for_key:
        said = f"key {said}"
    return MetadataDecodeError(
        reason, f"{where}: {said}" if where else said, where, rule_id, got
    )


def _words(
    field: FieldDescriptor | None, elements: Sequence[Any], violation: Any
) -> tuple[str, str]:
    """Put a violation in words.

    The plan's words for presence and a field's own number rule, with the
    value printed apart ("must be finite and >= 0", "-1"); else
    protovalidate's message (numbers as ECMAScript prints them) and "".
    """
    proto = violation.proto
    if field is None:
        return str(proto.message), ""
    if not proto.for_key:
        if proto.rule_id == "required" and _ends_at_field(elements):
            return "missing; it is required", ""
        rule = field_rules.number_rule(field)
        if rule is not None and _plan_rule(rule, proto.rule_id, elements, field):
            # field_value costs tens of µs: read only when it is printed
            return f"must be {rule.words()}", number_text(violation.field_value)
    return _standard_words(field, proto) or str(proto.message), ""


_REPRINTED = {"float", "double", "duration"}
"""Types whose rule values protovalidate-python prints unlike protovalidate-es
(1e+21, 1.000000500s): their standard messages are rebuilt here."""
_SIDES = {
    "gt": "greater than",
    "gte": "greater than or equal to",
    "lt": "less than",
    "lte": "less than or equal to",
}


def _standard_words(field: FieldDescriptor, proto: Any) -> str | None:
    """Word a float, double or duration standard rule as protovalidate-es does.

    Its values printed as every reader here prints them; None for any
    other rule.
    """
    kind, _, name = proto.rule_id.partition(".")
    rule = list(proto.rule.elements) if proto.rule is not None else []
    rules = field_rules.buf_rules(field)
    if kind not in _REPRINTED or rules is None or not rule:
        return None
    typed: Any = rules
    for element in rule[:-1]:
        typed = getattr(typed, element.field_name, None)
        if typed is None:
            return None
    if typed.DESCRIPTOR.name.lower() != f"{kind}rules":
        return None
    text = _text_of(kind)
    if name == "const":
        return f"must equal {text(typed.const)}"
    if name in ("in", "not_in"):
        listed = ", ".join(text(item) for item in getattr(typed, name))
        return f"must {'not ' if name == 'not_in' else ''}be in list [{listed}]"
    sides = name.removesuffix("_exclusive").split("_")
    if not set(sides) <= set(_SIDES):
        return None  # finite, a predefined rule: protovalidate's words
    joined = " or " if name.endswith("_exclusive") else " and "
    return "must be " + joined.join(
        f"{_SIDES[side]} {text(getattr(typed, side))}" for side in sides
    )


def _text_of(kind: str) -> Any:
    if kind == "duration":
        return lambda value: value.ToJsonString()
    return number_text


def _ends_at_field(elements: Sequence[Any]) -> bool:
    return elements[-1].subscript is None


def _plan_rule(
    rule: field_rules.NumberRule,
    rule_id: str,
    elements: Sequence[Any],
    field: FieldDescriptor,
) -> bool:
    """Say whether the violation is of the field's own number rule (the plan's)."""
    names = "_".join(name for name, _ in rule.bounds)
    own = {f"{rule.kind}.finite"} | ({f"{rule.kind}.{names}"} if names else set())
    if rule_id not in own:
        return False
    subscripted = elements[-1].subscript is not None
    return subscripted == (field.is_repeated and not field_rules.is_map(field))


def _subject(
    root: Descriptor, elements: Sequence[Any], own_rule: bool
) -> tuple[FieldDescriptor | None, Descriptor]:
    """Find the field a violation is about, or None and the message whose rule it is.

    A oneof's rule belongs to the message that declares the oneof; a
    message's own rule (`own_rule`) to the message the path ends in.
    """
    message, field = root, None
    for element in elements:
        if field is not None:
            message = field_rules.held_type(field) or message
        found = message.fields_by_name.get(element.field_name)
        if found is None:
            return None, message  # a oneof of `message`
        field = found
    if own_rule:
        return None, (
            field_rules.held_type(field) or message
        ) if field is not None else message
    return field, message


def field_path(elements: Iterable[Any]) -> str:
    """Print a protovalidate field path as protovalidate-es does: `m["k"].xs[2]`."""
    text = ""
    for element in elements:
        text += f".{element.field_name}" if text else element.field_name
        subscript = element.subscript
        if subscript is not None:
            text += _subscript_text(subscript.field, subscript.value)
    return text


def _subscript_text(kind: str, value: object) -> str:
    if kind == "string_key":
        quoted = (
            str(value)
            .replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\r", "\\r")
            .replace("\n", "\\n")
        )
        return f'["{quoted}"]'
    if kind == "bool_key":
        return "[true]" if value else "[false]"
    return f"[{value}]"


def violation_order(root: Descriptor, proto: Any) -> tuple[tuple[Any, ...], ...]:
    """Return the canonical place of a violation in a `root` message (see above)."""
    elements = list(proto.field.elements) if proto.field is not None else []
    rule = list(proto.rule.elements) if proto.rule is not None else []
    own_rule = _own_rule(proto)
    key: list[tuple[Any, ...]] = []
    message: Descriptor | None = root
    at_oneof = False
    for element in elements:
        found = (
            None if message is None else message.fields_by_name.get(element.field_name)
        )
        if found is None:
            oneof = (
                None
                if message is None
                else message.oneofs_by_name.get(element.field_name)
            )
            key.append((_ONEOF, -1 if oneof is None else oneof.index))
            at_oneof, message = True, None
            continue
        key.append((_FIELD, found.index))
        subscript = element.subscript
        if subscript is not None:
            key.append((_SUBSCRIPT, _subscript_order(subscript.field, subscript.value)))
        message = field_rules.held_type(found)
    if not at_oneof:
        key.append((_MESSAGE_RULE,) if own_rule else (_OWN,))
    root_rules = "oneof" if at_oneof else "message" if own_rule and rule else "field"
    key.append(_rule_order(root_rules, rule))
    return tuple(key)


def _own_rule(proto: Any) -> bool:
    """Say whether a violation is of a message's own rule (`(buf.validate.message)`)."""
    rule = list(proto.rule.elements) if proto.rule is not None else []
    return not rule or (rule[0].field_name, rule[0].field_number) in _MESSAGE_RULES


def _subscript_order(kind: str, value: object) -> object:
    if kind == "string_key":
        return str(value).encode("utf-8")
    return int(value)  # type: ignore[call-overload]


def _rule_order(root: str, elements: Sequence[Any]) -> tuple[Any, ...]:
    """Return a rule path as declaration indices in validate.proto (extensions last)."""
    order: list[Any] = []
    described: Any = _ROOTS[root]
    for element in elements:
        found = (
            None
            if described is None
            else described.fields_by_name.get(element.field_name)
        )
        if found is None or found.number != element.field_number:
            order.append((1, element.field_number))  # a predefined rule
            described = None
        else:
            order.append((0, found.index))
            described = found.message_type
        subscript = element.subscript
        if subscript is not None:
            order.append((0, int(subscript.value)))
    return tuple(order)
