"""What the schema's options say about a field or a message.

A field's unit, role, series and reason codes are `(flower_meta.v1.field)`
and `(flower_meta.v1.message)` options (see
proto/flower_meta/v1/options.proto); its rules are protovalidate's, read
by `field_rules`. These helpers read them from any descriptor, including
descriptors of a log's own schema that this build has no generated code
for.
"""

from functools import cache
from typing import TYPE_CHECKING, TypeAlias

from google.protobuf import descriptor as pb
from google.protobuf.message import Message

from flower_meta.v1.options_pb2 import (
    ROLE_UNSPECIFIED,
    FieldSpec,
    MessageSpec,
    Role,
    field,
    message,
)

if TYPE_CHECKING:
    from google._upb import _message as upb

    Descriptor: TypeAlias = pb.Descriptor | upb.Descriptor
    FieldDescriptor: TypeAlias = pb.FieldDescriptor | upb.FieldDescriptor
    FileDescriptor: TypeAlias = pb.FileDescriptor | upb.FileDescriptor
    OneofDescriptor: TypeAlias = pb.OneofDescriptor | upb.OneofDescriptor
else:  # annotations only: the runtime's own classes vary with its backend
    Descriptor, FieldDescriptor, FileDescriptor, OneofDescriptor = (
        pb.Descriptor,
        pb.FieldDescriptor,
        pb.FileDescriptor,
        pb.OneofDescriptor,
    )

MISSING_FIELD = "missing_field"
"""Reason code for an absent required field, unless the schema names another."""
OUT_OF_RANGE = "out_of_range"
"""Reason code for a value that breaks a rule, unless the schema names another."""
NUMBER_KINDS = {
    getattr(pb.FieldDescriptor, f"TYPE_{kind.upper()}"): kind
    for kind in (
        "double",
        "float",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
    )
}
"""The number types, each by its name: protovalidate's family of its rules."""
NUMBER_TYPES = frozenset(NUMBER_KINDS)


@cache
def field_spec(descriptor: FieldDescriptor) -> FieldSpec:
    """Return the field's `(flower_meta.v1.field)` option (empty without one).

    Its unit, role, series and reason codes; a v1.0 schema's rules too
    (`required`, `finite`, bounds), which `field_rules` reads beside the
    field's `(buf.validate.field)` rules.
    """
    spec: FieldSpec = descriptor.GetOptions().Extensions[field]
    return spec


@cache
def message_spec(descriptor: Descriptor) -> MessageSpec:
    """Return the message's `(flower_meta.v1.message)` option (empty without one)."""
    spec: MessageSpec = descriptor.GetOptions().Extensions[message]
    return spec


def missing_reason(descriptor: FieldDescriptor) -> str:
    """Reason code for this field being absent."""
    return (
        field_spec(descriptor).missing_reason
        or message_spec(descriptor.containing_type).missing_reason
        or MISSING_FIELD
    )


def invalid_reason(descriptor: FieldDescriptor) -> str:
    """Reason code for a value of this field breaking a rule."""
    return (
        field_spec(descriptor).invalid_reason
        or message_spec(descriptor.containing_type).invalid_reason
        or OUT_OF_RANGE
    )


def is_number(descriptor: FieldDescriptor) -> bool:
    """Whether the field holds numbers (bool excluded)."""
    return descriptor.type in NUMBER_TYPES


_F = pb.FieldDescriptor
INT32_RANGES: dict[int, tuple[int, int]] = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
"""A 32-bit integer type's least and greatest value (a JSON number)."""
INT64_RANGES: dict[int, tuple[int, int]] = {
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
}
"""A 64-bit integer type's least and greatest value (a JSON string)."""


def is_floating(descriptor: FieldDescriptor) -> bool:
    """Whether the field holds floating-point numbers (double or float)."""
    return descriptor.type in (
        pb.FieldDescriptor.TYPE_DOUBLE,
        pb.FieldDescriptor.TYPE_FLOAT,
    )


def is_bool(descriptor: FieldDescriptor) -> bool:
    """Whether the field holds booleans."""
    return descriptor.type == pb.FieldDescriptor.TYPE_BOOL


@cache
def with_role(message_type: Descriptor, role: Role.ValueType) -> FieldDescriptor | None:
    """Return the message's first field with `role`, if any."""
    if role == ROLE_UNSPECIFIED:
        return None
    for candidate in message_type.fields:
        if field_spec(candidate).role == role:
            return candidate
    return None


def unit(descriptor: FieldDescriptor) -> str:
    """Return the field's unit, or "" for a count or plain number."""
    return field_spec(descriptor).unit


def label(descriptor: FieldDescriptor) -> str:
    """Return the field's name with its unit, e.g. "time (s)"."""
    shown = unit(descriptor)
    return f"{descriptor.name} ({shown})" if shown else descriptor.name


def is_present(message: Message, descriptor: FieldDescriptor) -> bool:
    """Whether the field is set: present, or non-empty / non-zero without presence."""
    if descriptor.has_presence:
        return message.HasField(descriptor.name)
    return bool(getattr(message, descriptor.name))
