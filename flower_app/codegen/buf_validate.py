"""`buf/validate/validate.proto` as a descriptor, from the installed protovalidate.

No package ships protovalidate's rules as `.proto` text, and buf's registry
is out of reach offline; the protovalidate wheel (pinned in the codegen
extra) embeds the file's serialized `FileDescriptorProto` in its generated
module. This reads it from that module's source (parsed, never imported or
run) and sets it beside the Google files it imports, as a
`FileDescriptorSet` that protoc takes with `--descriptor_set_in` and buf
takes as an image.

    python -m flower_app.codegen.buf_validate OUT.binpb
"""

import ast
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    field_mask_pb2,
    timestamp_pb2,
)

PACKAGE = "protovalidate"
VERSION = "2.1.0"
"""The protovalidate release the rules come from (pinned in pyproject.toml)."""
FILE = "buf/validate/validate.proto"
MODULE = ("_gen", "buf", "validate", "validate_pb.py")
"""Where in the package its generated module holds the descriptor."""
_GOOGLE = {
    module.DESCRIPTOR.name: module
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2)
}
"""The Google files validate.proto imports, from protobuf's own runtime."""


class BufValidateError(RuntimeError):
    """The installed protovalidate cannot supply validate.proto."""


def validate_file() -> descriptor_pb2.FileDescriptorProto:
    """Return validate.proto's descriptor as the installed protovalidate holds it."""
    try:
        installed = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        installed = ""
    spec = importlib.util.find_spec(PACKAGE) if installed else None
    if spec is None or not spec.submodule_search_locations:
        raise BufValidateError(
            f"{PACKAGE} is not installed: pip install 'flower-meta-protocol[codegen]'"
        )
    if installed != VERSION:
        raise BufValidateError(
            f"{PACKAGE} {installed} is installed; the rules are {PACKAGE} {VERSION}'s"
        )
    source = Path(spec.submodule_search_locations[0], *MODULE)
    serialized = _embedded_descriptor(source.read_text(encoding="utf-8"))
    if serialized is None:
        raise BufValidateError(f"{source}: holds no serialized descriptor")
    found = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    if found.name != FILE:
        raise BufValidateError(f"{source}: describes {found.name!r}, not {FILE}")
    return found


def _embedded_descriptor(source: str) -> bytes | None:
    """Return the bytes literal a generated module hands `file_desc(...)` first."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    return None


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """Return validate.proto after the files it imports, each once."""
    validate = validate_file()
    files = descriptor_pb2.FileDescriptorSet()
    for name in validate.dependency:
        if name not in _GOOGLE:
            raise BufValidateError(f"{FILE} imports {name}, which is not Google's")
        _GOOGLE[name].DESCRIPTOR.CopyToProto(files.file.add())
    files.file.append(validate)
    return files


def main(argv: list[str]) -> int:
    """Write the descriptor set to the one path given."""
    if len(argv) != 1:
        print(
            "usage: python -m flower_app.codegen.buf_validate OUT.binpb",
            file=sys.stderr,
        )
        return 2
    try:
        data = descriptor_set().SerializeToString()
    except BufValidateError as err:
        print(f"buf_validate: {err}", file=sys.stderr)
        return 1
    Path(argv[0]).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
