"""A run's summary tables: one per stage, one row a round, a column a field.

Every number field of the stage's message gets a column, named with its
unit: numbers show their median (their mean weighted by the ROLE_EXAMPLES
field, where the message has one), booleans the share that is true, series
the mean of each client's last element. The server's own evaluation gets a
table of its own, so a centralized number is never taken for a federated one.
The tables are plain data (`Table`); `as_rich` and the HTML page render them.
"""

import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table as RichTable

from flower_app.protocol import display, schema
from flower_app.protocol.schema import Descriptor, FieldDescriptor
from flower_app.reporting.run_records import RunRecords, Stage
from flower_meta.v1.options_pb2 import ROLE_EXAMPLES


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
    found += [_egress_table(s) for s in records.stages.values() if s.egress]
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
    return all(_is_number(row[index]) for row in table.rows)


def _is_number(text: str) -> bool:
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


def cell(messages: Sequence[Message], found: FieldDescriptor) -> str:
    """One field over one round's clients, as a table cell."""
    present = display.values(messages, found)
    if not present:
        return "-"
    if schema.is_bool(found):
        return f"{present.count(1.0) / len(present):.0%} true"
    weights = _weights(messages, found)
    if weights and (weight := math.fsum(weights)) > 0:
        total = math.fsum(w * v for w, v in zip(weights, present, strict=True))
        return f"{total / weight:.4g}"
    return f"{statistics.median(present):.4g}"


def heading(found: FieldDescriptor, message_type: Descriptor) -> str:
    """Name a column: the field, its unit and what the cell shows."""
    if schema.is_bool(found):
        return found.name
    if found.is_repeated:
        step = schema.field_spec(found).series or "element"
        return f"last {step}: {schema.label(found)}, mean"
    weighted = schema.with_role(message_type, ROLE_EXAMPLES)
    how = "mean by examples" if weighted is not None and weighted != found else "median"
    return f"{schema.label(found)}, {how}"


def _weights(messages: Sequence[Message], found: FieldDescriptor) -> list[float] | None:
    examples = schema.with_role(found.containing_type, ROLE_EXAMPLES)
    if examples is None or examples == found or found.is_repeated:
        return None
    return [
        float(getattr(m, examples.name))
        for m in messages
        if schema.is_present(m, found) or not found.has_presence
    ]


def _stage_table(stage: Stage) -> Table:
    kind = stage.message_type.name if stage.message_type else "no accepted metadata"
    fields = numeric_fields(stage.message_type)
    columns = ["round", "accepted", "rejected", "failed"]
    if stage.message_type is not None:
        columns += [heading(found, stage.message_type) for found in fields]
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


def _egress_table(stage: Stage) -> Table:
    rows = [[str(node), text] for node, text in sorted(stage.egress.items())]
    return Table(
        f"{stage.name}: what node egress policies kept back", ["node", "policy"], rows
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
