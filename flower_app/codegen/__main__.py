"""Run as a protoc plugin: CodeGeneratorRequest on stdin, response on stdout."""

import sys

from google.protobuf import descriptor_pool
from google.protobuf.compiler import plugin_pb2

from flower_app.codegen import json_schema, reference

Request = plugin_pb2.CodeGeneratorRequest
Response = plugin_pb2.CodeGeneratorResponse


def generate(request: Request) -> Response:
    """Write a reference page per file (opt docs) or a JSON Schema per message."""
    pool = descriptor_pool.DescriptorPool()
    for proto in request.proto_file:
        pool.Add(proto)
    sources = {proto.name: proto for proto in request.proto_file}
    response = Response(supported_features=Response.FEATURE_PROTO3_OPTIONAL)
    for name in request.file_to_generate:
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
        else:
            response.error = f"opt: docs or jsonschema, not {request.parameter!r}"
    return response


def main() -> None:
    """Answer one request from protoc (or buf)."""
    request = Request.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
