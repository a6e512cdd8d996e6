"""Run as a protoc plugin: CodeGeneratorRequest on stdin, response on stdout."""

import sys
from collections.abc import Iterable, Iterator

from google.protobuf import descriptor_pool
from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor import Descriptor

from flower_app.codegen import json_schema, reference
from flower_app.protocol.rules import RuleError, compile_rules
from flower_app.protocol.schema import BUF_VALIDATE

Request = plugin_pb2.CodeGeneratorRequest
Response = plugin_pb2.CodeGeneratorResponse


def generate(request: Request) -> Response:
    """Write a reference page per file (opt docs) or a JSON Schema per message.

    First compile every message's rules: a rule no validator can apply
    fails generation with one line naming the file, the field and the rule.
    With opt check, that is all it does.
    """
    pool = descriptor_pool.DescriptorPool()
    for proto in request.proto_file:
        pool.Add(proto)
    sources = {proto.name: proto for proto in request.proto_file}
    response = Response(supported_features=Response.FEATURE_PROTO3_OPTIONAL)
    for name in request.file_to_generate:
        if name == BUF_VALIDATE:
            continue  # protovalidate's own file, generated for its Python only
        file = pool.FindFileByName(name)
        try:
            for message in _messages(file.message_types_by_name.values()):
                compile_rules(message)
        except RuleError as err:
            response.error = f"{name}: {err}"
            del response.file[:]
            return response
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
