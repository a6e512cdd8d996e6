"""Validate a message by its schema: our plan where proven equal, else protovalidate.

Every rule protovalidate's language can express is enforced, or the type
is refused when it is loaded, never ignored. A type whose rules (its
fields', oneofs' and own, and those of every type it holds) are all the
plan's (`plan.plans`: presence, finiteness, bounds) is checked by our
compiled plan, the fast path; any other goes to protovalidate-python, the
engine of record (`protovalidation`). Both refuse with the same field,
rule and words. A few schemas are refused before either runs
(`problems`): bounds no value can meet or a NaN bound (which
protovalidate would apply as written: a field that refuses everything),
number rules written for another type, rules in both options, and v1.0's
rules beside rules only protovalidate applies.
"""

import math
from collections.abc import Iterator

from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from flower_app.protocol import field_rules, plan, protovalidation, schema
from flower_app.protocol.rules import (
    DEFAULT_LIMITS,
    NOTHING_EXCUSED,
    Excused,
    Limits,
    RuleError,
    Validator,
)
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_meta.v1.options_pb2 import FieldSpec

_VALIDATORS: dict[object, Validator] = {}


def validate(
    message: Message,
    limits: Limits = DEFAULT_LIMITS,
    excused: Excused = NOTHING_EXCUSED,
    wire: bytes = b"",
) -> None:
    """Raise `MetadataDecodeError` unless `message` obeys its schema and `limits`.

    `wire`, the bytes `message` was parsed from, lets the plan check long
    series on them (see `series`).
    """
    check = _VALIDATORS.get(message.DESCRIPTOR) or validator(message.DESCRIPTOR)
    check(message, limits, excused, "", wire)


def validator(descriptor: Descriptor) -> Validator:
    """Return the type's validator, compiling it on first use.

    Raises
    ------
    RuleError
        If a rule of the type, or of a type it holds, is refused: the first.

    """
    check = _VALIDATORS.get(descriptor)
    if check is None:
        held = protovalidation.closure(descriptor)
        for message_type in held:
            for problem in problems(message_type):
                raise problem
        if plan.plans(descriptor):
            check = plan.planned(descriptor)
        else:
            for message_type in held:
                for field in message_type.fields:
                    if field_rules.has_legacy_rules(schema.field_spec(field)):
                        raise RuleError(
                            field,
                            "v1.0 rules in (flower_meta.v1.field) where protovalidate "
                            f"validates (in {descriptor.full_name}): write them as "
                            "(buf.validate.field)",
                        )
            check = protovalidation.compile_protovalidate(descriptor)
        _VALIDATORS[descriptor] = check
    return check


def engine(descriptor: Descriptor) -> str:
    """Name what validates the type: "plan" or "protovalidate"."""
    return "plan" if plan.plans(descriptor) else "protovalidate"


def problems(descriptor: Descriptor) -> list[RuleError]:
    """List the refused rules of the type's own fields, every one."""
    return [
        RuleError(field, problem)
        for field in descriptor.fields
        for problem in _field_problems(field)
    ]


def _field_problems(field: FieldDescriptor) -> Iterator[str]:
    """Say what is wrong with the field's rules, if anything."""
    spec = schema.field_spec(field)
    legacy = field_rules.has_legacy_rules(spec)
    rules = field_rules.buf_rules(field)
    if legacy and rules is not None:
        yield (
            "rules in both (flower_meta.v1.field) and (buf.validate.field): "
            "keep them in buf.validate"
        )
        return
    if legacy:
        yield from _legacy_problems(field, spec)
    elif rules is not None:
        yield from _misplaced(rules, field)
    rule = field_rules.number_rule(field)
    if rule is None or (
        rules is not None and _exclusive(rules, field)
    ):  # protovalidate's exclusive ranges are satisfiable
        return
    if any(isinstance(b, float) and math.isnan(b) for _, b in rule.bounds):
        yield "a bound is NaN"
    elif legacy and len(rule.bounds) > len({name[:2] for name, _ in rule.bounds}):
        yield "a field takes at most one lower and one upper bound"
    elif plan.unsatisfiable(field):
        yield f"no value can meet {rule.words()}"


def _exclusive(rules: Message, field: FieldDescriptor) -> bool:
    typed = field_rules.typed_rules(rules, field)
    return typed is not None and field_rules.exclusive_range(typed)


def _legacy_problems(field: FieldDescriptor, spec: FieldSpec) -> Iterator[str]:
    """v1.0's rules: `required` needs presence; bounds need a number field."""
    if spec.required and field.is_repeated:
        yield "required on a repeated field is not supported"
    elif spec.required and not field.has_presence:
        yield (
            "required needs explicit presence: declare the field optional (or a "
            "message); without it an absent field and a zero are the same bytes"
        )
    rule = field_rules.number_rule(field)
    if rule is not None and field.type not in schema.NUMBER_TYPES:
        yield f"{rule.words()} applies to number fields only"


_RULES_OF_WELL_KNOWN = {
    "google.protobuf.Any": "any",
    "google.protobuf.Duration": "duration",
    "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.FieldMask": "field_mask",
    "google.protobuf.DoubleValue": "double",
    "google.protobuf.FloatValue": "float",
    "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64",
    "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32",
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
}
"""Message types that take a type's rules: protovalidate's well-known types."""
_SCALARS: dict[int, str] = {
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_ENUM: "enum",
}


def _misplaced(rules: Message, field: FieldDescriptor) -> Iterator[str]:
    """Name a type's rules written for a field of another type, if any."""
    yield from _misplaced_in(rules, field, "", field.is_repeated)


def _misplaced_in(
    rules: Message, field: FieldDescriptor, where: str, many: bool
) -> Iterator[str]:
    chosen = rules.WhichOneof("type")
    if chosen is None:
        return
    entry = field.message_type
    if many and entry is not None and entry.GetOptions().map_entry:
        if chosen == "map":
            map_rules = rules.map  # type: ignore[attr-defined]
            for part in ("keys", "values"):
                if map_rules.HasField(part):
                    yield from _misplaced_in(
                        getattr(map_rules, part),
                        entry.fields_by_name[part[:-1] if part == "keys" else "value"],
                        f"{where}.map.{part}",
                        False,
                    )
            return
        expected = "map"
    elif many:
        if chosen == "repeated":
            items = rules.repeated  # type: ignore[attr-defined]
            if items.HasField("items"):
                yield from _misplaced_in(
                    items.items, field, f"{where}.repeated.items", False
                )
            return
        expected = "repeated"
    elif entry is not None:
        expected = _RULES_OF_WELL_KNOWN.get(entry.full_name, "")
    else:
        expected = schema.NUMBER_KINDS.get(field.type) or _SCALARS.get(field.type, "")
    if chosen == expected:
        return
    if many and chosen in schema.NUMBER_KINDS.values() and expected == "repeated":
        yield (
            f"(buf.validate.field){where}.{chosen} rules on a repeated field: its "
            "elements' rules go under repeated.items"
        )
        return
    of = _type_name(field)
    yield f"(buf.validate.field){where}.{chosen} rules on a field of type {of}"


def _type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return field.message_type.full_name
    named = descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)  # type: ignore[arg-type]
    return named.removeprefix("TYPE_").lower()
