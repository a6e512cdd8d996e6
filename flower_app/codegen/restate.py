"""The project's own rule options restated as `buf.validate` rules.

A field's `(flower_meta.v1.field)` rules (`required`, `finite`, `gt`,
`gte`, `lt`, `lte`) have a word for word counterpart in protovalidate:
`required`, and `finite` and each bound under the field's type (`double`,
`uint32`, ...), under `repeated.items` for a repeated field. `restated`
writes that counterpart into each field's options of a schema, beside the
project's own, so any protovalidate implementation enforces the same
rules: the reference the tests and benchmarks hold `rules.validate` to.

The `buf.validate` messages come from validate.proto's descriptor
(`buf_validate`), built in a private pool: no generated module is needed.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from flower_app.codegen import buf_validate
from flower_meta.v1 import options_pb2

FIELD_RULES = 1159
"""The number of the `buf.validate.field` extension of FieldOptions."""
_TYPE = descriptor_pb2.FieldDescriptorProto
_KINDS = {
    getattr(_TYPE, f"TYPE_{name.upper()}"): name
    for name in (
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
"""protovalidate's rules of each number type, by the type's name."""
_BOUNDS = ("gt", "gte", "lt", "lte")


def restated(
    files: descriptor_pb2.FileDescriptorSet,
) -> descriptor_pb2.FileDescriptorSet:
    """Return `files` with every field's rules also as `buf.validate` rules.

    validate.proto and the Google files it imports come first; a file that
    gains a rule imports validate.proto.
    """
    validate = buf_validate.descriptor_set()
    pool = descriptor_pool.DescriptorPool()
    for file in validate.file:
        pool.Add(file)
    field_rules = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("buf.validate.FieldRules")
    )
    found = descriptor_pb2.FileDescriptorSet(file=validate.file)
    given = {file.name for file in validate.file}
    for original in files.file:
        if original.name in given:
            continue
        file = found.file.add()
        file.CopyFrom(original)
        messages = list(file.message_type)
        while messages:
            message = messages.pop()
            messages.extend(message.nested_type)
            for field in message.field:
                rules = _restate(field, field_rules())
                if rules is not None:
                    field.options.MergeFromString(_extension(rules))
                    if buf_validate.FILE not in file.dependency:
                        file.dependency.append(buf_validate.FILE)
    return found


def _restate(
    field: descriptor_pb2.FieldDescriptorProto, rules: Message
) -> Message | None:
    """Fill `rules` with the field's own rules; None when it has none."""
    spec = field.options.Extensions[options_pb2.field]
    if spec.required:
        rules.required = True  # type: ignore[attr-defined]
    bounds = [name for name in _BOUNDS if spec.HasField(name)]  # type: ignore[arg-type]
    if spec.finite or bounds:
        kind = _KINDS[field.type]
        repeated = field.label == _TYPE.LABEL_REPEATED
        typed = getattr(rules.repeated.items if repeated else rules, kind)  # type: ignore[attr-defined]
        if spec.finite:
            typed.finite = True
        for name in bounds:
            value = getattr(spec, name)
            setattr(typed, name, value if kind in {"double", "float"} else int(value))
    return rules if rules.ByteSize() else None


def _extension(rules: Message) -> bytes:
    """`rules` as the `buf.validate.field` extension's bytes in a FieldOptions."""
    data = rules.SerializeToString()
    return _varint(FIELD_RULES << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
