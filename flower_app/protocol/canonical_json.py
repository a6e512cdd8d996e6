"""Canonical JSON (RFC 8785) of a message's proto3 JSON mapping.

Every language prints the same bytes for the same message: keys sorted by
UTF-16 code units, no whitespace, numbers as ECMAScript prints them.
"""

import math
from decimal import Decimal
from json.encoder import encode_basestring

from google.protobuf import json_format
from google.protobuf.message import Message

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def to_canonical_json(message: Message) -> str:
    """Print `message` as RFC 8785 canonical proto3 JSON.

    An Any inside is printed with the message's own descriptor pool, so a
    record read with a log's own schema prints the app's types it holds.
    """
    pool = message.DESCRIPTOR.file.pool
    return dumps(json_format.MessageToDict(message, descriptor_pool=pool))  # type: ignore[arg-type]


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
