"""Canonical JSON (RFC 8785) of a message's proto3 JSON mapping.

Every language prints the same bytes for the same message: keys sorted by
UTF-16 code units, no whitespace, numbers as ECMAScript prints them.
"""

import base64
import functools
import math
import time
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from flower_app.protocol import schema

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def to_canonical_json(message: Message) -> str:
    """Print `message` as RFC 8785 canonical proto3 JSON.

    Messages are written straight from their fields (`_writer`, a few
    microseconds); one holding an Any, a float or another value the writer
    leaves alone goes through protobuf's own `json_format`, which the fast
    path matches byte for byte (`tests/test_canonical_json.py` checks the
    two against each other). An Any inside is printed with the message's own descriptor
    pool, so a record read with a log's own schema prints the app's types.
    """
    try:
        return _writer(message.DESCRIPTOR)(message)
    except _Unsupported:
        return slow_canonical_json(message)


def slow_canonical_json(message: Message) -> str:
    """`to_canonical_json` through protobuf's own proto3 JSON mapping."""
    pool = message.DESCRIPTOR.file.pool
    return dumps(json_format.MessageToDict(message, descriptor_pool=pool))  # type: ignore[arg-type]


class _Unsupported(Exception):
    """A value the fast writer leaves to `json_format`."""


Write = Callable[[Any], str]
_WRITERS: dict[object, Write] = {}
_LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z, the latest a Timestamp may say."""


def _writer(descriptor: Any) -> Write:
    """Return a message type's JSON writer, compiled on first use.

    Left to `json_format`, by raising `_Unsupported` when such a value is
    set: an Any and the other well-known types with a JSON form of their
    own (but Timestamp and Duration), a float field (json_format rounds it
    to its shortest float), an extension.
    """
    write = _WRITERS.get(descriptor)
    if write is None:
        write = _WRITERS.setdefault(descriptor, _compile(descriptor))
    return write


def _timestamp(stamp: Any) -> str:
    """Write a Timestamp as `Timestamp.ToJsonString` does: 0, 3, 6 or 9 digits."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (0 <= seconds <= _LAST_SECOND and 0 <= nanos < 1_000_000_000):
        raise _Unsupported  # before 1970 or out of range: json_format says
    text = _utc_seconds(seconds)
    if nanos == 0:
        return f'"{text}Z"'
    if nanos % 1_000_000 == 0:
        return f'"{text}.{nanos // 1_000_000:03d}Z"'
    if nanos % 1_000 == 0:
        return f'"{text}.{nanos // 1_000:06d}Z"'
    return f'"{text}.{nanos:09d}Z"'


@functools.lru_cache(maxsize=256)
def _utc_seconds(seconds: int) -> str:
    """Print a whole second as UTC date and time; a log's records share few."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _unsupported(_: object) -> str:
    raise _Unsupported


def _compile(descriptor: Any) -> Write:
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp
    if descriptor.full_name == "google.protobuf.Duration":
        return lambda m: encode_basestring(m.ToJsonString())
    if descriptor.full_name.startswith("google.protobuf."):
        return _unsupported
    if descriptor.is_extendable:
        return _unsupported  # extensions are json_format's to name
    shared = [oneof for oneof in descriptor.oneofs if len(oneof.fields) > 1]
    oneofs = [oneof.name for oneof in shared]  # a lone member: a presence like any
    ranked = sorted(descriptor.fields, key=lambda f: f.json_name.encode("utf-16-be"))
    plans: dict[_Chosen, list[_Step]] = {}

    def plan(chosen: _Chosen) -> list[_Step]:
        """List the fields to read, in key order, when `chosen` members are set."""
        members = {chosen} if isinstance(chosen, str) else set(chosen or ())
        steps = [
            _step(field, field.containing_oneof in shared)
            for field in ranked
            if field.containing_oneof not in shared or field.name in members
        ]
        return plans.setdefault(chosen, steps)

    def write(message: Any) -> str:
        chosen: _Chosen = None  # no oneof of two or more members
        if len(oneofs) == 1:  # the common case: one call
            chosen = message.WhichOneof(oneofs[0])
        elif oneofs:
            chosen = tuple(message.WhichOneof(oneof) for oneof in oneofs)
        parts = []
        steps = plans.get(chosen)
        for name, attribute, presence, value_json in (
            plan(chosen) if steps is None else steps
        ):
            if presence is _HAS:
                if not message.HasField(attribute):
                    continue
                value = getattr(message, attribute)
            else:
                value = getattr(message, attribute)
                # implicit presence: set unless it holds the default (and
                # -0.0 is not the default)
                if (
                    not value
                    and presence is not _SET
                    and (presence is _IMPLICIT or math.copysign(1, value) > 0)
                ):
                    continue
            parts.append(name + value_json(value))
        return "{" + ",".join(parts) + "}"

    return write


_Chosen = str | None | tuple[str | None, ...]
"""The set members of a message's oneofs: one's name (or None), or a tuple."""
_Step = tuple[str, str, str, Write]
"""A field's key and colon, its attribute, how its presence is read, its writer."""
_SET = "set"
"""A chosen oneof member: present, whatever its value."""
_HAS = "has"
"""A field with explicit presence: `HasField` tells."""
_IMPLICIT = "implicit"
"""A proto3 field without presence: present unless it holds the default."""
_IMPLICIT_FLOAT = "implicit float"
"""As `_IMPLICIT`, for a number whose -0.0 is not the default."""


def _step(field: Any, chosen: bool) -> _Step:
    if chosen:
        presence = _SET
    elif field.has_presence:
        presence = _HAS
    elif schema.is_floating(field) and not field.is_repeated:
        presence = _IMPLICIT_FLOAT
    else:
        presence = _IMPLICIT
    return encode_basestring(field.json_name) + ":", field.name, presence, _field(field)


def _field(field: Any) -> Write:
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        key_field, value_field = message_type.fields_by_name.values()
        key, value = _map_key(key_field), _scalar(value_field)
        return lambda entries: (
            "{"
            + ",".join(
                f"{encode_basestring(k)}:{value(v)}"
                for k, v in sorted(
                    ((key(k), v) for k, v in entries.items()),
                    key=lambda item: item[0].encode("utf-16-be"),
                )
            )
            + "}"
        )
    one = _scalar(field)
    if not field.is_repeated:
        return one
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return _doubles
    return lambda values: "[" + ",".join(map(one, values)) + "]"


def _doubles(values: Any) -> str:
    """Write a repeated double: one `orjson` call, each ".0" dropped."""
    text = orjson.dumps(values[:]).decode()
    if "e" in text or "n" in text or "-0.0," in text or "-0.0]" in text:
        # an exponent, NaN or an infinity (null), or -0.0
        return "[" + ",".join(map(number_json, values)) + "]"
    return text.replace(".0,", ",").replace(".0]", "]")


def _map_key(field: Any) -> Write:
    """Name a map key as proto3 JSON does, before quoting: "true", "7", the text."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return lambda k: "true" if k else "false"
    return str


def _scalar(field: Any) -> Write:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return _writer(field.message_type)  # plans are built late: types may recurse
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return number_json
    if kind in schema.INT32_RANGES:
        return str  # exactly a double: ECMAScript prints its digits
    if kind in schema.INT64_RANGES:
        return '"{}"'.format  # a string: past 2^53 a double would round it
    if kind == FieldDescriptor.TYPE_BOOL:
        return ("false", "true").__getitem__
    if kind == FieldDescriptor.TYPE_STRING:
        return encode_basestring
    if kind == FieldDescriptor.TYPE_BYTES:
        return lambda v: '"' + base64.b64encode(v).decode() + '"'
    if kind == FieldDescriptor.TYPE_ENUM:
        names = {v.number: encode_basestring(v.name) for v in field.enum_type.values}
        return lambda v: names.get(v) or format_number(float(v))
    return _unsupported  # float, group


def number_json(number: float) -> str:
    """Write a double as proto3 JSON does: NaN and infinities as strings.

    `orjson` prints the shortest digits that read back as `number`, as
    `repr` does (several times faster); where it prints them positionally
    (1e-5 <= |number| < 1e16, or 0), that is how ECMAScript prints them too.
    """
    text = orjson.dumps(number).decode()
    if "e" not in text and "n" not in text and text != "-0.0":
        return text[:-2] if text.endswith(".0") else text
    if math.isfinite(number):
        return format_number(number)
    return f'"{number_text(number)}"'  # orjson prints them as null


def dumps(value: JsonValue) -> str:
    """Serialize a JSON value canonically (RFC 8785)."""
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None or isinstance(value, bool):
        return _LITERALS[value]
    if isinstance(value, int | float):
        return format_number(float(value))
    if isinstance(value, list):
        return "[" + ",".join(map(dumps, value)) + "]"
    items = sorted(value.items(), key=_utf16_key)
    return "{" + ",".join(f"{encode_basestring(k)}:{dumps(v)}" for k, v in items) + "}"


_LITERALS = {None: "null", True: "true", False: "false"}


def _utf16_key(item: tuple[str, JsonValue]) -> bytes:
    """Sort key of a JSON member: its name's UTF-16 code units (RFC 8785)."""
    return item[0].encode("utf-16-be")


def number_text(number: float) -> str:
    """Print any double as ECMAScript's String(number) does, NaN and infinities too.

    Every reader prints numbers in refusals this way, so their texts agree.
    """
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return format_number(number)


def format_number(number: float) -> str:
    """Format a finite double as ECMAScript's Number.prototype.toString does."""
    if not math.isfinite(number):
        raise ValueError(f"JSON has no {number}")
    if number == 0:
        return "0"
    if 1e-4 <= abs(number) < 1e16:  # repr is positional here, as ECMAScript's
        text = repr(number)
        return text[:-2] if text.endswith(".0") else text
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # value = 0.digits * 10**point
    # Here 1e16 <= |number|, so all of its at most 17 digits stand before
    # the point; or |number| < 1e-4, and none do.
    if len(digits) <= point <= 21:
        text = digits + "0" * (point - len(digits))
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{point - 1:+d}"
    return sign + text
