"""A run's plots, one per number field of each stage, drawn from the schema.

- a number: every client's value per round (its first report hollow: the
  start-up cost of a first call, not a straggler), the round's median
  (the tables' number), and the server's centralized metric of the same
  name beside it; a log scale when one value dwarfs the rest (more than
  `LOG_SCALE_RATIO` times the median), so the typical clients stay visible;
- a boolean: per round, how many clients said true, false or nothing;
- a number series (e.g. per-epoch losses): each client's curve, round by
  round.

With more than `CLIENT_CAP` clients (in a round, for a number; in the run,
for a series) the clients are drawn as their median and the band of the
middle 80% instead, so a plot of a million records stays readable and
takes seconds.
"""

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from flower_app.protocol import display, schema
from flower_app.protocol.files import output_folder, safe_name, write_atomic
from flower_app.protocol.schema import FieldDescriptor
from flower_app.reporting.run_records import RunRecords, Stage
from flower_app.reporting.tables import heading, numeric_fields, statistic

LEGEND_LIMIT = 12
"""Clients named in a legend; beyond, the legend says how many there are."""
CLIENT_CAP = 50
"""Clients drawn one by one; with more, a plot draws the median and the band
of the middle 80% of clients, and its legend says so."""
MAX_ROUND_TICKS = 20
"""Rounds labelled one by one; with more, Matplotlib picks the ticks."""
LOG_SCALE_RATIO = 5.0
"""A log scale when the largest value exceeds the median by this factor."""
Draw = Callable[[Axes, Stage, FieldDescriptor, RunRecords], None]


def plot_names(records: RunRecords) -> list[str]:
    """List the file name of every plot `write_plots` draws, in order."""
    return [name for name, _, _, _ in _plots(records)]


def write_plots(records: RunRecords, folder: Path) -> list[Path]:
    """Draw every plot into `folder` as an 800 x 450 PNG; return the paths."""
    output_folder(folder)
    paths = []
    for name, figure in figures(records):
        image = io.BytesIO()
        figure.savefig(image, format="png")
        paths.append(write_atomic(folder, name, image.getvalue()))
    return paths


def figures(records: RunRecords) -> Iterator[tuple[str, Figure]]:
    """Draw every plot, 8 x 4.5 inches; yield each with its file name."""
    for name, draw, stage, found in _plots(records):
        figure = Figure(figsize=(8, 4.5), dpi=100, layout="tight")
        draw(figure.subplots(), stage, found, records)
        yield name, figure


def _plots(records: RunRecords) -> list[tuple[str, Draw, Stage, FieldDescriptor]]:
    """Each plot with its file name: made safe, and unique, whatever the log holds."""
    found: list[tuple[str, Draw, Stage, FieldDescriptor]] = []
    names: set[str] = set()
    for stage in records.stages.values():
        for field in numeric_fields(stage.message_type):
            if schema.is_bool(field):
                draw: Draw = _shares
            elif field.is_repeated:
                draw = _curves
            else:
                draw = _per_client
            name = f"{safe_name(stage.name)}_{safe_name(field.name)}"
            if name in names:
                name += f"-{len(found)}"
            names.add(name)
            found.append((f"{name}.png", draw, stage, field))
    return found


def plain(text: str) -> str:
    """Show text from a log as it is: a `$` starts no Matplotlib mathtext."""
    return text.replace("$", r"\$")


def _per_client(
    axes: Axes, stage: Stage, field: FieldDescriptor, records: RunRecords
) -> None:
    rounds = stage.rounds
    seen: set[int] = set()
    points: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    crowded = max((len(stage.accepted[r]) for r in rounds), default=0) > CLIENT_CAP
    if crowded:
        spread = (
            (r, display.values(list(stage.accepted[r].values()), field)) for r in rounds
        )
        _band(axes, spread, f"10-90% of clients (over {CLIENT_CAP} a round)")
    for server_round in [] if crowded else rounds:
        clients = stage.accepted[server_round]
        for index, (node, meta) in enumerate(sorted(clients.items())):
            x = server_round + 0.3 * (index / max(len(clients) - 1, 1) - 0.5)
            if (value := display.value(meta, field)) is not None:
                points[node not in seen].append((x, value))
        seen |= set(clients)
    for first, label in ((False, "client"), (True, "first report of a client")):
        if points[first]:
            xs, ys = zip(*points[first], strict=True)
            axes.scatter(
                xs,
                ys,
                s=18,
                facecolors="none" if first else "tab:blue",
                edgecolors="tab:blue",
                label=label,
            )
    middle = [(r, statistic(list(stage.accepted[r].values()), field)) for r in rounds]
    shown = [(r, value) for r, value in middle if value is not None]
    if shown:
        how = heading(field).rsplit(", ", 1)[-1]
        axes.plot(
            *zip(*shown, strict=True), color="tab:orange", marker="o", label=plain(how)
        )
    centralized = [
        (r, metrics[field.name])
        for r, metrics in sorted(records.centralized.items())
        if field.name in metrics and r >= 1
    ]
    if centralized:
        axes.plot(
            *zip(*centralized, strict=True),
            color="tab:green",
            marker="s",
            label=plain(f"centralized {field.name} (server's test set)"),
        )
    _log_scale_if_skewed(axes, stage, field)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    else:
        axes.text(
            0.5,
            0.5,
            plain(f"no client reported {field.name}"),
            ha="center",
            transform=axes.transAxes,
        )
    _round_ticks(axes, rounds)
    axes.set(
        title=plain(f"{stage.name}: {field.name} per client, by round"),
        xlabel="server round",
        ylabel=plain(schema.label(field)),
    )


def _band(
    axes: Axes, spread: Iterable[tuple[float, Sequence[float]]], label: str
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
        axes.plot(xs, median, color="tab:blue", linewidth=1, label="clients' median")


def _steps(
    stage: Stage, field: FieldDescriptor, rounds: list[int]
) -> Iterator[tuple[float, list[float]]]:
    """Every client's series values at each step, a round at a time."""
    for server_round in rounds:
        by_step: dict[float, list[float]] = {}
        for meta in stage.accepted[server_round].values():
            series = getattr(meta, field.name)
            for i, value in enumerate(series):
                step = server_round - 1 + (i + 1) / len(series)
                by_step.setdefault(step, []).append(value)
        yield from sorted(by_step.items())


def _round_ticks(axes: Axes, rounds: list[int]) -> None:
    if len(rounds) <= MAX_ROUND_TICKS:
        axes.set_xticks(rounds)
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _log_scale_if_skewed(axes: Axes, stage: Stage, field: FieldDescriptor) -> None:
    values = [
        v
        for clients in stage.accepted.values()
        for v in display.values(list(clients.values()), field)
    ]
    positive = sorted(v for v in values if v > 0)
    if len(positive) == len(values) and positive:
        median = positive[len(positive) // 2]
        if positive[-1] > LOG_SCALE_RATIO * median:
            axes.set_yscale("log")


def _shares(axes: Axes, stage: Stage, field: FieldDescriptor, _: RunRecords) -> None:
    rounds = stage.rounds
    counts = {"true": [], "false": [], "not reported": []}  # type: dict[str, list[int]]
    for server_round in rounds:
        clients = list(stage.accepted[server_round].values())
        present = display.values(clients, field)
        counts["true"].append(int(sum(present)))
        counts["false"].append(len(present) - int(sum(present)))
        counts["not reported"].append(len(clients) - len(present))
    bottom = [0] * len(rounds)
    labels = [str(r) for r in rounds]
    for (name, values), color in zip(
        counts.items(), ["tab:green", "tab:red", "tab:gray"], strict=True
    ):
        bars = axes.bar(labels, values, bottom=bottom, color=color, label=name)
        axes.bar_label(bars, [str(v) if v else "" for v in values], label_type="center")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set(
        title=plain(f"{stage.name}: {field.name}, clients per round"),
        xlabel="server round",
        ylabel="clients",
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _curves(axes: Axes, stage: Stage, field: FieldDescriptor, _: RunRecords) -> None:
    rounds = stage.rounds
    clients = {node for r in rounds for node in stage.accepted[r]}
    if len(clients) > CLIENT_CAP:
        label = f"10-90% of the {len(clients)} clients"
        _band(axes, _steps(stage, field, rounds), label)
    curves: dict[int, list[tuple[float, float]]] = {}
    for server_round in [] if len(clients) > CLIENT_CAP else rounds:
        for node, meta in sorted(stage.accepted[server_round].items()):
            series = list(getattr(meta, field.name))
            if not series:
                continue
            steps = [
                server_round - 1 + (i + 1) / len(series) for i in range(len(series))
            ]
            curves.setdefault(node, []).extend(zip(steps, series, strict=True))
    for node, points in sorted(curves.items()):
        label = f"node …{node % 10_000:04d}"
        axes.plot(*zip(*points, strict=True), marker=".", label=label)
    if len(rounds) <= MAX_ROUND_TICKS:
        for boundary in rounds[:-1]:
            axes.axvline(boundary, color="grey", linewidth=0.5)
        axes.set_xticks([r - 0.5 for r in rounds], [f"round {r}" for r in rounds])
    step = schema.field_spec(field).series or "element"
    axes.set(
        title=plain(f"{stage.name}: {field.name}, each client {step} by {step}"),
        xlabel=plain(f"{step}s, grouped by server round"),
        ylabel=plain(schema.label(field)),
    )
    if 0 < len(curves) <= LEGEND_LIMIT or len(clients) > CLIENT_CAP:
        axes.legend(fontsize="small", ncol=2)
    elif curves:
        axes.text(
            0.99,
            0.97,
            f"{len(curves)} clients",
            transform=axes.transAxes,
            ha="right",
            va="top",
        )
