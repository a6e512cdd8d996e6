"""A run folder's schema.binpb: the `FileDescriptorSet` its log was written with.

Written by the log (every file its record types need, imports first), read
by every reader, and checked before anything is built from it, because a
run folder may come from anyone: it must parse, hold each file once, build,
nest no deeper than `MAX_DEPTH`, and define the log's record type with the
fields a reader needs, each of the same kind as this build's (a schema that
redefines the project's own messages is refused, not half-read). Every
problem is a `SchemaError` that names the file and what is wrong.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from flower_app.protocol.schema import Descriptor, FieldDescriptor, FileDescriptor
from flower_meta.v1.metadata_pb2 import MetadataLogRecord

SCHEMA = "schema.binpb"
MAX_DEPTH = 64
"""Deepest chain of message fields, or of nested declarations, a schema may have."""
MAX_SCHEMA_BYTES = 16 << 20
"""Largest schema file read."""
NEEDED = ("server_round", "node_id")
"""Fields of the record type every reader relies on (and the `outcome` oneof)."""


if TYPE_CHECKING:
    from google._upb import _message as upb

    Pool: TypeAlias = descriptor_pool.DescriptorPool | upb.DescriptorPool
else:  # annotations only: the runtime's own class varies with its backend
    Pool = descriptor_pool.DescriptorPool


class SchemaError(ValueError):
    """A schema file that does not parse, build or fit the log it describes."""


def file_descriptor_set(
    files: Iterable[FileDescriptor],
) -> descriptor_pb2.FileDescriptorSet:
    """`files` and everything they import, each once, imports first."""
    done: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(file: FileDescriptor) -> None:
        if file.name in done:
            return
        for dependency in file.dependencies:
            add(dependency)
        done[file.name] = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(done[file.name])
        _with_json_names(done[file.name].message_type, file.message_types_by_name)

    for file in files:
        add(file)
    return descriptor_pb2.FileDescriptorSet(file=done.values())


def _with_json_names(
    protos: Iterable[descriptor_pb2.DescriptorProto], messages: Mapping[str, Descriptor]
) -> None:
    """Write each field's JSON name into its proto, as protoc's own sets have it.

    A generated module's descriptor leaves them out; readers that build a
    schema from the set (protobuf-es) take them as written.
    """
    for proto in protos:
        message = messages[proto.name]
        for field in proto.field:
            field.json_name = message.fields_by_name[field.name].json_name
        _with_json_names(proto.nested_type, message.nested_types_by_name)


def merged(
    ours: descriptor_pb2.FileDescriptorSet, data: bytes
) -> descriptor_pb2.FileDescriptorSet:
    """`ours`, plus the files of an earlier schema (`data`) that it lacks.

    A log reopened by another build or with other types keeps every type its
    earlier records need; a damaged earlier schema is replaced by `ours`.
    """
    try:
        earlier = parse(data, SCHEMA)
    except SchemaError:
        return ours
    names = {file.name for file in ours.file}
    result = descriptor_pb2.FileDescriptorSet()
    result.CopyFrom(ours)
    result.file.extend(file for file in earlier.file if file.name not in names)
    try:
        build(result, SCHEMA)
    except SchemaError:
        return ours
    return result


def parse(data: bytes, name: str) -> descriptor_pb2.FileDescriptorSet:
    """Parse a `FileDescriptorSet`; refuse one that is empty or repeats a file."""
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(data)
    except DecodeError as err:
        raise SchemaError(f"{name}: not a FileDescriptorSet ({err})") from err
    if not files.file:
        raise SchemaError(f"{name}: holds no .proto file")
    seen: set[str] = set()
    for file in files.file:
        if file.name in seen:
            raise SchemaError(f"{name}: holds {file.name!r} twice")
        seen.add(file.name)
        _check_nesting(file, name)
    return files


def build(
    files: descriptor_pb2.FileDescriptorSet, name: str
) -> descriptor_pool.DescriptorPool:
    """Build a descriptor pool from `files`, imports first."""
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        try:
            pool.Add(file)
        except (TypeError, ValueError, KeyError) as err:
            raise SchemaError(
                f"{name}: {file.name!r} does not build ({_first_line(err)})"
            ) from err
    return pool


def schema_pool(path: Path) -> descriptor_pool.DescriptorPool:
    """Load a `FileDescriptorSet` file, such as a run's schema.binpb, as a pool."""
    if not path.is_file():
        raise FileNotFoundError(f"no such schema file: {path}")
    if path.stat().st_size > MAX_SCHEMA_BYTES:
        raise SchemaError(f"{path}: larger than {MAX_SCHEMA_BYTES} bytes")
    return build(parse(path.read_bytes(), str(path)), str(path))


def message_class(pool: Pool, full_name: str, where: str) -> type[Message]:
    """Build the class of `full_name` from `pool`, once its depth is checked."""
    try:
        found = pool.FindMessageTypeByName(full_name)
    except KeyError as err:
        raise SchemaError(f"{where}: defines no message {full_name}") from err
    _check_depth(found, where)
    try:
        return message_factory.GetMessageClass(found)  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError) as err:
        raise SchemaError(f"{where}: {full_name} does not build ({err})") from err


def record_type(folder: Path) -> type[Message]:
    """Build the log record type of a run folder from its schema.binpb.

    A log written before schema.binpb existed is read with this build's
    `MetadataLogRecord`.
    """
    path = folder / SCHEMA
    if not path.exists() and not path.is_symlink():
        return MetadataLogRecord
    name = MetadataLogRecord.DESCRIPTOR.full_name
    found = message_class(schema_pool(path), name, str(path))
    _check_fits(found.DESCRIPTOR, MetadataLogRecord.DESCRIPTOR, str(path))
    return found


def _check_fits(theirs: Descriptor, ours: Descriptor, where: str) -> None:
    """Refuse a record type a reader cannot rely on.

    It needs `NEEDED` and the `outcome` oneof; every field it shares by name
    with this build's type, in the project's own messages, must be of the
    same kind (type, cardinality, message type), recursively.
    """
    for name in NEEDED:
        if name not in theirs.fields_by_name:
            raise SchemaError(f"{where}: {theirs.full_name} has no field {name!r}")
    if "outcome" not in theirs.oneofs_by_name:
        raise SchemaError(f"{where}: {theirs.full_name} has no oneof 'outcome'")
    pending, done = [(theirs, ours)], set()
    while pending:
        their_type, our_type = pending.pop()
        if our_type.full_name in done:
            continue
        done.add(our_type.full_name)
        for field in our_type.fields:
            other = their_type.fields_by_name.get(field.name)
            if other is None:
                continue
            ours_of, theirs_of = field.message_type, other.message_type
            same = _kind(other) == _kind(field) and (
                None if theirs_of is None else theirs_of.full_name
            ) == (None if ours_of is None else ours_of.full_name)
            if not same:
                raise SchemaError(
                    f"{where}: {their_type.full_name}.{field.name} is not of the "
                    f"kind this build reads (it redefines {our_type.full_name})"
                )
            if ours_of is not None and theirs_of is not None:
                pending.append((theirs_of, ours_of))


def _kind(field: FieldDescriptor) -> tuple[int, bool, bool]:
    return field.type, field.is_repeated, field.is_required


def _check_depth(descriptor: Descriptor, where: str) -> None:
    """Refuse a message whose fields chain deeper than `MAX_DEPTH`.

    The walk is the one protobuf makes to build the classes: each type once,
    depth first, so a recursive type (a cycle) is fine.
    """
    seen: set[str] = set()
    stack = [(descriptor, 1)]
    while stack:
        current, level = stack.pop()
        if current.full_name in seen:
            continue
        if level > MAX_DEPTH:
            raise SchemaError(
                f"{where}: messages nest deeper than {MAX_DEPTH} levels "
                f"(from {descriptor.full_name})"
            )
        seen.add(current.full_name)
        stack += [
            (field.message_type, level + 1)
            for field in current.fields
            if field.message_type is not None
        ]


def _check_nesting(file: descriptor_pb2.FileDescriptorProto, name: str) -> None:
    stack = [(message, 1) for message in file.message_type]
    while stack:
        message, level = stack.pop()
        if level > MAX_DEPTH:
            raise SchemaError(
                f"{name}: {file.name!r} nests declarations deeper than {MAX_DEPTH}"
            )
        stack += [(nested, level + 1) for nested in message.nested_type]


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
