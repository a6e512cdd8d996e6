"""A run's summary tables: one per stage, one row a round, a column a field.

Every number field of the stage's message gets a column, named with its
unit and what the cell shows: numbers their median over the round's
clients (as the round log and the trackers show them), series the median of
each client's last element, booleans the share that is true. The server's
own evaluation gets a table of its own, so a centralized number is never
taken for a federated one.
The tables are plain data (`Table`); `as_rich` and the HTML page render them.
"""

import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table as RichTable

from flower_app.protocol import display, schema
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_app.reporting.clients import labels
from flower_app.reporting.run_records import RunRecords, Stage


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; the first column is the row's label."""

    title: str
    columns: list[str]
    rows: list[list[str]]


def tables(records: RunRecords) -> list[Table]:
    """One table per stage, then the centralized evaluation and egress policies."""
    found = [_stage_table(stage) for stage in records.stages.values()]
    if records.centralized:
        found.append(_centralized_table(records.centralized))
    label = labels(records.nodes())
    found += [_egress_table(s, label) for s in records.stages.values() if s.egress]
    return found


def as_rich(table: Table) -> RichTable:
    """Lay the table out for a terminal, numbers right-aligned."""
    shown = RichTable(title=table.title)
    for index, column in enumerate(table.columns):
        shown.add_column(
            column, justify="left" if index and not _numeric(table, index) else "right"
        )
    for row in table.rows:
        shown.add_row(*row)
    return shown


def as_text(records: RunRecords) -> str:
    """Render the tables as plain text, for the log."""
    console = Console(width=160, record=True, file=io.StringIO())
    for table in tables(records):
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
