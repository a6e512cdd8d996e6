"""What the schema's options say about a field or a message.

A field's rules are protovalidate's `(buf.validate.field)` options; its
unit, role, series and reason codes, and a v1.0 schema's rules, are
`(flower_meta.v1.field)` and `(flower_meta.v1.message)` options (see
proto/flower_meta/v1/options.proto). These helpers read them from any
descriptor, including descriptors of a log's own schema that this build
has no generated code for.
"""

from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from google.protobuf import descriptor as pb
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from flower_app.protocol.canonical_json import number_text
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
else:  # annotations only: the runtime's own classes vary with its backend
    Descriptor, FieldDescriptor, FileDescriptor = (
        pb.Descriptor,
        pb.FieldDescriptor,
        pb.FileDescriptor,
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

    The field's `(buf.validate.field)` rules, where its file imports
    validate.proto, are read into the option's rule fields (`required`,
    `finite` and the bounds of the field's number type, of its items for a
    repeated field), so every reader has one place to look.
    """
    spec: FieldSpec = descriptor.GetOptions().Extensions[field]
    rules = buf_rules(descriptor)
    if rules is None:
        return spec
    merged = FieldSpec()
    merged.CopyFrom(spec)
    if rules.required:  # type: ignore[attr-defined]
        merged.required = True
    typed = _typed(rules, descriptor)
    if typed is not None:
        if getattr(typed, "finite", False):
            merged.finite = True
        for name in BOUNDS:
            if typed.HasField(name):
                setattr(merged, name, float(getattr(typed, name)))
    return merged


BUF_VALIDATE = "buf/validate/validate.proto"
"""protovalidate's rules, which a field's file imports to use them."""
BOUNDS: tuple[Literal["gt", "gte", "lt", "lte"], ...] = ("gt", "gte", "lt", "lte")
"""The bound names of a rule, lower first."""


def buf_rules(descriptor: FieldDescriptor) -> Message | None:
    """Return the field's `(buf.validate.field)` rules, or None without any."""
    parent = descriptor.containing_type
    file = parent.file if parent is not None else None
    if file is None or BUF_VALIDATE not in (f.name for f in file.dependencies):
        return None
    options_type, extension = _buf_validate(file.pool)
    options = options_type.FromString(descriptor.GetOptions().SerializeToString())
    if not options.HasExtension(extension):
        return None
    rules: Message = options.Extensions[extension]
    return rules


@cache
def _buf_validate(pool: descriptor_pool.DescriptorPool) -> tuple[type[Message], Any]:
    """FieldOptions of `pool` that knows `buf.validate.field`, and that extension."""
    classes = message_factory.GetMessageClassesForFiles(
        [BUF_VALIDATE, "google/protobuf/descriptor.proto"], pool
    )
    extension = pool.FindExtensionByName("buf.validate.field")
    return classes["google.protobuf.FieldOptions"], extension


def _typed(rules: Message, descriptor: FieldDescriptor) -> Message | None:
    """Return the rules of the field's number type (its items' if repeated)."""
    kind = NUMBER_KINDS.get(descriptor.type)
    if descriptor.is_repeated:
        if not rules.HasField("repeated"):
            return None
        rules = rules.repeated.items  # type: ignore[attr-defined]
    if kind is None or not rules.HasField(kind):
        return None
    typed: Message = getattr(rules, kind)
    return typed


def unsupported_rules(descriptor: FieldDescriptor) -> list[str]:
    """Name the field's `buf.validate` rules this project cannot apply.

    Supported: `required`, and `finite` and the four bounds of the field's
    number type (under `repeated.items` for a repeated field). Rules also
    written in `(flower_meta.v1.field)` are a conflict.
    """
    rules = buf_rules(descriptor)
    if rules is None:
        return []
    own = descriptor.GetOptions().Extensions[field]
    problems = []
    if own.required or own.finite or any(own.HasField(name) for name in BOUNDS):
        problems.append(
            "rules in both (flower_meta.v1.field) and (buf.validate.field): "
            "keep them in buf.validate"
        )
    problems += _misplaced(rules, descriptor)
    typed = _typed(rules, descriptor)
    if typed is not None:
        low = next((name for name in BOUNDS[:2] if typed.HasField(name)), None)
        high = next((name for name in BOUNDS[2:] if typed.HasField(name)), None)
        if low and high and getattr(typed, low) > getattr(typed, high):
            kind = typed.DESCRIPTOR.name.removesuffix("Rules").lower()
            problems.append(
                f"(buf.validate.field).{kind} {low} {getattr(typed, low)} above "
                f"{high} {getattr(typed, high)} is protovalidate's exclusive range "
                "(a value outside it passes), not supported by flower-meta's "
                "validator: write one bound, or split the field"
            )
    left = type(rules)()
    left.CopyFrom(rules)
    left.ClearField("required")
    typed = _typed(left, descriptor)
    if typed is not None:
        for name in (*BOUNDS, "finite"):
            if name in typed.DESCRIPTOR.fields_by_name:
                typed.ClearField(name)
    problems += [
        f"(buf.validate.field).{path} is not supported by flower-meta's validator"
        for path in _set_paths(left)
    ]
    return problems


def _misplaced(rules: Message, descriptor: FieldDescriptor) -> list[str]:
    """Name number rules written for another type than the field's, if any."""
    chosen, where = rules.WhichOneof("type"), ""
    if descriptor.is_repeated and chosen == "repeated":
        items = rules.repeated.items  # type: ignore[attr-defined]
        chosen, where = items.WhichOneof("type"), ".repeated.items"
    kind = NUMBER_KINDS.get(descriptor.type)
    numbers = NUMBER_KINDS.values()
    if chosen is None or (chosen not in numbers and kind is None):
        return []
    if descriptor.is_repeated and not where:
        return [
            f"(buf.validate.field).{chosen} rules on a repeated field: its "
            "elements' rules go under repeated.items"
        ]
    if chosen == kind:
        return []
    named = descriptor_pb2.FieldDescriptorProto.Type.Name(descriptor.type)  # type: ignore[arg-type]
    of = kind or named.removeprefix("TYPE_").lower()
    return [f"(buf.validate.field){where}.{chosen} rules on a field of type {of}"]


def _set_paths(message: Message, prefix: str = "") -> list[str]:
    """List the paths of the values set anywhere in `message`."""
    paths = []
    for described, value in message.ListFields():
        path = f"{prefix}{described.name}"
        if described.message_type is not None and not described.is_repeated:
            paths += _set_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


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


def describe_rule(spec: FieldSpec) -> str:
    """Put the value rule of `spec` in words, e.g. "finite and >= 0"."""
    parts = ["finite"] if spec.finite else []
    for present, symbol, bound in (
        (spec.HasField("gte"), ">=", spec.gte),
        (spec.HasField("gt"), ">", spec.gt),
        (spec.HasField("lte"), "<=", spec.lte),
        (spec.HasField("lt"), "<", spec.lt),
    ):
        if present:
            parts.append(f"{symbol} {number_text(bound)}")
    return " and ".join(parts)


def is_present(message: Message, descriptor: FieldDescriptor) -> bool:
    """Whether the field is set: present, or non-empty / non-zero without presence."""
    if descriptor.has_presence:
        return message.HasField(descriptor.name)
    return bool(getattr(message, descriptor.name))
