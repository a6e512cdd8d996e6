"""A run's summary tables: one per stage, one row a round, a column a field.

Every number field of the stage's message gets a column, named with its
unit and what the cell shows: numbers their median over the round's
clients (as the round log and the trackers show them), series the median of
each client's last element, booleans the share that is true. Every other
field (text, enums, bytes, lists, maps, messages) gets a table of its own
when its value varies: per round, how many clients sent each value. A field
with one value everywhere is said once (`same`, `constants_table`). The
server's own evaluation gets a table of its own, so a centralized number is
never taken for a federated one.
The tables are plain data (`Table`); `as_rich` and the HTML page render them.
"""

import io
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table as RichTable

from flower_app.protocol import display, schema
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_app.protocol.text import printable
from flower_app.reporting.clients import labels
from flower_app.reporting.run_records import RunRecords, Stage


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; the first column is the row's label."""

    title: str
    columns: list[str]
    rows: list[list[str]]


def tables(records: RunRecords) -> list[Table]:
    """One table per stage and per varying other field; centralized; egress."""
    found = []
    for stage in records.stages.values():
        found.append(_stage_table(stage))
        found += [
            _values_table(stage, field)
            for field in other_fields(stage.message_type)
            if same(stage, field) is None
        ]
    if records.centralized:
        found.append(_centralized_table(records.centralized))
    label = labels(records.nodes())
    found += [_egress_table(s, label) for s in records.stages.values() if s.egress]
    return found


def as_rich(table: Table) -> RichTable:
    """Lay the table out for a terminal, numbers right-aligned."""
    shown = RichTable(title=table.title, min_width=len(table.title))
    for index, column in enumerate(table.columns):
        shown.add_column(
            column, justify="left" if index and not _numeric(table, index) else "right"
        )
    for row in table.rows:
        shown.add_row(*row)
    return shown


def in_terminal(records: RunRecords) -> list[Table]:
    """List the tables, and the fields with one value everywhere as a table too."""
    found = tables(records)
    if (constant := constants_table(records)) is not None:
        found.append(constant)
    return found


def as_text(records: RunRecords) -> str:
    """Render the tables as plain text, for the log."""
    console = Console(width=160, record=True, file=io.StringIO())
    for table in in_terminal(records):
        console.print(as_rich(table))
    return console.export_text().rstrip()


def _numeric(table: Table, index: int) -> bool:
    return all(is_number(row[index]) for row in table.rows)


def is_number(text: str) -> bool:
    """Say whether a cell shows a number (a share true, or "-" for none, too)."""
    try:
        float(text.removesuffix("% true"))
    except ValueError:
        return text == "-"
    return True


def numeric_fields(message_type: Descriptor | None) -> list[FieldDescriptor]:
    """List the fields a table or plot shows: numbers, booleans, number series."""
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


VALUE_LIMIT = 80
"""Characters of a value shown in a table cell or heading."""
VALUES_SHOWN = 8
"""Values of a field with a column of their own; the rest are counted together."""


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
    value = display.shown(message)[found.name]
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return printable(str(value), VALUE_LIMIT)


@dataclass(frozen=True)
class Same:
    """A field with one value everywhere, so it is said once, not drawn or tabled.

    `value`: what every client sent in every round, a number (a series:
    its every element) or, for any other field, its text (`value_text`);
    None when no client sent the field at all.
    """

    value: float | str | None


def same(stage: Stage, found: FieldDescriptor) -> Same | None:
    """Return how a field is the same for every client in every round, if it is.

    None when it varies: two values, or a value some clients sent and
    others did not.
    """
    seen: set[float | str] = set()
    missing = False
    numeric = found in numeric_fields(stage.message_type)
    for clients in stage.accepted.values():
        for meta in clients.values():
            values: list[float | str]
            if not numeric:
                text = value_text(meta, found)
                values = [] if text is None else [text]
            elif found.is_repeated:
                values = list(map(float, getattr(meta, found.name)))
            else:
                values = list(display.values([meta], found))
            seen.update(values)
            missing |= not values
            if len(seen) + missing > 1:
                return None
    return Same(next(iter(seen)) if seen else None)


def same_text(found: FieldDescriptor, value: float | str) -> str:
    """Say a field's one value in words, with its unit."""
    if isinstance(value, str):
        return f'"{value}"' if found.type == found.TYPE_STRING else value
    if schema.is_bool(found):
        return "true" if value else "false"
    unit = f" {schema.unit(found)}" if schema.unit(found) else ""
    return f"{value:.6g}{unit}"


def constants_table(records: RunRecords) -> Table | None:
    """Table the fields with one value everywhere (or none); None if there are none."""
    rows = []
    for stage in records.stages.values():
        if stage.message_type is None:
            continue
        for found in stage.message_type.fields:
            if (one := same(stage, found)) is not None:
                shown = "not sent" if one.value is None else same_text(found, one.value)
                rows.append([stage.name, found.name, shown])
    if not rows:
        return None
    return Table(
        "the same for every client in every round", ["stage", "field", "value"], rows
    )


def _values_table(stage: Stage, found: FieldDescriptor) -> Table:
    """Per round, how many clients sent each value of a field that varies."""
    by_round = {
        at: Counter(value_text(meta, found) for meta in stage.accepted[at].values())
        for at in stage.rounds
    }
    overall: Counter[str | None] = Counter()
    for counts in by_round.values():
        overall.update(counts)
    ranked = sorted(
        (value for value in overall if value is not None),
        key=lambda value: (-overall[value], value),
    )
    shown, rest = ranked[:VALUES_SHOWN], set(ranked[VALUES_SHOWN:])
    columns = ["round", *shown]
    if rest:
        columns.append(f"{len(rest)} other values")
    if None in overall:
        columns.append("not sent")
    rows = []
    for at, counts in by_round.items():
        row = [str(at), *(str(counts[value]) for value in shown)]
        if rest:
            row.append(str(sum(counts[value] for value in rest)))
        if None in overall:
            row.append(str(counts[None]))
        rows.append(row)
    return Table(
        f"{stage.name}: {found.name}, clients per value, by round", columns, rows
    )


def statistic(messages: Sequence[Message], found: FieldDescriptor) -> float | None:
    """One field over one round's clients: the median, for a boolean the share true.

    A series counts with each client's last element; None when no client
    sent the field.
    """
    present = display.values(messages, found)
    if not present:
        return None
    if schema.is_bool(found):
        return present.count(1.0) / len(present)
    return float(statistics.median(present))


def cell(messages: Sequence[Message], found: FieldDescriptor) -> str:
    """One field over one round's clients (`statistic`), as a table cell."""
    value = statistic(messages, found)
    if value is None:
        return "-"
    return f"{value:.0%} true" if schema.is_bool(found) else f"{value:.4g}"


def heading(found: FieldDescriptor) -> str:
    """Name a column: the field, its unit and what the cell shows."""
    if schema.is_bool(found):
        return found.name
    if found.is_repeated:
        step = schema.field_spec(found).series or "element"
        return f"last {step}: {schema.label(found)}, median"
    return f"{schema.label(found)}, median"


def _stage_table(stage: Stage) -> Table:
    kind = stage.message_type.name if stage.message_type else "no accepted metadata"
    fields = numeric_fields(stage.message_type)
    columns = ["round", "accepted", "rejected", "failed"]
    if stage.message_type is not None:
        columns += [heading(found) for found in fields]
    rows = []
    for server_round in stage.rounds:
        accepted = list(stage.accepted[server_round].values())
        rows.append(
            [
                str(server_round),
                str(len(accepted)),
                str(len(stage.rejected[server_round])),
                str(len(stage.failed[server_round])),
                *(cell(accepted, found) for found in fields),
            ]
        )
    return Table(f"{stage.name}: {kind}, by round", columns, rows)


def _egress_table(stage: Stage, label: dict[int, str]) -> Table:
    rows = [[label[node], text] for node, text in sorted(stage.egress.items())]
    return Table(
        f"{stage.name}: what node egress policies kept back", ["client", "policy"], rows
    )


def _centralized_table(centralized: dict[int, dict[str, float]]) -> Table:
    names = sorted({name for metrics in centralized.values() for name in metrics})
    rows = [
        [str(r), *(f"{m[n]:.4g}" if n in m else "-" for n in names)]
        for r, m in sorted(centralized.items())
    ]
    return Table(
        "centralized evaluation (the server's test set), by round",
        ["round", *names],
        rows,
    )
