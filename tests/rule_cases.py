"""A schema for every rule kind of validate.proto, and messages drawn near its edges.

`VARIANTS` holds, for each rule kind `rule_kinds.catalogue()` names, one or
more message bodies that use it (a kind missing here fails
`tests/test_rule_kinds.py` until it is placed). `schema()` writes them as
one .proto (proto3, plus a proto2 file of predefined rules, which only
proto2 may declare) and compiles it with protoc: message
`cases.v1.<Kind>_<n>`, one field `v` (or a few) carrying the rule. `draw`
fills a message with values at, next to and far from every constant its
rules name: each bound and its neighbours, lengths one either side, list
members and strangers, well-known formats and near misses, NaN, the
infinities, signed zero, 64-bit extremes, empty and long strings, unknown
enum numbers. Written here from validate.proto's own documentation; none of
protovalidate's conformance files is copied.
"""

import math
import random
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from flower_app.codegen import buf_validate
from flower_app.protocol import field_rules

PACKAGE = "cases.v1"
FILE = "cases/v1/cases.proto"
PREDEFINED_FILE = "cases/v1/predefined.proto"
_F = "(buf.validate.field)"

_NUMBERS: dict[str, dict[str, str]] = {
    "float": {"a": "1.5", "b": "10.25", "list": "[0.5, 1.5, -2.25]", "big": "3e38"},
    "double": {
        "a": "0.1",
        "b": "1e21",
        "list": "[0.1, -0.0, 1e-7, 2.5]",
        "big": "1.7976931348623157e308",
    },
    "int32": {"a": "-5", "b": "7", "list": "[-1, 0, 3]", "big": "2147483647"},
    "int64": {
        "a": "-9007199254740993",
        "b": "9007199254740993",
        "list": "[-1, 9007199254740993]",
        "big": "9223372036854775807",
    },
    "uint32": {"a": "1", "b": "7", "list": "[0, 3, 4294967295]", "big": "4294967295"},
    "uint64": {
        "a": "9007199254740993",
        "b": "18446744073709551614",
        "list": "[0, 18446744073709551615]",
        "big": "18446744073709551615",
    },
    "sint32": {"a": "-5", "b": "7", "list": "[-2147483648, 0]", "big": "2147483647"},
    "sint64": {
        "a": "-9007199254740993",
        "b": "5",
        "list": "[-9223372036854775808, 1]",
        "big": "9223372036854775807",
    },
    "fixed32": {"a": "1", "b": "7", "list": "[2, 4294967295]", "big": "4294967295"},
    "fixed64": {
        "a": "1",
        "b": "9007199254740993",
        "list": "[0, 9007199254740993]",
        "big": "18446744073709551615",
    },
    "sfixed32": {"a": "-5", "b": "7", "list": "[-1, 5]", "big": "2147483647"},
    "sfixed64": {
        "a": "-9007199254740993",
        "b": "9007199254740993",
        "list": "[-1, 1]",
        "big": "9223372036854775807",
    },
}
"""Constants each number type's rules use: two values, a list, an extreme."""
_ZERO = {"float": "0.0", "double": "0.0", "uint32": "0u", "uint64": "0u"}
_ZERO |= {"fixed32": "0u", "fixed64": "0u"}


def _number_variants(kind: str) -> dict[str, list[str]]:
    c = _NUMBERS[kind]
    field = f"{kind} v = 1"
    bounds = {
        "lt": [
            f"{field} [{_F}.{kind}.lt = {c['b']}]",
            f"optional {field} [{_F}.{kind} = {{lt: {c['b']}, gt: {c['a']}}}]",
            f"{field} [{_F}.{kind} = {{lt: {c['a']}, gt: {c['b']}}}]",  # exclusive
        ],
        "lte": [
            f"{field} [{_F}.{kind}.lte = {c['big']}]",
            f"{field} [{_F}.{kind} = {{lte: {c['b']}, gte: {c['a']}}}]",
            f"{field} [{_F}.{kind} = {{lte: {c['a']}, gt: {c['b']}}}]",  # exclusive
        ],
        "gt": [
            f"{field} [{_F}.{kind}.gt = {c['a']}]",
            f"repeated {kind} v = 1 [{_F}.repeated.items.{kind} = {{gt: {c['a']}, "
            f"lte: {c['b']}}}]",
            f"{field} [{_F}.{kind} = {{gt: {c['b']}, lte: {c['a']}}}]",  # exclusive
        ],
        "gte": [
            f"{field} [{_F}.{kind}.gte = {c['b']}]",
            f"optional {field} [{_F}.{kind} = {{gte: {c['a']}, lt: {c['b']}}}]",
            f"{field} [{_F}.{kind} = {{gte: {c['b']}, lt: {c['a']}}}]",  # exclusive
            f"{field} [{_F}.{kind} = {{gte: {c['b']}, lte: {c['a']}}}]",  # exclusive
        ],
    }
    found = {
        "const": [f"{field} [{_F}.{kind}.const = {c['a']}]"],
        **bounds,
        "in": [f"{field} [{_F}.{kind} = {{in: {c['list']}}}]"],
        "not_in": [f"{field} [{_F}.{kind} = {{not_in: {c['list']}}}]"],
        "example": [f"{field} [{_F}.{kind}.example = {c['a']}]"],
        "predefined": [f"{field} [{_F}.{kind}.({PACKAGE}.{kind}_nonzero) = true]"],
    }
    if kind in ("float", "double"):
        found["finite"] = [
            f"{field} [{_F}.{kind}.finite = true]",
            f"{field} [{_F}.{kind} = {{finite: true, gte: 0}}]",
            f"repeated {field} [{_F}.repeated.items.{kind} = {{finite: true, "
            f"lt: {c['b']}}}]",
        ]
    return {f"{kind}.{rule}": bodies for rule, bodies in found.items()}


def _string_variants() -> dict[str, list[str]]:
    field = "string v = 1"
    rules = {
        "const": ['const: "abc"'],
        "len": ["len: 3"],
        "min_len": ["min_len: 2"],
        "max_len": ["max_len: 3"],
        "len_bytes": ["len_bytes: 4"],
        "min_bytes": ["min_bytes: 2"],
        "max_bytes": ["max_bytes: 4"],
        "pattern": ['pattern: "^[a-z]+[0-9]?$"', 'pattern: "^\\\\p{L}{2,3}$"'],
        "prefix": ['prefix: "ab"'],
        "suffix": ['suffix: "yz"'],
        "contains": ['contains: "mid"'],
        "not_contains": ['not_contains: "bad"'],
        "in": ['in: ["a", "bb", "é"]'],
        "not_in": ['not_in: ["a", "bb", ""]'],
        "well_known_regex": [
            "well_known_regex: KNOWN_REGEX_HTTP_HEADER_NAME",
            "well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE",
        ],
        "strict": [
            "well_known_regex: KNOWN_REGEX_HTTP_HEADER_NAME, strict: false",
            "well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE, strict: false",
        ],
        "example": ['example: "x"'],
    }
    formats = [
        "email",
        "hostname",
        "ip",
        "ipv4",
        "ipv6",
        "uri",
        "uri_ref",
        "address",
        "uuid",
        "tuuid",
        "ip_with_prefixlen",
        "ipv4_with_prefixlen",
        "ipv6_with_prefixlen",
        "ip_prefix",
        "ipv4_prefix",
        "ipv6_prefix",
        "host_and_port",
        "ulid",
        "protobuf_fqn",
        "protobuf_dot_fqn",
    ]
    rules |= {name: [f"{name}: true"] for name in formats}
    found = {
        f"string.{rule}": [f"{field} [{_F}.string = {{{body}}}]" for body in bodies]
        for rule, bodies in rules.items()
    }
    found["string.predefined"] = [
        f"{field} [{_F}.string.({PACKAGE}.string_nonempty) = true]"
    ]
    return found


def _bytes_variants() -> dict[str, list[str]]:
    field = "bytes v = 1"
    rules = {
        "const": ['const: "\\x01\\x02"'],
        "len": ["len: 3"],
        "min_len": ["min_len: 2"],
        "max_len": ["max_len: 3"],
        "pattern": ['pattern: "^[a-z]+$"'],
        "prefix": ['prefix: "\\x01"'],
        "suffix": ['suffix: "yz"'],
        "contains": ['contains: "\\x00\\x01"'],
        "in": ['in: ["a", "\\xff\\x00"]'],
        "not_in": ['not_in: ["a", ""]'],
        "ip": ["ip: true"],
        "ipv4": ["ipv4: true"],
        "ipv6": ["ipv6: true"],
        "uuid": ["uuid: true"],
        "example": ['example: "x"'],
    }
    found = {
        f"bytes.{rule}": [f"{field} [{_F}.bytes = {{{body}}}]" for body in bodies]
        for rule, bodies in rules.items()
    }
    found["bytes.predefined"] = [
        f"{field} [{_F}.bytes.({PACKAGE}.bytes_nonempty) = true]"
    ]
    return found


_TIME_RULES = {"lt", "lte", "gt", "gte"}


def _time_variants(kind: str, type_name: str) -> dict[str, list[str]]:
    field = f"{type_name} v = 1"
    one, two = "{seconds: 1, nanos: 500}", "{seconds: 100}"
    if kind == "timestamp":
        one, two = "{seconds: 1700000000}", "{seconds: 1700000100, nanos: 5}"
    found = {
        "const": [f"{field} [{_F}.{kind}.const = {one}]"],
        "example": [f"{field} [{_F}.{kind}.example = {one}]"],
        "lt": [
            f"{field} [{_F}.{kind}.lt = {two}]",
            f"{field} [{_F}.{kind}.lt = {{}}]",  # an empty bound: zero
            f"{field} [{_F}.{kind} = {{lt: {one}, gt: {two}}}]",  # exclusive
        ],
        "lte": [
            f"{field} [{_F}.{kind}.lte = {one}]",
            f"{field} [{_F}.{kind} = {{lte: {two}, gte: {one}}}]",
        ],
        "gt": [
            f"{field} [{_F}.{kind}.gt = {one}]",
            f"{field} [{_F}.{kind}.gt = {{}}]",
            f"{field} [{_F}.{kind} = {{gt: {one}, lt: {two}}}]",
        ],
        "gte": [
            f"{field} [{_F}.{kind}.gte = {{}}]",
            f"{field} [{_F}.{kind} = {{gte: {two}, lte: {one}}}]",  # exclusive
        ],
        "predefined": [f"{field} [{_F}.{kind}.({PACKAGE}.{kind}_nonzero) = true]"],
    }
    if kind == "duration":
        found["in"] = [f"{field} [{_F}.{kind} = {{in: [{one}, {two}]}}]"]
        found["not_in"] = [f"{field} [{_F}.{kind} = {{not_in: [{one}]}}]"]
    if kind == "timestamp":
        found["lt_now"] = [f"{field} [{_F}.timestamp.lt_now = true]"]
        found["gt_now"] = [f"{field} [{_F}.timestamp.gt_now = true]"]
        found["within"] = [
            f"{field} [{_F}.timestamp.within = {{seconds: 86400}}]",
            f"{field} [{_F}.timestamp = {{within: {{seconds: 86400}}, lt_now: true}}]",
        ]
    return {f"{kind}.{rule}": bodies for rule, bodies in found.items()}


_ENUM = "Color"
_MASK = "google.protobuf.FieldMask v = 1"
_INNER = "Inner"


def variants() -> dict[str, list[str]]:
    """Each rule kind's message bodies: one or more fields, options and oneofs."""
    found: dict[str, list[str]] = {}
    for kind in _NUMBERS:
        found |= _number_variants(kind)
    found |= _string_variants()
    found |= _bytes_variants()
    found |= _time_variants("duration", "google.protobuf.Duration")
    found |= _time_variants("timestamp", "google.protobuf.Timestamp")
    enum = f"{_ENUM} v = 1"
    found |= {
        "bool.const": [f"bool v = 1 [{_F}.bool.const = true]"],
        "bool.example": [f"bool v = 1 [{_F}.bool.example = true]"],
        "bool.predefined": [f"bool v = 1 [{_F}.bool.({PACKAGE}.bool_true) = true]"],
        "enum.const": [f"{enum} [{_F}.enum.const = 2]"],
        "enum.defined_only": [
            f"{enum} [{_F}.enum.defined_only = true]",
            f"repeated {enum} [{_F}.repeated.items.enum.defined_only = true]",
        ],
        "enum.in": [f"{enum} [{_F}.enum = {{in: [1, 2]}}]"],
        "enum.not_in": [f"{enum} [{_F}.enum = {{not_in: [0, -1]}}]"],
        "enum.example": [f"{enum} [{_F}.enum.example = 1]"],
        "enum.predefined": [f"{enum} [{_F}.enum.({PACKAGE}.enum_nonzero) = true]"],
        "repeated.min_items": [f"repeated int32 v = 1 [{_F}.repeated.min_items = 2]"],
        "repeated.max_items": [
            f"repeated double v = 1 [{_F}.repeated.max_items = 3]",
            f"repeated string v = 1 [{_F}.repeated = {{min_items: 1, max_items: 2}}]",
        ],
        "repeated.unique": [
            f"repeated int32 v = 1 [{_F}.repeated.unique = true]",
            f"repeated string v = 1 [{_F}.repeated.unique = true]",
            f"repeated double v = 1 [{_F}.repeated.unique = true]",
            f"repeated bytes v = 1 [{_F}.repeated.unique = true]",
        ],
        "repeated.items": [
            f"repeated string v = 1 [{_F}.repeated.items.string = {{min_len: 1, "
            "max_len: 3}]",
            f"repeated {_INNER} v = 1 [{_F}.repeated.items.required = true]",
            f"repeated int64 v = 1 [{_F}.repeated.items.int64 = {{gt: 0, lt: "
            "9007199254740993}]",
        ],
        "repeated.predefined": [
            f"repeated int32 v = 1 [{_F}.repeated.({PACKAGE}.repeated_nonempty) = true]"
        ],
        "map.min_pairs": [f"map<string, int32> v = 1 [{_F}.map.min_pairs = 2]"],
        "map.max_pairs": [f"map<int32, string> v = 1 [{_F}.map.max_pairs = 2]"],
        "map.keys": [
            f"map<string, int32> v = 1 [{_F}.map.keys.string = {{min_len: 2, "
            "max_len: 3}]",
            f"map<int64, bool> v = 1 [{_F}.map.keys.int64.gt = 0]",
            f"map<bool, string> v = 1 [{_F}.map.keys.bool.const = true]",
        ],
        "map.values": [
            f"map<string, double> v = 1 [{_F}.map.values.double = {{gte: 0, "
            "finite: true}]",
            f"map<uint32, {_INNER}> v = 1",
            f"map<string, string> v = 1 [{_F}.map.values.string.max_len = 2]",
        ],
        "map.predefined": [
            f"map<string, int32> v = 1 [{_F}.map.({PACKAGE}.map_nonempty) = true]"
        ],
        "any.in": [
            "google.protobuf.Any v = 1 [(buf.validate.field).any = {in: "
            '["type.googleapis.com/google.protobuf.Duration"]}]'
        ],
        "any.not_in": [
            "google.protobuf.Any v = 1 [(buf.validate.field).any = {not_in: "
            '["type.googleapis.com/google.protobuf.Duration"]}]'
        ],
        "field_mask.const": [f"{_MASK} [{_F}.field_mask.const = {{paths: ['a']}}]"],
        "field_mask.in": [
            f'google.protobuf.FieldMask v = 1 [{_F}.field_mask = {{in: ["a", "b.c"]}}]'
        ],
        "field_mask.not_in": [
            f'google.protobuf.FieldMask v = 1 [{_F}.field_mask = {{not_in: ["a"]}}]'
        ],
        "field_mask.example": [f"{_MASK} [{_F}.field_mask.example = {{paths: ['a']}}]"],
        "field_mask.predefined": [
            f"google.protobuf.FieldMask v = 1 [{_F}.field_mask.("
            f"{PACKAGE}.field_mask_nonempty) = true]"
        ],
        "required": [
            f"optional int32 v = 1 [{_F}.required = true]",
            f"int32 v = 1 [{_F}.required = true]",
            f"string v = 1 [{_F}.required = true]",
            f"repeated int32 v = 1 [{_F}.required = true]",
            f"map<string, int32> v = 1 [{_F}.required = true]",
            f"{_INNER} v = 1 [{_F}.required = true]",
            f"oneof o {{ int32 v = 1 [{_F}.required = true]; string w = 2; }}",
            f"int32 v = 1 [{_F}.required = true, {_F}.ignore = IGNORE_IF_ZERO_VALUE]",
        ],
        "ignore.IGNORE_IF_ZERO_VALUE": [
            f"int32 v = 1 [{_F}.ignore = IGNORE_IF_ZERO_VALUE, {_F}.int32.gt = 5]",
            f"optional string v = 1 [{_F}.ignore = IGNORE_IF_ZERO_VALUE, "
            f"{_F}.string.min_len = 2]",
            f"repeated int32 v = 1 [{_F}.ignore = IGNORE_IF_ZERO_VALUE, "
            f"{_F}.repeated.min_items = 2]",
            f"{_INNER} v = 1 [{_F}.ignore = IGNORE_IF_ZERO_VALUE, {_F}.required "
            "= true]",
        ],
        "ignore.IGNORE_ALWAYS": [
            f"int32 v = 1 [{_F}.ignore = IGNORE_ALWAYS, {_F}.int32.gt = 5]",
            f"{_INNER} v = 1 [{_F}.ignore = IGNORE_ALWAYS]",
        ],
        "cel": [
            f'int32 v = 1 [{_F}.cel = {{id: "between", expression: "this > 2 && '
            'this < 8", message: "must be between 2 and 8"}]',
            f'string v = 1 [{_F}.cel = {{id: "short", expression: "this.size() <= '
            "4 ? '' : 'at most 4 characters'\"}]",
            f'repeated int32 v = 1 [{_F}.cel = {{id: "sum", expression: "this.all('
            'x, x >= 0) && size(this) < 3"}]',
            f'{_INNER} v = 1 [{_F}.cel = {{id: "inner", expression: "this.x != 3"}}]',
            f'int64 v = 1 [{_F}.cel = {{id: "arith", expression: "this * 2 + 1 > 10 '
            '&& this % 3 != 0"}]',
            f'double v = 1 [{_F}.cel = {{id: "half", expression: "this / 2.0 < 1.5 || '
            'this.isNan() || this.isInf()"}]',
            f'repeated string v = 1 [{_F}.cel = {{id: "names", expression: '
            "\"this.all(s, s.size() > 0 && !s.contains(' ')) && this.exists_one(s, "
            "s.startsWith('a'))\"}]",
            f'map<string, int32> v = 1 [{_F}.cel = {{id: "counts", expression: '
            '"this.all(k, this[k] >= 0) && size(this) <= 3"}]',
            f'repeated int32 v = 1 [{_F}.cel = {{id: "kept", expression: '
            '"this.filter(x, x > 0).size() <= 2 && '
            'this.map(x, x * 2).all(y, y < 100)"}]',
            f'uint32 v = 1 [{_F}.cel = {{id: "mixed", expression: "this > 2 && this < '
            '10.5 && this != 7u"}]',
            f'string v = 1 [{_F}.cel = {{id: "lower", expression: "this.matches('
            "'^[a-z]+$') ? '' : 'must be lowercase letters'\"}]",
            f'bytes v = 1 [{_F}.cel = {{id: "short", expression: "size(this) <= 3"}}]',
            f'int32 v = 1 [{_F}.cel = {{id: "div", expression: "this == 0 || '
            '10 / (this - 5) > 2"}]',
            f'google.protobuf.Timestamp v = 1 [{_F}.cel = {{id: "past", expression: '
            '"this < now"}]',
            f'int32 v = 1 [{_F}.required = true, {_F}.cel = {{id: "big", expression: '
            '"this > 5"}]',
            f"repeated int32 v = 1 [{_F}.repeated.items.cel = "
            '{id: "item", expression: "this in [1, 2, 3]"}]',
        ],
        "cel_expression": [
            f'int32 v = 1 [{_F}.cel_expression = "this >= 2"]',
            f"string v = 1 [{_F}.cel_expression = \"this.startsWith('a') ? '' : "
            "'must start with a'\"]",
        ],
        "message.cel": [
            'option (buf.validate.message).cel = {id: "order", expression: '
            '"this.a <= this.b", message: "a must not exceed b"}; '
            "int32 a = 1; int32 b = 2",
            'option (buf.validate.message).cel = {id: "some", expression: '
            "\"has(this.c) ? '' : 'c is needed'\"}; optional string c = 1",
            'option (buf.validate.message).cel = {id: "nested", expression: '
            '"!has(this.inner) || this.inner.x > this.n"}; '
            f"{_INNER} inner = 1; int32 n = 2",
            'option (buf.validate.message).cel = {id: "tagged", expression: '
            '"this.tags.exists(t, t == this.name) || [1, 2].exists(x, x == this.n)"}; '
            "repeated string tags = 1; string name = 2; int32 n = 3",
        ],
        "message.cel_expression": [
            'option (buf.validate.message).cel_expression = "this.a != this.b"; '
            "int32 a = 1; int32 b = 2"
        ],
        "message.oneof": [
            'option (buf.validate.message).oneof = {fields: ["a", "b"]}; '
            "int32 a = 1; string b = 2",
            'option (buf.validate.message).oneof = {fields: ["a", "b"], required: '
            "true}; optional int32 a = 1; optional string b = 2",
        ],
        "oneof.required": [
            "oneof o { option (buf.validate.oneof).required = true; int32 a = 1; "
            "string b = 2; }",
            "oneof o { option (buf.validate.oneof).required = true; "
            f"{_INNER} a = 1; bool b = 2; }}",
        ],
        "predefined.cel": [
            f"int32 v = 1 [{_F}.int32.({PACKAGE}.int32_nonzero) = true]"
        ],
    }
    return found


_PREDEFINED = {
    "float": ("bool", "rule && this == 0.0 ? 'must not be zero' : ''"),
    "double": ("bool", "rule && this == 0.0 ? 'must not be zero' : ''"),
    "int32": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "int64": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "uint32": ("bool", "rule && this == 0u ? 'must not be zero' : ''"),
    "uint64": ("bool", "rule && this == 0u ? 'must not be zero' : ''"),
    "sint32": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "sint64": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "fixed32": ("bool", "rule && this == 0u ? 'must not be zero' : ''"),
    "fixed64": ("bool", "rule && this == 0u ? 'must not be zero' : ''"),
    "sfixed32": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "sfixed64": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "bool": ("bool", "rule && !this ? 'must be true' : ''"),
    "string": ("bool", "rule && this.size() == 0 ? 'must not be empty' : ''"),
    "bytes": ("bool", "rule && this.size() == 0 ? 'must not be empty' : ''"),
    "enum": ("bool", "rule && this == 0 ? 'must not be zero' : ''"),
    "repeated": ("bool", "rule && size(this) == 0 ? 'must not be empty' : ''"),
    "map": ("bool", "rule && size(this) == 0 ? 'must not be empty' : ''"),
    "duration": ("bool", "rule && this == duration('0s') ? 'must not be zero' : ''"),
    "timestamp": (
        "bool",
        "rule && this == timestamp('1970-01-01T00:00:00Z') ? 'must not be zero' : ''",
    ),
    "field_mask": ("bool", "rule && size(this.paths) == 0 ? 'must not be empty' : ''"),
}
_SUFFIX = {"bool": "true", "string": "nonempty", "bytes": "nonempty"}
_SUFFIX |= {"repeated": "nonempty", "map": "nonempty", "field_mask": "nonempty"}
_RULES_TYPE = {"field_mask": "FieldMask", "uint32": "UInt32", "uint64": "UInt64"}
_RULES_TYPE |= {"sint32": "SInt32", "sint64": "SInt64", "sfixed32": "SFixed32"}
_RULES_TYPE |= {"sfixed64": "SFixed64"}


def message_name(kind: str, index: int) -> str:
    """The case message of a kind's variant: `cases.v1.String_max_len_0`."""
    head, _, tail = kind.partition(".")
    return f"{head.capitalize()}_{tail or 'rule'}_{index}".replace(".", "_")


def proto_sources() -> dict[str, str]:
    """The case schema's .proto files: name to text."""
    predefined = [
        'syntax = "proto2";',
        f"package {PACKAGE};",
        'import "buf/validate/validate.proto";',
    ]
    for kind, (value_type, expression) in _PREDEFINED.items():
        name = f"{kind}_{_SUFFIX.get(kind, 'nonzero')}"
        rules = _RULES_TYPE.get(kind, kind.capitalize())
        predefined += [
            f"extend buf.validate.{rules}Rules {{",
            f"  optional {value_type} {name} = 1161 [(buf.validate.predefined).cel = "
            f'{{id: "{kind}.{name}", expression: "{expression}"}}];',
            "}",
        ]
    lines = [
        'syntax = "proto3";',
        f"package {PACKAGE};",
        'import "buf/validate/validate.proto";',
        'import "google/protobuf/any.proto";',
        'import "google/protobuf/duration.proto";',
        'import "google/protobuf/field_mask.proto";',
        'import "google/protobuf/timestamp.proto";',
        f'import "{PREDEFINED_FILE}";',
        f"enum {_ENUM} {{ COLOR_UNSPECIFIED = 0; COLOR_RED = 1; COLOR_BLUE = 2; "
        "COLOR_DARK = -1; }",
        f"message {_INNER} {{ int32 x = 1 [{_F}.int32.gte = 0]; }}",
    ]
    for kind, bodies in variants().items():
        for index, body in enumerate(bodies):
            lines.append(f"message {message_name(kind, index)} {{ {body}; }}")
    return {
        PREDEFINED_FILE: "\n".join(predefined) + "\n",
        FILE: "\n".join(lines) + "\n",
    }


def schema(folder: Path) -> descriptor_pb2.FileDescriptorSet:
    """Compile the case schema (imports included) in `folder`; return it."""
    return compiled(proto_sources(), FILE, folder)


def compiled(
    sources: dict[str, str], main: str, folder: Path
) -> descriptor_pb2.FileDescriptorSet:
    """Compile `sources` (name to .proto text) in `folder`: `main` and its imports."""
    for name, text in sources.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    given = folder / "buf_validate.binpb"
    given.write_bytes(buf_validate.descriptor_set().SerializeToString())
    out = folder / "cases.binpb"
    import grpc_tools

    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={given}",
            f"-I{folder}",
            f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
            "--include_imports",
            f"-o{out}",
            main,
        ],
        check=True,
    )
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def classes(files: descriptor_pb2.FileDescriptorSet) -> dict[str, type[Message]]:
    """Each case message's class, by its full name, in a pool of their own."""
    found = classes_in(files, FILE)
    del found[f"{PACKAGE}.{_INNER}"]
    return found


def classes_in(
    files: descriptor_pb2.FileDescriptorSet, name: str
) -> dict[str, type[Message]]:
    """The classes of file `name`'s messages, by full name, in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return {
        message.full_name: message_factory.GetMessageClass(message)
        for message in pool.FindFileByName(name).message_types_by_name.values()
    }


def cases_of(kind: str) -> list[str]:
    """The full names of a kind's case messages."""
    return [
        f"{PACKAGE}.{message_name(kind, index)}"
        for index in range(len(variants()[kind]))
    ]


# Drawing values near every constant a field's rules name.

_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_DOUBLES = [0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.0**53]
_SPECIALS = [math.inf, -math.inf, math.nan]
_CHARS = ["a", "z", "0", "-", "é", "😀", " ", ".", "_", "\x00", "\t", "A", "/"]
_FORMATS = [
    "user@example.com",
    "a.b@c.io",
    "@example.com",
    "user@",
    "user@exa mple.com",
    "x@localhost",
    "example.com",
    "a-b.c-d.e",
    "-bad.com",
    "a..b",
    "a" * 63 + ".com",
    "a" * 64 + ".com",
    "localhost",
    "127.0.0.1",
    "256.1.1.1",
    "1.2.3",
    "01.2.3.4",
    "::1",
    "2001:db8::1",
    "2001:db8::1%eth0",
    "fe80::1::2",
    "::ffff:1.2.3.4",
    "192.168.0.0/16",
    "192.168.1.1/16",
    "10.0.0.0/33",
    "2001:db8::/32",
    "2001:db8::1/128",
    "::/0",
    "https://example.com/a?b=c#d",
    "http://[::1]:80/",
    "mailto:a@b.c",
    "/relative/path",
    "//host/path",
    "ht tp://x",
    "https://exa%20mple.com",
    "urn:isbn:0451450523",
    "example.com:8080",
    "[::1]:443",
    "127.0.0.1:65535",
    "example.com:65536",
    "host:",
    "123e4567-e89b-12d3-a456-426614174000",
    "123E4567-E89B-12D3-A456-426614174000",
    "123e4567e89b12d3a456426614174000",
    "123e4567-e89b-12d3-a456-42661417400",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "01ARZ3NDEKTSV4RRFFQ69G5FAU0",
    "81ARZ3NDEKTSV4RRFFQ69G5FAV",
    "foo.bar.Baz",
    ".foo.bar.Baz",
    "foo..bar",
    "1foo.bar",
    "Content-Type",
    "content type",
    ":authority",
    "x-custom_header",
    "value with spaces",
    "bad\r\nvalue",
    "tab\tvalue",
    "\x7f",
]


def hints(rules: Message | None) -> list[Any]:
    """Every constant a rules message (and its nested rules) names."""
    found: list[Any] = []
    if rules is None:
        return found
    for described, value in rules.ListFields():
        values = list(value) if described.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                name = item.DESCRIPTOR.full_name
                if name in (
                    "google.protobuf.Duration",
                    "google.protobuf.Timestamp",
                ):
                    found.append((item.seconds, item.nanos))  # type: ignore[attr-defined]
                elif name == "google.protobuf.FieldMask":
                    found += list(item.paths)  # type: ignore[attr-defined]
                else:
                    found += hints(item)
            elif not isinstance(item, bool):
                found.append(item)
    return found


def draw(kind: type[Message], rng: random.Random, now: float) -> Message:
    """A message of a case type, its fields at and near its rules' constants.

    `now` (seconds since the epoch) places timestamps an hour or more from
    any bound that moves with the clock, so a verdict cannot change between
    two readers' runs.
    """
    message = kind()
    descriptor = kind.DESCRIPTOR
    chosen = {oneof.name: rng.choice(oneof.fields) for oneof in descriptor.oneofs}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):
            if chosen[oneof.name] is not field or rng.random() < 0.2:
                continue
        elif rng.random() < 0.15:
            continue  # absent (implicit: the zero value)
        _fill(message, field, field_rules.buf_rules(field), rng, now)  # type: ignore[arg-type]
    return message


def _fill(
    message: Message,
    field: FieldDescriptor,
    rules: Message | None,
    rng: random.Random,
    now: float,
) -> None:
    near = hints(rules)
    value = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key_field, value_field = (
            entry.fields_by_name["key"],
            entry.fields_by_name["value"],
        )
        for _ in range(_count(near, rng)):
            key = _scalar(key_field, near, rng)
            if value_field.message_type is not None:
                _message(value[key], value_field.message_type, near, rng, now)
            else:
                value[key] = _scalar(value_field, near, rng)
    elif field.is_repeated:
        pool = [_element(field, near, rng, now) for _ in range(3)]
        for _ in range(_count(near, rng)):
            item = (
                rng.choice(pool)
                if rng.random() < 0.3
                else _element(field, near, rng, now)
            )
            if entry is not None:
                value.add().CopyFrom(item)
            else:
                value.append(item)
    elif entry is not None:
        _message(value, entry, near, rng, now)
    else:
        setattr(message, field.name, _scalar(field, near, rng))


def _element(
    field: FieldDescriptor, near: list[Any], rng: random.Random, now: float
) -> Any:
    if field.message_type is None:
        return _scalar(field, near, rng)
    item = message_factory.GetMessageClass(field.message_type)()
    _message(item, field.message_type, near, rng, now)
    return item


def _count(near: list[Any], rng: random.Random) -> int:
    sizes = [n for n in near if isinstance(n, int) and 0 <= n < 8]
    if sizes and rng.random() < 0.7:
        return max(0, rng.choice(sizes) + rng.choice([-1, 0, 1]))
    return rng.randint(0, 4)


def _message(
    value: Message,
    descriptor: Descriptor,
    near: list[Any],
    rng: random.Random,
    now: float,
) -> None:
    name = descriptor.full_name
    if name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
        seconds, nanos = _moment(name, near, rng, now)
        value.seconds, value.nanos = seconds, nanos  # type: ignore[attr-defined]
        value.SetInParent()
    elif name == "google.protobuf.FieldMask":
        paths = [p for p in near if isinstance(p, str)] + ["x", "a.b", "b.c"]
        value.paths.extend(rng.sample(paths, rng.randint(0, 2)))  # type: ignore[attr-defined]
        value.SetInParent()
    elif name == "google.protobuf.Any":
        urls = [u for u in near if isinstance(u, str)]
        urls += ["type.googleapis.com/google.protobuf.Timestamp", "", "x/y"]
        value.type_url = rng.choice(urls)  # type: ignore[attr-defined]
        value.SetInParent()
    else:
        for field in descriptor.fields:
            if rng.random() < 0.8:
                _fill(value, field, field_rules.buf_rules(field), rng, now)
        value.SetInParent()


def _moment(
    name: str, near: list[Any], rng: random.Random, now: float
) -> tuple[int, int]:
    """Seconds and nanos near a bound; a timestamp an hour or more from now's edges."""
    moments = [m for m in near if isinstance(m, tuple)] + [(0, 0)]
    roll = rng.random()
    if name == "google.protobuf.Timestamp" and roll < 0.3:
        offset = rng.choice([-1, 1]) * rng.choice(
            [3600 * 2, 86400 - 7200, 86400 + 7200]
        )
        seconds = int(now) + offset
    elif roll < 0.8:
        seconds, nanos = rng.choice(moments)
        step = rng.choice([(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (0, 999_999_999)])
        seconds, nanos = seconds + step[0], nanos + step[1]
        if nanos < 0:
            seconds, nanos = seconds - 1, nanos + 1_000_000_000
        elif nanos >= 1_000_000_000:
            seconds, nanos = seconds + 1, nanos - 1_000_000_000
        return seconds, nanos
    else:
        seconds = rng.randint(-(10**6), 10**10)
    return seconds, rng.choice([0, 5, 999_999_999, rng.randint(0, 999_999_999)])


def _scalar(field: FieldDescriptor, near: list[Any], rng: random.Random) -> Any:
    kind = field.type
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        value = _double(near, rng)
        if kind == FieldDescriptor.TYPE_FLOAT:
            return _as_float32(value)
        return value
    if kind in _INTEGER_RANGES:
        return _integer(_INTEGER_RANGES[kind], near, rng)
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]  # type: ignore[union-attr]
        return rng.choice([*numbers, 99, -7, *[n for n in near if isinstance(n, int)]])
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(near, rng)
    if kind == FieldDescriptor.TYPE_BYTES:
        return _bytes(near, rng)
    raise AssertionError(f"no values for {field.full_name}")


def _double(near: list[Any], rng: random.Random) -> float:
    numbers = [float(n) for n in near if isinstance(n, (int, float))]
    roll = rng.random()
    if numbers and roll < 0.5:
        bound = rng.choice(numbers)
        return rng.choice(
            [bound, math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
        )
    if roll < 0.75:
        return rng.choice(_DOUBLES)
    if roll < 0.85:
        return rng.choice(_SPECIALS)
    return rng.uniform(-3, 3) * 10.0 ** rng.randint(-8, 8)


def _as_float32(value: float) -> float:
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _integer(bounds: tuple[int, int], near: list[Any], rng: random.Random) -> int:
    low, high = bounds
    numbers = [n for n in near if isinstance(n, int) and not isinstance(n, bool)]
    roll = rng.random()
    if numbers and roll < 0.6:
        value = rng.choice(numbers) + rng.choice([-1, 0, 0, 1])
    elif roll < 0.8:
        value = rng.choice([low, high, 0, 1, -1, 2**53, 2**53 + 1, -(2**53) - 1])
    else:
        value = rng.randint(low, high)
    return min(max(value, low), high)


def _string(near: list[Any], rng: random.Random) -> str:
    words = [n for n in near if isinstance(n, str)]
    lengths = [n for n in near if isinstance(n, int) and 0 <= n < 40]
    roll = rng.random()
    if words and roll < 0.3:
        return _mutate(rng.choice(words), rng)
    if lengths and roll < 0.55:
        size = max(0, rng.choice(lengths) + rng.choice([-1, 0, 1]))
        return "".join(
            rng.choice(_CHARS[: 4 if rng.random() < 0.5 else None]) for _ in range(size)
        )
    if roll < 0.85:
        return (
            _mutate(rng.choice(_FORMATS), rng)
            if rng.random() < 0.3
            else rng.choice(_FORMATS)
        )
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(0, 6)))


def _mutate(text: str, rng: random.Random) -> str:
    if not text or rng.random() < 0.3:
        return text
    at = rng.randrange(len(text))
    change = rng.random()
    if change < 0.33:
        return text[:at] + text[at + 1 :]
    if change < 0.66:
        return text[:at] + rng.choice(_CHARS) + text[at:]
    return text[:at] + rng.choice(_CHARS) + text[at + 1 :]


def _bytes(near: list[Any], rng: random.Random) -> bytes:
    blobs = [n for n in near if isinstance(n, bytes)]
    lengths = [n for n in near if isinstance(n, int) and 0 <= n < 40]
    roll = rng.random()
    if blobs and roll < 0.35:
        blob = rng.choice(blobs)
        at = rng.randint(0, len(blob))
        return rng.choice(
            [blob, blob[:at] + bytes([rng.randrange(256)]) + blob[at:], blob[1:]]
        )
    if lengths and roll < 0.6:
        size = max(0, rng.choice(lengths) + rng.choice([-1, 0, 1]))
        return bytes(rng.choice(b"az\x00\xff") for _ in range(size))
    if roll < 0.8:
        return rng.randbytes(rng.choice([0, 4, 16, 15, 17, 5]))
    return rng.choice([b"", b"abc", b"ab\xff", "é".encode(), b"yz", b"\x01\x02"])


def messages(
    kind: str, count: int, classes_by_name: dict[str, type[Message]], seed: str
) -> Iterator[tuple[str, Message]]:
    """`count` messages of a kind's cases, spread over its variants."""
    rng = random.Random(seed)
    names = cases_of(kind)
    now = time.time()
    for index in range(count):
        name = names[index % len(names)]
        yield name, draw(classes_by_name[name], rng, now)
