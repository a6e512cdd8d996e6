"""The comments of a .proto file, by the full name of what they document."""

from google.protobuf import descriptor_pb2

FILE = ""
"""The key of the file's own comment (the one above `syntax`)."""
_SYNTAX, _MESSAGE, _ENUM, _EXTENSION = 12, 4, 5, 7
_FIELD, _NESTED, _VALUE = 2, 3, 2


def comments(source: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Map messages, fields, enums, values and extensions to their comments."""
    paths: dict[tuple[int, ...], str] = {}
    prefix = f"{source.package}." if source.package else ""
    for i, message in enumerate(source.message_type):
        _message_paths(message, (_MESSAGE, i), prefix, paths)
    for i, enum in enumerate(source.enum_type):
        _enum_paths(enum, (_ENUM, i), prefix, paths)
    for i, extension in enumerate(source.extension):
        paths[(_EXTENSION, i)] = prefix + extension.name
    found: dict[str, str] = {}
    for location in source.source_code_info.location:
        path = tuple(location.path)
        if path == (_SYNTAX,):
            text = "\n\n".join(location.leading_detached_comments)
            found[FILE] = _clean(text or location.leading_comments)
        elif path in paths and location.leading_comments:
            found[paths[path]] = _clean(location.leading_comments)
    return found


def _message_paths(
    message: descriptor_pb2.DescriptorProto,
    path: tuple[int, ...],
    prefix: str,
    paths: dict[tuple[int, ...], str],
) -> None:
    name = prefix + message.name
    paths[path] = name
    for i, field in enumerate(message.field):
        paths[(*path, _FIELD, i)] = f"{name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        _message_paths(nested, (*path, _NESTED, i), f"{name}.", paths)


def _enum_paths(
    enum: descriptor_pb2.EnumDescriptorProto,
    path: tuple[int, ...],
    prefix: str,
    paths: dict[tuple[int, ...], str],
) -> None:
    name = prefix + enum.name
    paths[path] = name
    for i, value in enumerate(enum.value):
        paths[(*path, _VALUE, i)] = f"{name}.{value.name}"


def _clean(text: str) -> str:
    """Drop the one space after `//` from each line of a comment."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.splitlines()]
    return "\n".join(lines).strip("\n")
