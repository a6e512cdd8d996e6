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
from collections import Counter
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table as RichTable

from flower_app.outcomes.model import Outcomes, StageOutcomes
from flower_app.outcomes.statistics import (
    VALUES_SHOWN,
    Clients,
    numeric_fields,
    other_fields,
    same,
    same_text,
    statistic,
    value_text,
)
from flower_app.protocol import schema
from flower_app.protocol.schema import FieldDescriptor
from flower_app.reporting.clients import labels


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; the first column is the row's label."""

    title: str
    columns: list[str]
    rows: list[list[str]]


def tables(outcomes: Outcomes) -> list[Table]:
    """One table per stage and per varying other field; centralized; egress."""
    found = []
    for stage in outcomes.stages.values():
        found.append(_stage_table(stage))
        found += [
            _values_table(stage, field)
            for field in other_fields(stage.message_type)
            if same(stage, field) is None
        ]
    if outcomes.centralized:
        found.append(_centralized_table(outcomes.centralized))
    label = labels(outcomes.nodes())
    for stage in outcomes.stages.values():
        if egress := stage.egress():
            found.append(_egress_table(stage, egress, label))
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


def in_terminal(outcomes: Outcomes) -> list[Table]:
    """List the tables, and the fields with one value everywhere as a table too."""
    found = tables(outcomes)
    if (constant := constants_table(outcomes)) is not None:
        found.append(constant)
    return found


def as_text(outcomes: Outcomes) -> str:
    """Render the tables as plain text, for the log."""
    console = Console(width=160, record=True, file=io.StringIO())
    for table in in_terminal(outcomes):
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


def constants_table(outcomes: Outcomes) -> Table | None:
    """Table the fields with one value everywhere (or none); None if there are none."""
    rows = []
    for stage in outcomes.stages.values():
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


def _values_table(stage: StageOutcomes, found: FieldDescriptor) -> Table:
    """Per round, how many clients sent each value of a field that varies."""
    by_round = {
        at: Counter(
            value_text(meta, found) for meta in stage.by_round[at].accepted.values()
        )
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


def cell(messages: Clients, found: FieldDescriptor) -> str:
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


def _stage_table(stage: StageOutcomes) -> Table:
    kind = stage.message_type.name if stage.message_type else "no accepted metadata"
    fields = numeric_fields(stage.message_type)
    columns = ["round", "accepted", "rejected", "failed"]
    if stage.message_type is not None:
        columns += [heading(field) for field in fields]
    rows = []
    for server_round in stage.rounds:
        found = stage.by_round[server_round]
        accepted = found.accepted
        rows.append(
            [
                str(server_round),
                str(len(accepted)),
                str(len(found.rejected)),
                str(len(found.failed)),
                *(cell(accepted, field) for field in fields),
            ]
        )
    return Table(f"{stage.name}: {kind}, by round", columns, rows)


def _egress_table(
    stage: StageOutcomes, egress: dict[int, str], label: dict[int, str]
) -> Table:
    rows = [[label[node], text] for node, text in sorted(egress.items())]
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
