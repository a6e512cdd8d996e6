"""A JSON Schema (draft 2020-12) of a message's canonical proto3 JSON, rules included.

For readers of metadata.jsonl (or any proto3 JSON) without protobuf: field
names as protobuf prints them (lowerCamelCase), each field's type in the
proto3 JSON mapping, and every rule JSON Schema can express as keywords:
presence (`required`; a required oneof as `anyOf`), number bounds,
`const`, `in` and `not_in` (`enum`, `not`), string lengths in characters,
patterns, prefixes and suffixes, enum values, list and map sizes, unique
items, an Any's allowed types; a `finite` number admits none of the
"NaN"/"Infinity" strings. A 64-bit integer is a decimal string in proto3
JSON, which `minimum` does not compare: its bounds are a `pattern` that
matches exactly the integers in range (`integer_pattern`). What JSON
Schema cannot express (CEL, lengths in bytes, well-known formats such as
email or hostname, durations, timestamps) is named, with its value, in the
field's or message's description: protovalidate applies it. Fields a newer
writer adds are allowed.
"""

import base64
import json
import math
import re
from typing import Any

from google.protobuf import descriptor_pb2, text_format
from google.protobuf.message import Message

from flower_app.codegen.comments import comments
from flower_app.codegen.integer_pattern import integer_pattern
from flower_app.protocol import field_rules
from flower_app.protocol.schema import Descriptor, FieldDescriptor

Json = dict[str, Any]
Notes = dict[str, str]
Definitions = dict[str, Json]
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_PB = descriptor_pb2.FieldDescriptorProto
_FLOATS = {_PB.TYPE_DOUBLE, _PB.TYPE_FLOAT}
_INT32: dict[int, tuple[int, int]] = {
    _PB.TYPE_INT32: (-(2**31), 2**31 - 1),
    _PB.TYPE_UINT32: (0, 2**32 - 1),
    _PB.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _PB.TYPE_FIXED32: (0, 2**32 - 1),
    _PB.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
_INT64: dict[int, tuple[int, int]] = {
    _PB.TYPE_INT64: (-(2**63), 2**63 - 1),
    _PB.TYPE_UINT64: (0, 2**64 - 1),
    _PB.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _PB.TYPE_FIXED64: (0, 2**64 - 1),
    _PB.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
}
_RANGES = _INT32 | _INT64
_WELL_KNOWN: dict[str, Json] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]+(\\.[0-9]+)?s$",
    },
    "google.protobuf.Any": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Value": {},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.DoubleValue": {"type": ["number", "string"]},
    "google.protobuf.FloatValue": {"type": ["number", "string"]},
    "google.protobuf.Int64Value": {"type": "string"},
    "google.protobuf.UInt64Value": {"type": "string"},
    "google.protobuf.Int32Value": {"type": "integer"},
    "google.protobuf.UInt32Value": {"type": "integer"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
}
"""Google's well-known types, each in its own proto3 JSON form."""
_STRING_FORMATS = {
    "uuid": "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
    "tuuid": "^[0-9a-fA-F]{32}$",
    "ulid": "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$",
    "protobuf_fqn": "^[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*$",
    "protobuf_dot_fqn": "^\\.[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*$",
}
"""protovalidate's well-known string formats that are plain patterns."""
_HEADERS = {
    (1, True): "^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$",
    (1, False): "^[^\\u0000\\u000A\\u000D]+$",
    (2, True): "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$",
    (2, False): "^[^\\u0000\\u000A\\u000D]*$",
}
"""`well_known_regex` (header name 1, value 2) by strictness, as in validate.proto."""
_RANGE = {"gt", "gte", "lt", "lte", "const", "in", "not_in"}
"""The number rules JSON Schema says (bounds, const, lists)."""
_PORTABLE = re.compile(
    r"([A-Za-z0-9 ^$.*+?()\[\]{}|\-_,:/@#=!<>']|\\[.\\^$*+?()\[\]{}|/-])*"
)
"""Patterns every JSON Schema validator reads as RE2 does: ASCII, escaped
metacharacters only (\\d or \\w match other scripts' digits and letters in
some regex engines), no flags or groups like (?i) or (?P<name>)."""


def document(
    message: Descriptor, sources: dict[str, descriptor_pb2.FileDescriptorProto]
) -> str:
    """Write the schema of `message` and every message it contains, as JSON."""
    notes: dict[str, str] = {}
    for source in sources.values():
        notes |= comments(source)
    definitions: dict[str, Json] = {}
    root = _object(message, notes, definitions)
    root = {
        "$schema": DRAFT,
        "$id": f"{message.full_name}.schema.json",
        "title": message.full_name,
        "$comment": f"Generated by flower_app.codegen from {message.file.name}. "
        "Do not edit: edit the .proto and regenerate.",
        **root,
    }
    if definitions:
        root["$defs"] = definitions
    return json.dumps(root, indent=2, sort_keys=False) + "\n"


def _object(message: Descriptor, notes: Notes, definitions: Definitions) -> Json:
    properties = {
        field.json_name: _field(field, notes, definitions) for field in message.fields
    }
    unsaid = _message_unsaid(message)
    found: Json = {
        "description": _described(notes.get(message.full_name, ""), unsaid),
        "type": "object",
    }
    found["properties"] = properties
    required = [
        f.json_name
        for f in message.fields
        if field_rules.is_required(f) and not _ignored(f)
    ]
    if required:
        found["required"] = required
    groups = [
        ([f.json_name for f in oneof.fields], _oneof_required(oneof))
        for oneof in message.oneofs
        if not oneof.name.startswith("_")
    ]
    own = field_rules.buf_message_rules(message)
    for rule in getattr(own, "oneof", []):
        names = [message.fields_by_name[name].json_name for name in rule.fields]
        groups.append((names, rule.required))
    exclusive = [names for names, _ in groups if len(names) > 1]
    if exclusive:
        found["not"] = {
            "anyOf": [
                {"required": [a, b]}
                for names in exclusive
                for i, a in enumerate(names)
                for b in names[i + 1 :]
            ]
        }
    needed = [names for names, required in groups if required]
    if needed:
        found["allOf"] = [
            {"anyOf": [{"required": [name]} for name in names]} for names in needed
        ]
    return found


def _oneof_required(oneof: Any) -> bool:
    rules = field_rules.buf_oneof_rules(oneof)
    return bool(rules is not None and rules.required)  # type: ignore[attr-defined]


def _message_unsaid(message: Descriptor) -> list[str]:
    """Name the message's own rules JSON Schema cannot say: its CEL."""
    rules = field_rules.buf_message_rules(message)
    if rules is None:
        return []
    found = [f"message.cel_expression: {e!r}" for e in rules.cel_expression]  # type: ignore[attr-defined]
    found += [f"message.cel: {_one_line(rule)}" for rule in rules.cel]  # type: ignore[attr-defined]
    return found


def _described(text: str, unsaid: list[str]) -> str:
    if not unsaid:
        return text
    said = "Not checked by this schema (protovalidate applies it): " + "; ".join(unsaid)
    return f"{text}\n\n{said}" if text else said


def _ignored(field: FieldDescriptor) -> bool:
    rules = field_rules.buf_rules(field)
    return rules is not None and rules.ignore == 3  # type: ignore[attr-defined]


def _field(field: FieldDescriptor, notes: Notes, definitions: Definitions) -> Json:
    described = {"description": notes.get(field.full_name, "")}
    if _ignored(field):  # no rule applies, its messages' neither
        shape = "object" if field.message_type is not None else None
        if field.is_repeated and not field_rules.is_map(field):
            return described | {"type": "array"}
        return described | ({"type": shape} if shape else {})
    rules = field_rules.rules_of(field)
    unsaid: list[str] = []
    if rules is not None:
        unsaid += _cel_of(rules, "")
    kind = None if rules is None else rules.WhichOneof("type")
    typed = None if kind is None or rules is None else getattr(rules, kind)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields
        entry: Json = {"type": "object"}
        if kind == "map" and typed is not None:
            _sizes(typed, entry, "min_pairs", "max_pairs", "Properties")
            for part in ("keys", "values"):
                if typed.HasField(part):
                    unsaid += _cel_of(getattr(typed, part), f"map.{part}.")
            entry["propertyNames"] = _key(key, _typed(typed, "keys"), unsaid)
            values = _typed(typed, "values")
        else:
            values = None
        entry["additionalProperties"] = _value(
            value, values, definitions, notes, unsaid, "map.values"
        )
        schema = entry
    elif field.is_repeated:
        array: Json = {"type": "array"}
        items = None
        if kind == "repeated" and typed is not None:
            _sizes(typed, array, "min_items", "max_items", "Items")
            if typed.unique and field.type in _FLOATS:  # NaN is unique, "NaN" is not
                unsaid.append("repeated.unique: true")
            elif typed.unique:
                array["uniqueItems"] = True
            items = _typed(typed, "items")
            if typed.HasField("items"):
                unsaid += _cel_of(typed.items, "repeated.items.")
        array["items"] = _value(
            field, items, definitions, notes, unsaid, "repeated.items"
        )
        schema = array
    else:
        schema = _value(field, typed, definitions, notes, unsaid, "")
    return {"description": _described(notes.get(field.full_name, ""), unsaid)} | schema


def _cel_of(rules: Message, prefix: str) -> list[str]:
    """Name the CEL rules of a FieldRules (a field's, its items', keys' or values')."""
    found = [f"{prefix}cel_expression: {e!r}" for e in rules.cel_expression]  # type: ignore[attr-defined]
    found += [f"{prefix}cel: {_one_line(rule)}" for rule in rules.cel]  # type: ignore[attr-defined]
    return found


def _typed(holder: Message, name: str) -> Message | None:
    """Return the type rules inside a container's `items`, `keys` or `values`."""
    if not holder.HasField(name):
        return None
    inner = getattr(holder, name)
    chosen = inner.WhichOneof("type")
    return None if chosen is None else getattr(inner, chosen)


def _sizes(typed: Message, schema: Json, low: str, high: str, keyword: str) -> None:
    if typed.HasField(low):
        schema[f"min{keyword}"] = getattr(typed, low)
    if typed.HasField(high):
        schema[f"max{keyword}"] = getattr(typed, high)


def _key(field: FieldDescriptor, typed: Message | None, unsaid: list[str]) -> Json:
    """Describe a map's keys: JSON writes every key as a string ("true", "-3")."""
    if field.type == _PB.TYPE_STRING:
        return _string(typed, unsaid, "map.keys.")
    if field.type == _PB.TYPE_BOOL:
        if typed is not None and typed.HasField("const"):
            return {"const": "true" if typed.const else "false"}  # type: ignore[attr-defined]
        return {"enum": ["true", "false"]}
    return _integer_text(field, typed, unsaid, "map.keys.")


def _value(
    field: FieldDescriptor,
    typed: Message | None,
    definitions: Definitions,
    notes: Notes,
    unsaid: list[str],
    where: str,
) -> Json:
    """Describe one value of the field (an element, a key, a value), with rules."""
    prefix = f"{where}." if where else ""
    if field.message_type is not None:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            found = dict(_WELL_KNOWN[name])
            if typed is not None and name == "google.protobuf.Any":
                urls = {"in": "enum", "not_in": "not"}
                for rule, keyword in urls.items():
                    listed = list(getattr(typed, rule))
                    if listed:
                        url: Json = {"enum": listed}
                        found["properties"] = {
                            "@type": url if keyword == "enum" else {"not": url}
                        }
                        if keyword == "enum" and "" not in listed:
                            found["required"] = ["@type"]  # {}: an empty type URL
            elif typed is not None:
                unsaid += _all(typed, prefix)
            return found
        if name not in definitions:
            definitions[name] = {}  # placeholder: a message may contain itself
            definitions[name] = _object(field.message_type, notes, definitions)
        if typed is not None:
            unsaid += _all(typed, prefix)
        return {"$ref": f"#/$defs/{name}"}
    if field.enum_type is not None:
        return _enum(field, typed, unsaid, prefix)
    if field.type == _PB.TYPE_BOOL:
        found = {"type": "boolean"}
        if typed is not None and typed.HasField("const"):
            found["const"] = typed.const  # type: ignore[attr-defined]
        return found
    if field.type == _PB.TYPE_STRING:
        return _string(typed, unsaid, prefix)
    if field.type == _PB.TYPE_BYTES:
        return _bytes(typed, unsaid, prefix)
    if field.type in _INT64:
        return _integer_text(field, typed, unsaid, prefix)
    return _number(field, typed, unsaid, prefix)


def _all(typed: Message, prefix: str) -> list[str]:
    """Every rule of `typed`, as what this schema does not say."""
    return _unsaid_of(typed, set(), prefix)


def _unsaid_of(typed: Message, handled: set[str], prefix: str) -> list[str]:
    """Name the rules of `typed` beyond `handled`, as "string.len_bytes: 4"."""
    kind = typed.DESCRIPTOR.name.removesuffix("Rules").lower()
    return [
        f"{prefix}{kind}.{_one_line_field(typed, described)}"
        for described, _ in typed.ListFields()
        if described.name not in handled | {"example"}
    ]


def _one_line(message: Message) -> str:
    return text_format.MessageToString(message, as_one_line=True)


def _one_line_field(typed: Message, described: Any) -> str:
    return _one_line(_only(typed, described))


def _only(typed: Message, described: Any) -> Message:
    """`typed` with only the field `described` set."""
    only = type(typed)()
    only.MergeFrom(typed)
    for other, _ in typed.ListFields():
        if other is not described:
            only.ClearField(other.name)
    return only


def _number(
    field: FieldDescriptor, typed: Message | None, unsaid: list[str], prefix: str
) -> Json:
    integer = field.type in _INT32
    number: Json = {"type": "integer" if integer else "number"}
    if integer:
        number["minimum"], number["maximum"] = _INT32[field.type]
    if typed is None:
        return _with_strings(field, number, allowed=("NaN", "Infinity", "-Infinity"))
    bounds = _bounds_of(typed)
    if field_rules.exclusive_range(typed):
        number["anyOf"] = _outside(bounds)
    else:
        _bounds(bounds, number)
    if typed.HasField("const"):
        number["const"] = typed.const  # type: ignore[attr-defined]
    listed = list(typed.__getattribute__("in"))
    if listed:
        number["enum"] = listed
    refused = list(typed.not_in)  # type: ignore[attr-defined]
    if refused:
        number["not"] = {"enum": refused}
    unsaid += _unsaid_of(typed, {*_RANGE, "finite"}, prefix)
    finite = bool(getattr(typed, "finite", False))
    if finite or listed or typed.HasField("const"):
        allowed: tuple[str, ...] = ()
    elif field_rules.exclusive_range(typed):  # outside [lower, upper]
        allowed = ("Infinity", "-Infinity")
    else:
        allowed = (
            *(("Infinity",) if not {"lt", "lte"} & set(bounds) else ()),
            *(("-Infinity",) if not {"gt", "gte"} & set(bounds) else ()),
            *(("NaN",) if not bounds else ()),
        )
    return _with_strings(field, number, allowed)


def _bounds_of(typed: Message) -> dict[str, Any]:
    """Return the bounds a type's rules set, by name."""
    return {b: getattr(typed, b) for b in field_rules.BOUNDS if typed.HasField(b)}


def _with_strings(
    field: FieldDescriptor, number: Json, allowed: tuple[str, ...]
) -> Json:
    """Admit the strings proto3 JSON writes a float's NaN and infinities as."""
    if field.type not in _FLOATS or not allowed:
        return number
    return {"anyOf": [number, {"enum": list(allowed)}]}


def _bounds(bounds: dict[str, Any], schema: Json) -> None:
    keywords = {
        "gte": "minimum",
        "gt": "exclusiveMinimum",
        "lte": "maximum",
        "lt": "exclusiveMaximum",
    }
    for name, value in bounds.items():
        keyword = keywords[name]
        current = schema.get(keyword)
        tighter = max if keyword.endswith("inimum") else min
        schema[keyword] = value if current is None else tighter(current, value)


def _outside(bounds: dict[str, Any]) -> list[Json]:
    """Protovalidate's exclusive range: above the lower bound or below the upper."""
    low = next(b for b in ("gt", "gte") if b in bounds)
    high = next(b for b in ("lt", "lte") if b in bounds)
    above: Json = {}
    below: Json = {}
    _bounds({low: bounds[low]}, above)
    _bounds({high: bounds[high]}, below)
    return [above, below]


def _clamped(field: FieldDescriptor, bounds: dict[str, Any]) -> tuple[int, int]:
    """Return the closed integer range the bounds leave of the field's type."""
    low, high = _RANGES[field.type]
    if "gte" in bounds:
        low = max(low, math.ceil(bounds["gte"]))
    if "gt" in bounds:
        low = max(low, math.floor(bounds["gt"]) + 1)
    if "lte" in bounds:
        high = min(high, math.floor(bounds["lte"]))
    if "lt" in bounds:
        high = min(high, math.ceil(bounds["lt"]) - 1)
    return low, high


def _integer_text(
    field: FieldDescriptor, typed: Message | None, unsaid: list[str], prefix: str
) -> Json:
    """Describe an integer written as a decimal string, its bounds a pattern.

    (proto3 JSON writes 64-bit integers so, and every map key.)
    """
    found: Json = {"type": "string", "pattern": "^-?[0-9]+$"}
    if typed is None:
        return found
    bounds = _bounds_of(typed)
    if field_rules.exclusive_range(typed):
        type_low, type_high = _RANGES[field.type]
        lower_name = next(b for b in ("gt", "gte") if b in bounds)
        upper_name = next(b for b in ("lt", "lte") if b in bounds)
        upper = _clamped(field, {upper_name: bounds[upper_name]})[1]
        lower = _clamped(field, {lower_name: bounds[lower_name]})[0]
        pieces = []
        if type_low <= upper:
            pieces.append(integer_pattern(type_low, upper))
        if lower <= type_high:
            pieces.append(integer_pattern(lower, type_high))
        found["pattern"] = "|".join(pieces)
    elif bounds:
        found["pattern"] = integer_pattern(*_clamped(field, bounds))
    if typed.HasField("const"):
        found["const"] = str(typed.const)  # type: ignore[attr-defined]
    listed = [str(v) for v in typed.__getattribute__("in")]
    if listed:
        found["enum"] = listed
    refused = [str(v) for v in typed.not_in]  # type: ignore[attr-defined]
    if refused:
        found["not"] = {"enum": refused}
    unsaid += _unsaid_of(typed, _RANGE, prefix)
    return found


def _literal(text: str) -> str:
    """Escape a string as an ECMA-262 pattern that matches it literally."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", text)


def _string(typed: Message | None, unsaid: list[str], prefix: str) -> Json:
    found: Json = {"type": "string"}
    if typed is None:
        return found
    patterns: list[str] = []
    for described, value in typed.ListFields():
        name = described.name
        if name == "const":
            found["const"] = value
        elif name == "len":
            found["minLength"] = found["maxLength"] = value
        elif name == "min_len":
            found["minLength"] = value
        elif name == "max_len":
            found["maxLength"] = value
        elif name == "pattern" and _PORTABLE.fullmatch(value) and "(?" not in value:
            patterns.append(value)
        elif name == "prefix":
            patterns.append(f"^{_literal(value)}")
        elif name == "suffix":
            patterns.append(f"{_literal(value)}$")
        elif name == "contains":
            patterns.append(_literal(value))
        elif name == "not_contains":
            found["not"] = {"pattern": _literal(value)}
        elif name == "in":
            found["enum"] = list(value)
        elif name == "not_in":
            found["not"] = {"enum": list(value)}
        elif name in _STRING_FORMATS and value:
            patterns.append(_STRING_FORMATS[name])
        elif name == "well_known_regex" and value in (1, 2):
            strict = not typed.HasField("strict") or typed.strict  # type: ignore[attr-defined]
            patterns.append(_HEADERS[(value, strict)])
        elif name not in ("example", "strict"):
            unsaid += _unsaid_of(_only(typed, described), set(), prefix)
    if len(patterns) == 1:
        found["pattern"] = patterns[0]
    elif patterns:
        found["allOf"] = [{"pattern": pattern} for pattern in patterns]
    return found


def _bytes(typed: Message | None, unsaid: list[str], prefix: str) -> Json:
    """Bytes: base64 in proto3 JSON; their const and lists in canonical base64."""
    found: Json = {"type": "string", "contentEncoding": "base64"}
    if typed is None:
        return found
    for described, value in typed.ListFields():
        name = described.name
        if name == "const":
            found["const"] = base64.b64encode(value).decode()
        elif name == "in":
            found["enum"] = [base64.b64encode(v).decode() for v in value]
        elif name == "not_in":
            found["not"] = {"enum": [base64.b64encode(v).decode() for v in value]}
        elif name != "example":
            unsaid += _unsaid_of(_only(typed, described), set(), prefix)
    return found


def _enum(
    field: FieldDescriptor, typed: Message | None, unsaid: list[str], prefix: str
) -> Json:
    """Describe an enum: a value's name, or a number proto3 JSON has no name for."""
    enum = field.enum_type
    assert enum is not None
    names = [value.name for value in enum.values]

    def named(numbers: list[int]) -> list[str | int]:
        return [
            enum.values_by_number[n].name if n in enum.values_by_number else n
            for n in numbers
        ]

    if typed is None:
        return {"anyOf": [{"enum": names}, {"type": "integer"}]}
    found: Json = (
        {"enum": names}
        if typed.defined_only  # type: ignore[attr-defined]
        else {"anyOf": [{"enum": names}, {"type": "integer"}]}
    )
    if typed.HasField("const"):
        found = {"const": named([typed.const])[0]}  # type: ignore[attr-defined]
    listed = list(typed.__getattribute__("in"))
    if listed:
        found = {"enum": named(listed)}
    refused = list(typed.not_in)  # type: ignore[attr-defined]
    if refused:
        found["not"] = {"enum": named(refused)}
    unsaid += _unsaid_of(typed, {"const", "defined_only", "in", "not_in"}, prefix)
    return found
