"""Run as a protoc plugin: CodeGeneratorRequest on stdin, response on stdout."""

import sys
from collections.abc import Iterable, Iterator

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor import Descriptor, FileDescriptor

from flower_app.codegen import json_schema, reference
from flower_app.protocol import validation
from flower_app.protocol.field_rules import BUF_VALIDATE
from flower_app.protocol.rules import RuleError

Request = plugin_pb2.CodeGeneratorRequest
Response = plugin_pb2.CodeGeneratorResponse


def generate(request: Request) -> Response:
    """Write a reference page per file (opt docs) or a JSON Schema per message.

    First compile every message's rules: each refused rule fails generation
    with one line naming the file, the field (or message) and the rule, every
    one of every file. With opt check, that is all it does.
    """
    pool = descriptor_pool.DescriptorPool()
    for proto in request.proto_file:
        pool.Add(proto)
    sources = {proto.name: proto for proto in request.proto_file}
    response = Response(
        supported_features=Response.FEATURE_PROTO3_OPTIONAL
        | Response.FEATURE_SUPPORTS_EDITIONS,
        minimum_edition=descriptor_pb2.EDITION_PROTO2,
        maximum_edition=descriptor_pb2.EDITION_2024,
    )
    wanted = [name for name in request.file_to_generate if name != BUF_VALIDATE]
    refused = [
        f"{name}: {problem}"
        for name in wanted
        for problem in refusals(pool.FindFileByName(name))
    ]
    if refused:
        response.error = "\n".join(dict.fromkeys(refused))
        return response
    for name in wanted:  # validate.proto: generated for its Python only
        file = pool.FindFileByName(name)
        if request.parameter == "docs":
            response.file.add(
                name=f"{name.removesuffix('.proto')}.md",
                content=reference.page(file, sources[name]),
            )
        elif request.parameter == "jsonschema":
            for message in file.message_types_by_name.values():
                response.file.add(
                    name=f"{message.full_name}.schema.json",
                    content=json_schema.document(message, sources),
                )
        elif request.parameter != "check":
            response.error = (
                f"opt: docs, jsonschema or check, not {request.parameter!r}"
            )
    return response


def refusals(file: FileDescriptor) -> Iterator[str]:
    """Name every refused rule of the file's messages (nested ones too)."""
    for message in _messages(file.message_types_by_name.values()):
        found = validation.problems(message)
        if found:
            yield from map(str, found)
            continue
        try:
            validation.validator(message)
        except RuleError as err:
            yield str(err)


def _messages(messages: Iterable[Descriptor]) -> Iterator[Descriptor]:
    """Every message type, nested ones too."""
    for message in messages:
        yield message
        yield from _messages(message.nested_types)


def main() -> None:
    """Answer one request from protoc (or buf)."""
    request = Request.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
