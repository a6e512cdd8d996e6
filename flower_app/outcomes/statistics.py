"""A field over clients: which fields are numbers, their values, their statistics.

Numbers (and booleans, and number series) are summed up: a round's median
(a boolean: the share true; a series: of each client's last element) for
the tables, the round log's min | median | max, the trackers' summaries.
Any other field (text, enums, bytes, lists, maps, messages) is shown by its
values (`value_text`). A field with one value everywhere is said once
(`same`).
"""

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from flower_app.outcomes.model import StageOutcomes
from flower_app.protocol import display, schema
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_app.protocol.text import printable

VALUE_LIMIT = 80
"""Characters of a value shown in a table cell or heading."""
VALUES_SHOWN = 8
"""Values of a field shown one by one; the rest are counted together."""


def numeric_fields(message_type: Descriptor | None) -> list[FieldDescriptor]:
    """List the fields summed up as numbers: numbers, booleans, number series."""
    if message_type is None:
        return []
    return [
        found
        for found in message_type.fields
        if schema.is_number(found) or (schema.is_bool(found) and not found.is_repeated)
    ]


def other_fields(message_type: Descriptor | None) -> list[FieldDescriptor]:
    """List the fields shown by value, not as numbers: text, enums, bytes, the rest."""
    if message_type is None:
        return []
    shown = set(numeric_fields(message_type))
    return [found for found in message_type.fields if found not in shown]


def values(messages: Sequence[Message], found: FieldDescriptor) -> list[float]:
    """Collect the field's present values; a series gives its last element."""
    name = found.name
    if found.is_repeated:
        return [float(v[-1]) for m in messages if len(v := getattr(m, name))]
    if found.has_presence:
        return [float(getattr(m, name)) for m in messages if m.HasField(name)]
    return [float(getattr(m, name)) for m in messages]


def value(message: Message, found: FieldDescriptor) -> float | None:
    """Return the field's value as `values` reads it, None if absent."""
    present = values([message], found)
    return present[0] if present else None


def statistic(messages: Sequence[Message], found: FieldDescriptor) -> float | None:
    """One field over one round's clients: the median, for a boolean the share true.

    A series counts with each client's last element; None when no client
    sent the field.
    """
    present = values(messages, found)
    if not present:
        return None
    if schema.is_bool(found):
        return present.count(1.0) / len(present)
    return float(statistics.median(present))


def spread(messages: Sequence[Message], found: FieldDescriptor) -> dict[str, float]:
    """Give a number field's min, median and max, a boolean's share true; {}: unsent."""
    present = values(messages, found)
    if not present:
        return {}
    if schema.is_bool(found):
        return {"share_true": present.count(1.0) / len(present)}
    return {
        "min": min(present),
        "median": statistics.median(present),
        "max": max(present),
    }


def summary(messages: Sequence[Message], found: FieldDescriptor) -> str | None:
    """One field summed up over clients in words; None for a field not a number.

    Numbers: min, median and max; booleans: how many are true; series
    (repeated numbers): the same of each client's last element.
    """
    is_flag = schema.is_bool(found) and not found.is_repeated
    if not (is_flag or schema.is_number(found)):
        return None
    present = values(messages, found)
    if is_flag:
        absent = len(messages) - len(present)
        text = f"{sum(present):g}/{len(present)} true"
        return text + (f" ({absent} not reported)" if absent else "")
    if not present:
        return "none reported"
    found_spread = spread(messages, found)
    text = " | ".join(f"{k} {v:.4g}" for k, v in found_spread.items())
    if found.is_repeated:
        return f"last {schema.field_spec(found).series or 'element'}: {text}"
    return text


def value_text(message: Message, found: FieldDescriptor) -> str | None:
    """One client's value of a field as short text; None when it sent none.

    Text as it is (escaped), an enum by its name, bytes as hex, a list, a
    map or a message as JSON. A field without presence at its default (an
    empty text, list or map, enum 0) was not sent: proto3 cannot tell.
    """
    raw = getattr(message, found.name)
    if found.is_repeated or not found.has_presence:
        if not raw:
            return None
    elif not message.HasField(found.name):
        return None
    if isinstance(raw, bytes):
        text = raw.hex()
        return f"0x{text[:32]}…" if len(text) > 32 else f"0x{text}"
    shown = display.shown(message)[found.name]
    if not isinstance(shown, str):
        shown = json.dumps(shown, ensure_ascii=False, separators=(", ", ": "))
    return printable(str(shown), VALUE_LIMIT)


@dataclass(frozen=True)
class Same:
    """A field with one value everywhere, so it is said once, not drawn or tabled.

    `value`: what every client sent in every round, a number (a series:
    its every element) or, for any other field, its text (`value_text`);
    None when no client sent the field at all.
    """

    value: float | str | None


def same(stage: StageOutcomes, found: FieldDescriptor) -> Same | None:
    """Return how a field is the same for every client in every round, if it is.

    None when it varies: two values, or a value some clients sent and
    others did not.
    """
    seen: set[float | str] = set()
    missing = False
    numeric = found in numeric_fields(stage.message_type)
    for outcomes in stage.by_round.values():
        for meta in outcomes.accepted.values():
            found_values: list[float | str]
            if not numeric:
                text = value_text(meta, found)
                found_values = [] if text is None else [text]
            elif found.is_repeated:
                found_values = list(map(float, getattr(meta, found.name)))
            else:
                found_values = list(values([meta], found))
            seen.update(found_values)
            missing |= not found_values
            if len(seen) + missing > 1:
                return None
    return Same(next(iter(seen)) if seen else None)


def same_text(found: FieldDescriptor, one: float | str) -> str:
    """Say a field's one value in words, with its unit."""
    if isinstance(one, str):
        return f'"{one}"' if found.type == found.TYPE_STRING else one
    if schema.is_bool(found):
        return "true" if one else "false"
    unit = f" {schema.unit(found)}" if schema.unit(found) else ""
    return f"{one:.6g}{unit}"
