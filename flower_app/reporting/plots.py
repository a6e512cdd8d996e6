"""A run's plots, one per number field of each stage, drawn from the schema.

- a number: every client's value per round (its first report hollow: the
  start-up cost of a first call, not a straggler), the round's median
  (the tables' number), and the server's centralized metric of the same
  name beside it; a log scale when one value dwarfs the rest (more than
  `LOG_SCALE_RATIO` times the median), so the typical clients stay visible;
- a boolean: per round, how many clients said true, false or nothing;
- a number series (e.g. per-epoch losses): each client's curve, round by
  round.

Up to `LEGEND_LIMIT` clients each get a colour and a legend entry; beyond
that every client is drawn in grey and the `NAMED` clients farthest from
their round's median (the clients to look at) in colour, named. With more
than `DRAWN_CLIENTS` clients (in a round, for a number; in the run, for a
series) the clients are drawn as their median and the band of the middle
80%, plus those named few, so a plot of a million records stays readable
and takes seconds. A field with one value everywhere, or that no client
sent, gets no plot: the report says it in a sentence (`same`). Clients are
named by their short label (`clients.labels`).
"""

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from flower_app.outcomes import statistics as stats
from flower_app.outcomes.model import Outcomes, StageOutcomes
from flower_app.protocol import schema
from flower_app.protocol.files import output_folder, safe_name, write_atomic
from flower_app.protocol.schema import FieldDescriptor
from flower_app.reporting.clients import labels

LEGEND_LIMIT = 12
"""Clients drawn each in a colour of its own and named in the legend."""
NAMED = 3
"""Beyond `LEGEND_LIMIT` clients, how many of the farthest from the median
are drawn in colour and named."""
DRAWN_CLIENTS = 50
"""Clients drawn one by one; with more, a plot draws the median and the band
of the middle 80% of clients, and its legend says so."""
MAX_ROUND_TICKS = 20
"""Rounds labelled one by one; with more, Matplotlib picks the ticks."""
BAR_LABEL_SHARE = 0.05
"""A bar segment is labelled with its count when it holds at least this
share of the round's clients (a thinner one has no room for it)."""
LOG_SCALE_RATIO = 5.0
"""A log scale when the largest value exceeds the median by this factor."""
Draw = Callable[[Axes, StageOutcomes, FieldDescriptor, Outcomes, dict[int, str]], None]
"""Draws one plot; its last argument: the clients named, with their colours."""
Choose = Callable[[StageOutcomes, FieldDescriptor], list[int]]
Step = tuple[np.ndarray, np.ndarray]
"""The nodes with a value at one step (a round, an element of a round's
series), and their values, as arrays."""
"""Picks the clients a plot names, in order."""


@dataclass(frozen=True)
class Drawn:
    """A plot written to a file, with its caption in words."""

    path: Path
    caption: str


@dataclass(frozen=True)
class _Plot:
    name: str
    caption: str
    draw: Draw
    stage: StageOutcomes
    field: FieldDescriptor
    named: list[int]
    """The clients this plot names, each in its colour."""


def plot_names(outcomes: Outcomes) -> list[str]:
    """List the file name of every plot `write_plots` draws, in order."""
    return [plot.name for plot in _plots(outcomes)]


def write_plots(outcomes: Outcomes, folder: Path) -> list[Drawn]:
    """Draw every plot into `folder` as an 800 x 450 PNG; return them."""
    output_folder(folder)
    drawn = []
    for plot, figure in _figures(outcomes):
        image = io.BytesIO()
        figure.savefig(image, format="png")
        drawn.append(
            Drawn(write_atomic(folder, plot.name, image.getvalue()), plot.caption)
        )
    return drawn


def figures(outcomes: Outcomes) -> Iterator[tuple[str, Figure]]:
    """Draw every plot, 8 x 4.5 inches; yield each with its file name."""
    for plot, figure in _figures(outcomes):
        yield plot.name, figure


def _figures(outcomes: Outcomes) -> Iterator[tuple[_Plot, Figure]]:
    plots = _plots(outcomes)
    colour = colours([plot.named for plot in plots])
    for plot in plots:
        figure = Figure(figsize=(8, 4.5), dpi=100, layout="tight")
        named = {node: colour[node] for node in plot.named}
        plot.draw(figure.subplots(), plot.stage, plot.field, outcomes, named)
        yield plot, figure


def colours(named: Iterable[list[int]]) -> dict[int, str]:
    """Give every client a plot names one colour, the same in every plot.

    In order of first naming, each client takes the first colour no other
    client has, so a colour names one client in the whole report (a run of
    up to `LEGEND_LIMIT` clients, each named in every plot, has them in
    `COLORS` order by node). Only past `len(COLORS)` named clients is a
    colour used twice, and never by two clients of one plot.
    """
    mates: dict[int, set[int]] = {}
    for group in named:
        for node in group:
            mates.setdefault(node, set()).update(set(group) - {node})
    found: dict[int, str] = {}
    for node in mates:
        unused = [colour for colour in COLORS if colour not in found.values()]
        taken = {found[mate] for mate in mates[node] if mate in found}
        free = unused or [colour for colour in COLORS if colour not in taken]
        found[node] = free[0] if free else COLORS[len(found) % len(COLORS)]
    return found


def _plots(outcomes: Outcomes) -> list[_Plot]:
    """Each plot with its file name: made safe, and unique, whatever the log holds.

    A field with one value everywhere, or none, is left out (`same`).
    """
    found: list[_Plot] = []
    names: set[str] = set()
    for stage in outcomes.stages.values():
        for field in stats.numeric_fields(stage.message_type):
            if stats.same(stage, field) is not None:
                continue
            draw, choose, caption = _kind(stage, field)
            name = f"{safe_name(stage.name)}_{safe_name(field.name)}"
            if name in names:
                name += f"-{len(found)}"
            names.add(name)
            named = choose(stage, field)
            found.append(_Plot(f"{name}.png", caption, draw, stage, field, named))
    return found


def _kind(stage: StageOutcomes, field: FieldDescriptor) -> tuple[Draw, Choose, str]:
    """How a field is drawn, who it names, and the caption that says how to read it."""
    what = f"{stage.name} stage: {schema.label(field)}"
    if schema.is_bool(field):
        return (
            _shares,
            lambda *_: [],
            f"{what}: how many clients said true, false or nothing, per round.",
        )
    if field.is_repeated:
        step = schema.field_spec(field).series or "element"
        return (
            _curves,
            _named_curves,
            f"{what}: each client's values {step} by {step}, the rounds side by side.",
        )
    return (
        _per_client,
        _named_per_client,
        f"{what}: each client's value per round (hollow: its first report) and "
        "the round's median.",
    )


def plural(noun: str) -> str:
    """Make a series' step name plural: epochs, batches, steps, queries."""
    if noun.endswith(("s", "x", "z", "sh", "tch")):  # not epoch: epochs
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


def plain(text: str) -> str:
    """Show text from a log as it is: a `$` starts no Matplotlib mathtext."""
    return text.replace("$", r"\$")


def _crowded_rounds(stage: StageOutcomes) -> bool:
    """Say whether a round has too many clients to draw one by one."""
    return (
        max((len(stage.by_round[r].accepted) for r in stage.rounds), default=0)
        > DRAWN_CLIENTS
    )


def _named_per_client(stage: StageOutcomes, field: FieldDescriptor) -> list[int]:
    by_round = [_round_values(stage, r, field) for r in stage.rounds]
    return _chosen(_all_nodes(by_round), by_round, _crowded_rounds(stage))


def _all_nodes(steps: Iterable[Step]) -> list[int]:
    """Every node of some step, in order."""
    found = [nodes for nodes, _ in steps if len(nodes)]
    return np.unique(np.concatenate(found)).tolist() if found else []


def _per_client(
    axes: Axes,
    stage: StageOutcomes,
    field: FieldDescriptor,
    outcomes: Outcomes,
    named: dict[int, str],
) -> None:
    rounds = stage.rounds
    by_round = {r: _round_values(stage, r, field) for r in rounds}
    nodes = _all_nodes(by_round.values())
    crowded = _crowded_rounds(stage)
    if crowded:
        spread = ((r, values) for r, (_, values) in by_round.items())
        _band(axes, spread, f"10-90% of clients (over {DRAWN_CLIENTS} a round)", False)
    label = labels(nodes)
    groups: dict[tuple[int | None, bool], list[tuple[float, float]]] = {}
    seen: set[int] = set()
    chosen = np.array(list(named), dtype=np.uint64)
    for server_round, (round_nodes, values) in by_round.items():
        order = np.argsort(round_nodes, kind="stable")
        ranked, ranked_values = round_nodes[order], values[order]
        drawn = np.isin(ranked, chosen) if crowded else np.ones(len(ranked), bool)
        last = len(ranked) - 1
        for index in np.flatnonzero(drawn).tolist():
            node = int(ranked[index])
            offset = 0.3 * (index / last - 0.5) if last > 0 else 0
            key = (node if node in named else None, node not in seen)
            groups.setdefault(key, []).append(
                (server_round + offset, float(ranked_values[index]))
            )
        seen.update(round_nodes.tolist())
    for (who, first), points in sorted(groups.items(), key=_drawn_order):
        color = "lightgrey" if who is None else named[who]
        name = "other clients" if who is None else label[who]
        xs, ys = zip(*points, strict=True)
        axes.scatter(
            xs,
            ys,
            s=18,
            facecolors="none" if first else color,
            edgecolors=color,
            label=name,
            zorder=3 if who is not None else 2,
        )
    middle = [(r, stats.statistic(stage.by_round[r].accepted, field)) for r in rounds]
    shown = [(r, value) for r, value in middle if value is not None]
    if shown:
        axes.plot(
            *zip(*shown, strict=True),
            color="black",
            marker="o",
            label="round's median",
        )
    centralized = [
        (r, metrics[field.name])
        for r, metrics in sorted(outcomes.centralized.items())
        if field.name in metrics and r >= 1
    ]
    if centralized:
        axes.plot(
            *zip(*centralized, strict=True),
            color="tab:green",
            marker="s",
            label=plain(f"centralized {field.name} (server's test set)"),
        )
    _value_axis(axes, stage, field)
    _legend(axes, nodes, named)
    _round_ticks(axes, rounds)
    axes.set(
        title=plain(f"{stage.name}: {field.name} per client, by round"),
        xlabel="server round",
        ylabel=plain(schema.label(field)),
    )


def _drawn_order(item: tuple[tuple[int | None, bool], object]) -> tuple[bool, int]:
    """Grey before coloured, so the named clients are drawn on top."""
    (node, _), _ = item
    return node is not None, node or 0


def _round_values(
    stage: StageOutcomes, server_round: int, field: FieldDescriptor
) -> Step:
    """Each client's value of a field in one round (a series: its last element)."""
    return stats.numbers_of(stage.by_round[server_round].accepted, field)


COLORS = [
    f"tab:{c}"
    for c in ("blue", "orange", "red", "purple", "brown", "pink", "olive", "cyan")
] + [
    "navy",
    "gold",
    "magenta",
    "teal",
    "maroon",
    "slateblue",
    "chocolate",
    "deepskyblue",
    "darkkhaki",
    "crimson",
    "indigo",
    "yellowgreen",
]
"""Colours of named clients, one each; black, grey and green are the
median's, the other clients' and the centralized metric's."""


def _chosen(nodes: list[int], steps: Iterable[Step], crowded: bool) -> list[int]:
    """Choose the clients drawn in colour and named.

    Every client up to `LEGEND_LIMIT` (unless crowded); beyond, the `NAMED`
    farthest from their step's median.
    """
    if len(nodes) <= LEGEND_LIMIT and not crowded:
        return nodes
    return farthest(steps, NAMED)


def farthest(steps: Iterable[Step], count: int) -> list[int]:
    """Return the `count` clients farthest from some step's median, farthest first.

    Each step (a round, or an epoch of a round) gives nodes and their
    values; a client's distance is its largest |value - the step's median|.
    Clients that never leave the median are not named; ties go to the
    smaller node id.
    """
    found = np.array([], dtype=np.uint64)
    worst = np.array([], dtype=np.float64)
    node_parts: list[np.ndarray] = []
    distance_parts: list[np.ndarray] = []
    held = 0
    for nodes, values in steps:
        if len(values):
            node_parts.append(nodes)
            distance_parts.append(np.abs(values - np.median(values)))
            held += len(values)
        if held > FOLD_AT:  # memory stays flat in the run's length
            found, worst = _fold(found, worst, node_parts, distance_parts)
            node_parts, distance_parts, held = [], [], 0
    found, worst = _fold(found, worst, node_parts, distance_parts)
    distance = dict(zip(found.tolist(), worst.tolist(), strict=True))
    ranked = sorted(
        (node for node, far in distance.items() if far > 0),
        key=lambda node: (-distance[node], node),
    )
    return ranked[:count]


FOLD_AT = 1 << 18
"""Distances held before they are folded into each client's largest."""


def _fold(
    found: np.ndarray,
    worst: np.ndarray,
    node_parts: list[np.ndarray],
    distance_parts: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Fold steps' (node, distance) pairs into each client's largest distance."""
    nodes, where = np.unique(np.concatenate([found, *node_parts]), return_inverse=True)
    largest = np.zeros(len(nodes))
    np.maximum.at(largest, where, np.concatenate([worst, *distance_parts]))
    return nodes, largest


def _legend(axes: Axes, nodes: list[int], named: dict[int, str]) -> None:
    """Add the legend: named clients first (farthest first), then the rest.

    Its title says how many clients there are and who is named.
    """
    handles, names = axes.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    label = labels(nodes)
    order = [label[node] for node in named if label[node] in unique]
    order += [name for name in unique if name not in order]
    title = f"{len(nodes)} clients"
    if named and len(named) < len(nodes):
        title += f"\nnamed: the {len(named)} farthest\nfrom the median"
    axes.legend(
        [unique[name] for name in order],
        order,
        title=title,
        alignment="left",
        fontsize="small",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )


def _band(
    axes: Axes,
    spread: Iterable[tuple[float, np.ndarray]],
    label: str,
    median_too: bool = True,
) -> None:
    """Draw the clients' 10-90% band and median at each x, for many clients.

    `spread` is read once, so a caller can hand it one round at a time.
    """
    xs: list[float] = []
    low: list[float] = []
    median: list[float] = []
    high: list[float] = []
    for x, values in spread:
        if len(values):
            xs.append(x)
            for found, quantile in zip(
                (low, median, high),
                np.quantile(values, [0.1, 0.5, 0.9]),
                strict=True,
            ):
                found.append(float(quantile))
    if xs:
        axes.fill_between(xs, low, high, color="tab:blue", alpha=0.25, label=label)
        if median_too:
            axes.plot(xs, median, color="black", linewidth=1, label="clients' median")


def _steps(
    stage: StageOutcomes, field: FieldDescriptor, rounds: list[int]
) -> Iterator[tuple[float, Step]]:
    """Every client's series value at each step, a round at a time.

    Element i of a series of n sits at round - 1 + (i + 1) / n.
    """
    for server_round in rounds:
        table = stats.columns(stage.by_round[server_round].accepted)
        if field.name not in table.series:
            continue
        flat, ends = table.series[field.name]
        lengths = np.diff(ends)
        by_step: dict[float, list[Step]] = {}
        for length in np.unique(lengths[lengths > 0]).tolist():
            rows = np.flatnonzero(lengths == length)
            block = flat[ends[rows][:, None] + np.arange(length)]
            for i in range(length):
                step = server_round - 1 + (i + 1) / length
                by_step.setdefault(step, []).append((table.nodes[rows], block[:, i]))
        for step, parts in sorted(by_step.items()):
            yield (
                step,
                (
                    np.concatenate([nodes for nodes, _ in parts]),
                    np.concatenate([values for _, values in parts]),
                ),
            )


def _round_ticks(axes: Axes, rounds: list[int]) -> None:
    if len(rounds) <= MAX_ROUND_TICKS:
        axes.set_xticks(rounds)
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _value_axis(axes: Axes, stage: StageOutcomes, field: FieldDescriptor) -> None:
    """Scale and tick the value axis.

    A log scale when one value dwarfs the rest, its ticks labelled as plain
    numbers; whole-number ticks for an integer field.
    """
    values = [
        v
        for found in stage.by_round.values()
        for v in stats.values(found.accepted, field)
    ]
    positive = sorted(v for v in values if v > 0)
    if len(positive) == len(values) and positive:
        median = positive[len(positive) // 2]
        if positive[-1] > LOG_SCALE_RATIO * median:
            axes.set_yscale("log")
            decades = np.log10(positive[-1] / positive[0])
            subs = (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
            axes.yaxis.set_major_locator(LogLocator(subs=subs))
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axes.yaxis.set_minor_formatter(NullFormatter())
            return
    if not schema.is_floating(field):
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _shares(
    axes: Axes, stage: StageOutcomes, field: FieldDescriptor, *_: object
) -> None:
    rounds = stage.rounds
    counts = {"true": [], "false": [], "not reported": []}  # type: dict[str, list[int]]
    for server_round in rounds:
        clients = stage.by_round[server_round].accepted
        present = stats.values(clients, field)
        counts["true"].append(int(sum(present)))
        counts["false"].append(len(present) - int(sum(present)))
        counts["not reported"].append(len(clients) - len(present))
    bottom = [0] * len(rounds)
    ticks = [str(r) for r in rounds]
    totals = [len(stage.by_round[r].accepted) for r in rounds]
    for (name, values), color in zip(
        counts.items(), ["tab:green", "tab:red", "tab:gray"], strict=True
    ):
        bars = axes.bar(ticks, values, bottom=bottom, color=color, label=name)
        shown = zip(values, totals, strict=True)
        axes.bar_label(
            bars,
            [str(v) if v and v >= BAR_LABEL_SHARE * n else "" for v, n in shown],
            label_type="center",
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set(
        title=plain(f"{stage.name}: {field.name}, clients per round"),
        xlabel="server round",
        ylabel="clients",
    )
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole ticks
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _named_curves(stage: StageOutcomes, field: FieldDescriptor) -> list[int]:
    nodes = sorted({node for r in stage.rounds for node in stage.by_round[r].accepted})
    steps = (step for _, step in _steps(stage, field, stage.rounds))
    return _chosen(nodes, steps, len(nodes) > DRAWN_CLIENTS)


def _curves(
    axes: Axes,
    stage: StageOutcomes,
    field: FieldDescriptor,
    _: Outcomes,
    named: dict[int, str],
) -> None:
    rounds = stage.rounds
    nodes = sorted({node for r in rounds for node in stage.by_round[r].accepted})
    crowded = len(nodes) > DRAWN_CLIENTS
    if crowded:
        _band(
            axes,
            ((x, values) for x, (_, values) in _steps(stage, field, rounds)),
            f"10-90% of the {len(nodes)} clients",
        )
    curves: dict[int, list[tuple[float, float]]] = {}
    chosen = np.array(list(named), dtype=np.uint64)
    for x, (step_nodes, values) in _steps(stage, field, rounds):
        drawn = np.isin(step_nodes, chosen) if crowded else slice(None)
        for node, value in zip(
            step_nodes[drawn].tolist(), values[drawn].tolist(), strict=True
        ):
            curves.setdefault(node, []).append((x, value))
    label = labels(nodes)
    for node, points in sorted(curves.items(), key=lambda item: item[0] in named):
        color = named.get(node, "lightgrey")
        axes.plot(
            *zip(*sorted(points), strict=True),
            marker=".",
            color=color,
            label=label[node] if node in named else None,
            zorder=3 if node in named else 2,
        )
    if len(rounds) <= MAX_ROUND_TICKS:
        for boundary in rounds[:-1]:
            axes.axvline(boundary, color="grey", linewidth=0.5)
        axes.set_xticks([r - 0.5 for r in rounds], [f"round {r}" for r in rounds])
    step = schema.field_spec(field).series or "element"
    axes.set(
        title=plain(f"{stage.name}: {field.name}, each client {step} by {step}"),
        xlabel=plain(f"{plural(step)}, grouped by server round"),
        ylabel=plain(schema.label(field)),
    )
    if axes.get_legend_handles_labels()[0]:
        _legend(axes, nodes, named)
