"""Canonical JSON (RFC 8785) of a message's proto3 JSON mapping.

Every language prints the same bytes for the same message: keys sorted by
UTF-16 code units, no whitespace, numbers as ECMAScript prints them.
"""

import json
import math
from decimal import Decimal

from google.protobuf import json_format
from google.protobuf.message import Message

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def to_canonical_json(message: Message) -> str:
    """Print `message` as RFC 8785 canonical proto3 JSON."""
    return dumps(json_format.MessageToDict(message))


def dumps(value: JsonValue) -> str:
    """Serialize a JSON value canonically (RFC 8785)."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return format_number(float(value))
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
    return "{" + ",".join(f"{dumps(key)}:{dumps(value[key])}" for key in keys) + "}"


def format_number(number: float) -> str:
    """Format a finite double as ECMAScript's Number.prototype.toString does."""
    if not math.isfinite(number):
        raise ValueError(f"JSON has no {number}")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # value = 0.digits * 10**point
    if len(digits) <= point <= 21:
        text = digits + "0" * (point - len(digits))
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{point - 1:+d}"
    return sign + text
