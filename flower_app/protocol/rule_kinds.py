"""Every rule protovalidate's language can express, and the ones a schema sets.

A rule kind is where a rule sits in `buf/validate/validate.proto`, spelled
as protovalidate spells its rule ids: `required`, `cel`, `ignore.<value>`,
`<type>.<rule>` (`string.max_len`, `double.finite`, `repeated.items`, ...),
`<type>.predefined` (a predefined rule: an extension of the type's rules),
`message.<rule>` and `oneof.<rule>`. `catalogue()` walks validate.proto's
own descriptor, so a rule a future release adds is a new kind at once, and
`field_kinds`, `message_kinds` and `oneof_kinds` name the kinds one field,
message or oneof of a schema sets. Which reader enforces which kind, and
which refuses it, is said in proto/README.md and checked by the tests.
"""

from collections.abc import Iterator

from buf.validate import validate_pb2
from google.protobuf import unknown_fields
from google.protobuf.descriptor import EnumValueDescriptor, FieldDescriptor
from google.protobuf.message import Message

CONTAINERS = frozenset({"repeated.items", "map.keys", "map.values"})
"""Kinds that hold a field's rules of their own (an element's, a key's, a value's)."""
PREDEFINED = "predefined"
"""The last part of a predefined rule's kind: `int32.predefined`, ..."""


def catalogue() -> tuple[str, ...]:
    """Return every rule kind validate.proto defines, in its declaration order."""
    kinds: list[str] = []
    for field in validate_pb2.FieldRules.DESCRIPTOR.fields:
        if field.containing_oneof is not None:  # the field's type: its rules
            typed = field.message_type
            assert typed is not None  # every type's rules are a message
            kinds += [f"{field.name}.{rule.name}" for rule in typed.fields]
            if typed.extension_ranges:
                kinds.append(f"{field.name}.{PREDEFINED}")
        elif field.enum_type is not None:
            kinds += [f"{field.name}.{value.name}" for value in _set_values(field)]
        else:
            kinds.append(field.name)
    for prefix, rules in (
        ("message", validate_pb2.MessageRules),
        ("oneof", validate_pb2.OneofRules),
        (PREDEFINED, validate_pb2.PredefinedRules),
    ):
        kinds += [f"{prefix}.{field.name}" for field in rules.DESCRIPTOR.fields]
    return tuple(kinds)


def _set_values(field: FieldDescriptor) -> list[EnumValueDescriptor]:
    """List an enum rule's values that change anything: all but the zero default."""
    assert field.enum_type is not None
    return [value for value in field.enum_type.values if value.number != 0]


def field_kinds(rules: Message) -> Iterator[str]:
    """Name the kinds a `FieldRules` message sets, containers' own rules too."""
    for described, value in rules.ListFields():
        name = described.name
        if described.containing_oneof is not None:
            yield from _typed_kinds(name, value)
        elif described.enum_type is not None:
            yield f"{name}.{described.enum_type.values_by_number[value].name}"
        else:
            yield name


def _typed_kinds(type_name: str, typed: Message) -> Iterator[str]:
    """Name the kinds of one type's rules (`StringRules`, `RepeatedRules`, ...)."""
    for described, value in typed.ListFields():
        if described.is_extension:
            yield f"{type_name}.{PREDEFINED}"
            continue
        kind = f"{type_name}.{described.name}"
        yield kind
        if kind in CONTAINERS:
            yield from field_kinds(value)
    if len(unknown_fields.UnknownFieldSet(typed)):  # an extension this pool lacks
        yield f"{type_name}.{PREDEFINED}"


def message_kinds(rules: Message) -> Iterator[str]:
    """Name the kinds a `MessageRules` message sets."""
    for described, _ in rules.ListFields():
        yield f"message.{described.name}"


def oneof_kinds(rules: Message) -> Iterator[str]:
    """Name the kinds a `OneofRules` message sets."""
    for described, _ in rules.ListFields():
        yield f"oneof.{described.name}"
