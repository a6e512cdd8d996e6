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

import numpy as np
from google.protobuf.message import Message

from flower_app.outcomes.model import Messages, StageOutcomes
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


Clients = Sequence[Message] | Messages
"""A round's messages: a list, or the round's kept `Messages` (read once)."""


@dataclass(frozen=True)
class Columns:
    """A round's number fields over its clients, each message read once."""

    nodes: np.ndarray
    """The nodes, in the order the round kept them (uint64)."""
    numbers: dict[str, tuple[np.ndarray, np.ndarray]]
    """field -> (its values as `values` reads them, whether each node sent it)."""
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    """repeated number field -> (every node's elements one after the other,
    each node's first index and the end: len(nodes) + 1 offsets)."""


def columns(messages: Messages) -> Columns:
    """Read a round's number fields once; kept with the round until it changes."""
    return messages.memo(_columns)


def _columns(messages: Messages) -> Columns:
    nodes, parsed = [], []
    for node, meta in messages.items():
        nodes.append(node)
        parsed.append(meta)
    kind = parsed[0].DESCRIPTOR if parsed else None
    numbers = {}
    series = {}
    for found in numeric_fields(kind):
        sent = [value(meta, found) for meta in parsed]
        numbers[found.name] = (
            np.array([0.0 if v is None else v for v in sent], dtype=np.float64),
            np.array([v is not None for v in sent], dtype=bool),
        )
        if found.is_repeated:
            lists = [getattr(meta, found.name) for meta in parsed]
            ends = np.cumsum([0, *(len(items) for items in lists)], dtype=np.int64)
            flat = np.fromiter(
                (float(v) for items in lists for v in items),
                dtype=np.float64,
                count=int(ends[-1]),
            )
            series[found.name] = (flat, ends)
    return Columns(np.array(nodes, dtype=np.uint64), numbers, series)


def numbers_of(
    messages: Messages, found: FieldDescriptor
) -> tuple[np.ndarray, np.ndarray]:
    """Give the nodes that sent a field in one round, and their values, as arrays."""
    table = columns(messages)
    if found.name not in table.numbers:
        return np.array([], dtype=np.uint64), np.array([], dtype=np.float64)
    numbers, sent = table.numbers[found.name]
    return table.nodes[sent], numbers[sent]


def by_node(messages: Messages, found: FieldDescriptor) -> dict[int, float]:
    """Each node's value of a field in one round (a series: its last element)."""
    table = columns(messages)
    if found.name not in table.numbers:
        return {}
    numbers, sent = table.numbers[found.name]
    return {
        int(node): float(number)
        for node, number, was in zip(table.nodes, numbers, sent, strict=True)
        if was
    }


def longest(table: Columns, found: FieldDescriptor) -> int:
    """Return the most elements any node sent of a repeated number field."""
    if found.name not in table.series:
        return 0
    _, ends = table.series[found.name]
    return int(np.diff(ends).max(initial=0))


def values(messages: Clients, found: FieldDescriptor) -> list[float]:
    """Collect the field's present values; a series gives its last element."""
    if isinstance(messages, Messages):
        if not messages:
            return []
        numbers, sent = columns(messages).numbers[found.name]
        return numbers[sent].tolist()  # type: ignore[no-any-return]
    return [v for m in messages if (v := value(m, found)) is not None]


def value(message: Message, found: FieldDescriptor) -> float | None:
    """Return the field's value as `values` reads it, None if absent."""
    name = found.name
    if found.is_repeated:
        items = getattr(message, name)
        return float(items[-1]) if len(items) else None
    if found.has_presence and not message.HasField(name):
        return None
    return float(getattr(message, name))


def statistic(messages: Clients, found: FieldDescriptor) -> float | None:
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


def spread(messages: Clients, found: FieldDescriptor) -> dict[str, float]:
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


def summary(messages: Clients, found: FieldDescriptor) -> str | None:
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
        if numeric and outcomes.accepted:  # a round's values at once
            table = columns(outcomes.accepted)
            if found.is_repeated:  # every element counts
                flat, ends = table.series[found.name]
                seen.update(np.unique(flat).tolist())
                missing |= bool((np.diff(ends) == 0).any())
            else:
                numbers, sent = table.numbers[found.name]
                seen.update(np.unique(numbers[sent]).tolist())
                missing |= not bool(sent.all())
        for meta in [] if numeric else outcomes.accepted.values():
            text = value_text(meta, found)
            seen.update([] if text is None else [text])
            missing |= text is None
            if len(seen) + missing > 1:
                return None
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
