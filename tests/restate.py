"""v1.0-style rule options restated as `buf.validate` rules (the oracle's setup).

A field's `(flower_meta.v1.field)` rules, as schemas written before 1.1
hold them (the fixture `acme/stats/v1/stats.proto`), (`required`, `finite`, `gt`,
`gte`, `lt`, `lte`) have a word for word counterpart in protovalidate:
`required`, and `finite` and each bound under the field's type (`double`,
`uint32`, ...), under `repeated.items` for a repeated field. `restated`
writes that counterpart into each field's options of a schema, beside the
project's own, so any protovalidate implementation enforces the same
rules: the reference the tests hold `validation.validate` to.

The `buf.validate` messages come from validate.proto's descriptor
(`buf_validate`), built in a private pool: no generated module is needed.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from flower_app.codegen import buf_validate
from flower_app.protocol.field_rules import BOUNDS
from flower_app.protocol.schema import NUMBER_KINDS
from flower_meta.v1 import options_pb2

_TYPE = descriptor_pb2.FieldDescriptorProto


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
    classes = message_factory.GetMessageClassesForFiles(
        [file.name for file in validate.file], pool
    )
    field_options = classes["google.protobuf.FieldOptions"]
    extension = pool.FindExtensionByName("buf.validate.field")
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
                options = field_options()
                if _restate(field, options.Extensions[extension]):  # type: ignore[index]
                    field.options.MergeFromString(options.SerializeToString())
                    if buf_validate.FILE not in file.dependency:
                        file.dependency.append(buf_validate.FILE)
    return found


def _restate(field: descriptor_pb2.FieldDescriptorProto, rules: Message) -> bool:
    """Fill `rules` with the field's own rules; False when it has none."""
    spec = field.options.Extensions[options_pb2.field]
    if spec.required:
        rules.required = True  # type: ignore[attr-defined]
    bounds = [name for name in BOUNDS if spec.HasField(name)]
    if spec.finite or bounds:
        kind = NUMBER_KINDS[field.type]
        repeated = field.label == _TYPE.LABEL_REPEATED
        typed = getattr(rules.repeated.items if repeated else rules, kind)  # type: ignore[attr-defined]
        if spec.finite:
            typed.finite = True
        for name in bounds:
            value = getattr(spec, name)
            setattr(typed, name, value if kind in {"double", "float"} else int(value))
    return bool(rules.ByteSize())
