"""A protoc plugin: reference docs and JSON Schema, generated from proto/.

buf runs it twice (see buf.gen.yaml and `image`) beside protoc's own Python
output: with `opt: docs` it writes Markdown, one page per .proto file, into
`generated/docs`; with `opt: jsonschema` a draft 2020-12 schema per message
into `generated/jsonschema`.
"""
