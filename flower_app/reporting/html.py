"""A run's report as one self-contained HTML page.

Summary, the run config, the tables by round, every refusal and failure
with its reason, stragglers, node egress policies, the plots with their
captions, the fields with one value everywhere (or none) in a sentence, and which
node each short client label stands for, inline: no script, and no
stylesheet or image from elsewhere, so the page opens offline and can be
mailed or archived as one file. Every text that came from a client is
escaped.
"""

import base64
import json
import math
from html import escape
from pathlib import Path

from flower_app.outcomes.model import Outcomes
from flower_app.outcomes.statistics import same, same_text
from flower_app.outcomes.stragglers import stragglers
from flower_app.protocol import schema
from flower_app.protocol.files import write_atomic
from flower_app.reporting.clients import labels
from flower_app.reporting.plots import Drawn
from flower_app.reporting.tables import Table, is_number, tables
from flower_meta.v1.options_pb2 import ROLE_DURATION

PAGE = "report.html"
UNDECODABLE_SHOWN = 5
"""Undecodable records named in the summary."""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
.scroll { max-height: 24rem; overflow: auto; }
@media print { .scroll { max-height: none; overflow: visible; } }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
.note { color: #a33; }
"""


def write_html(
    outcomes: Outcomes,
    plots: list[Drawn],
    folder: Path,
    title: str,
    factor: float,
    run_config: dict[str, object],
) -> Path:
    """Write the page into `folder`; return its path."""
    text = page(outcomes, plots, title, factor, run_config)
    return write_atomic(folder, PAGE, text.encode("utf-8"))


def page(
    outcomes: Outcomes,
    plots: list[Drawn],
    title: str,
    factor: float,
    run_config: dict[str, object],
) -> str:
    """Compose the page's HTML."""
    label = labels(outcomes.nodes())
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _summary(outcomes),
        _run_config(run_config),
        *(_table(table) for table in tables(outcomes)),
        _refusals(outcomes, label),
        _stragglers(outcomes, factor, label),
        _unplotted(outcomes),
        *(_figure(plot) for plot in plots),
        _clients(label),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(outcomes: Outcomes) -> str:
    rounds = sorted({r for s in outcomes.stages.values() for r in s.rounds})
    nodes = outcomes.nodes()
    items = [
        f'<li><span id="rounds">{len(rounds)}</span> rounds, '
        f'<span id="clients">{len(nodes)}</span> clients</li>'
    ]
    for stage in outcomes.stages.values():
        counts = [stage.replies(kind) for kind in ("accepted", "rejected", "failed")]
        items.append(
            f"<li>{escape(stage.name)} stage, replies over all rounds: "
            f"{counts[0]} accepted, {counts[1]} rejected, {counts[2]} failed</li>"
        )
    if outcomes.centralized:
        last = max(outcomes.centralized)
        metrics = ", ".join(
            f"{escape(k)} {v:.4g}"
            for k, v in sorted(outcomes.centralized[last].items())
        )
        items.append(f"<li>centralized evaluation after round {last}: {metrics}</li>")
    if outcomes.damage:
        items.append(f'<li class="note">{escape(outcomes.damage)}</li>')
    if undecodable := outcomes.undecodable:
        shown = "; ".join(undecodable[:UNDECODABLE_SHOWN])
        items.append(
            f'<li class="note">{len(undecodable)} records could not be decoded and '
            f"are left out: {escape(shown)}</li>"
        )
    return "<h2>Summary</h2><ul>" + "".join(items) + "</ul>"


def _table(table: Table, scroll: bool = True) -> str:
    """Lay a table out under its title; a long one scrolls on screen, not in print."""
    head = "".join(f"<th>{escape(column)}</th>" for column in table.columns)
    body = "".join(
        "<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in table.rows
    )
    box = "<div class=scroll>" if scroll else "<div>"
    return (
        f"<h2>{escape(table.title)}</h2>{box}<table>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _cell(value: str) -> str:
    kind = "" if is_number(value) else " class=text"
    return f"<td{kind}>{escape(value)}</td>"


def _run_config(run_config: dict[str, object]) -> str:
    """Show the run config in full, each value as TOML spells it (as it was set)."""
    if not run_config:
        return "<h2>Run config</h2><p>Not kept with this run folder.</p>"
    rows = [[key, toml_text(value)] for key, value in sorted(run_config.items())]
    return _table(Table("Run config", ["key", "value"], rows), scroll=False)


def toml_text(value: object) -> str:
    """Spell a run-config value as TOML does: true, 0.1, "digits"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # strings; lists as arrays


def _unplotted(outcomes: Outcomes) -> str:
    """Say which fields have one value everywhere, or none (they are not plotted)."""
    items = []
    for stage in outcomes.stages.values():
        if stage.message_type is None:
            continue
        for field in stage.message_type.fields:
            if (found := same(stage, field)) is None:
                continue
            what = f"{stage.name} stage: {field.name}"
            if found.value is None:
                items.append(f"<li>{escape(what)}: no client reported it</li>")
                continue
            items.append(
                f"<li>{escape(what)} was {escape(same_text(field, found.value))} "
                "for every client in every round</li>"
            )
    if not items:
        return ""
    return "<h2>The same everywhere</h2><ul>" + "".join(items) + "</ul>"


def _clients(label: dict[int, str]) -> str:
    rows = [[name, str(node)] for node, name in sorted(label.items())]
    if not rows:
        return ""
    return _table(Table("Clients: label and node id", ["label", "node id"], rows))


def _refusals(outcomes: Outcomes, label: dict[int, str]) -> str:
    rows = [
        [stage.name, str(at), label[node], outcome, reason]
        for stage in outcomes.stages.values()
        for outcome in ("rejected", "failed")
        for at in stage.rounds
        for node, reason in sorted(getattr(stage.by_round[at], outcome).items())
    ]
    if not rows:
        return "<h2>Refusals and failures</h2><p>None: every reply was accepted.</p>"
    columns = ["stage", "round", "client", "outcome", "reason"]
    return _table(Table("Refusals and failures", columns, rows))


def _stragglers(outcomes: Outcomes, factor: float, label: dict[int, str]) -> str:
    rows = []
    units = set()
    for stage in outcomes.stages.values():
        if stage.message_type is not None and (
            duration := schema.with_role(stage.message_type, ROLE_DURATION)
        ):
            units.add(schema.unit(duration))
        for at in stage.rounds:
            late = stragglers(stage, at, factor)
            rows += [
                [stage.name, str(at), label[n], f"{t:.3g}", "straggler"]
                for n, t in late.slow.items()
            ]
            rows += [
                [stage.name, str(at), label[n], f"{t:.3g}", "warm-up"]
                for n, t in late.warm_up.items()
            ]
    title = f"Stragglers (duration above {factor:g} x the round's median)"
    if not rows:
        return f"<h2>{escape(title)}</h2><p>None.</p>"
    (unit,) = units if len(units) == 1 else ("",)
    duration_column = f"duration ({unit})" if unit else "duration"
    columns = ["stage", "round", "client", duration_column, "kind"]
    return _table(Table(title, columns, rows))


def _figure(plot: Drawn) -> str:
    data = base64.b64encode(plot.path.read_bytes()).decode()
    caption = escape(plot.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )
