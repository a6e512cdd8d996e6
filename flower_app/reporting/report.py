"""A run's report from its metadata log: a summary table and four PNG plots."""

import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from flower_app.protocol.metadata_log import BINARY_LOG, CorruptLogError, read_log

REPORT_FOLDER = "report"
PLOTS = ("loss_curves.png", "training_time.png", "converged.png", "accuracy.png")


@dataclass
class RunRecords:
    """A run's log records, by round and node."""

    train: dict[int, dict[int, TrainProcessMetadata]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    evaluate: dict[int, dict[int, EvaluateProcessMetadata]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    rejected: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    damage: str = ""
    """Why the log ended early, if its tail is damaged."""

    def add(self, record: MetadataLogRecord) -> None:
        """File one record under its round and node."""
        outcome = record.WhichOneof("outcome")
        if outcome == "accepted":
            self.train[record.server_round][record.node_id] = record.accepted
        elif outcome == "evaluated":
            self.evaluate[record.server_round][record.node_id] = record.evaluated
        elif outcome == "rejected":
            self.rejected[record.server_round] += 1


def load(run_dir: Path) -> RunRecords:
    """Read a run folder's metadata log; a damaged tail keeps what precedes it."""
    log_path = run_dir / BINARY_LOG
    if not log_path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no {BINARY_LOG}: is it a run folder?")
    records = RunRecords()
    try:
        for record in read_log(log_path):
            records.add(record)
    except CorruptLogError as err:
        records.damage = str(err)
    return records


def summary(records: RunRecords) -> Table:
    """One row a round: clients, convergence, time, loss and accuracy."""
    table = Table(title="Metadata by round")
    for column in (
        "round",
        "accepted",
        "rejected",
        "converged",
        "median time (s)",
        "mean final loss",
        "eval accuracy",
    ):
        table.add_column(column, justify="right")
    for server_round in sorted(set(records.train) | set(records.evaluate)):
        train = list(records.train[server_round].values())
        finals = [m.training_losses[-1] for m in train if m.training_losses]
        table.add_row(
            str(server_round),
            str(len(train)),
            str(records.rejected[server_round]),
            f"{_converged_fraction(train):.0%}" if train else "-",
            f"{statistics.median(m.training_time for m in train):.3f}"
            if train
            else "-",
            f"{statistics.fmean(finals):.4f}" if finals else "-",
            _shown(_accuracy(records.evaluate[server_round])),
        )
    return table


def summary_text(records: RunRecords) -> str:
    """Render the summary table as plain text, for the log."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(summary(records))
    return console.export_text().rstrip()


def write_plots(records: RunRecords, folder: Path) -> list[Path]:
    """Draw the four plots into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rounds = sorted(records.train)
    drawers = (_loss_curves, _training_times, _converged, _eval_accuracy)
    paths = []
    for name, draw in zip(PLOTS, drawers, strict=True):
        figure = Figure(figsize=(8, 4.5), dpi=100, layout="tight")
        draw(figure.subplots(), records, rounds)
        figure.savefig(folder / name)
        paths.append(folder / name)
    return paths


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _converged_fraction(train: list[TrainProcessMetadata]) -> float:
    return sum(m.converged for m in train) / len(train)


def _accuracy(evaluations: dict[int, EvaluateProcessMetadata]) -> float | None:
    """Accuracy over all clients' examples, or None without any."""
    examples = sum(e.num_examples for e in evaluations.values())
    if not examples:
        return None
    return sum(e.accuracy * e.num_examples for e in evaluations.values()) / examples


def _loss_curves(axes: Axes, records: RunRecords, rounds: list[int]) -> None:
    curves: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for server_round in rounds:
        for node, meta in records.train[server_round].items():
            epochs = len(meta.training_losses)
            curves[node] += [
                (server_round - 1 + (epoch + 1) / epochs, loss)
                for epoch, loss in enumerate(meta.training_losses)
            ]
    for node, points in sorted(curves.items()):
        axes.plot(
            *zip(*points, strict=True), marker=".", label=f"node …{node % 10_000:04d}"
        )
    for boundary in rounds[:-1]:
        axes.axvline(boundary, color="grey", linewidth=0.5)
    axes.set_xticks([r - 0.5 for r in rounds], [f"round {r}" for r in rounds])
    axes.set(
        title="Per-client training loss, epoch by epoch, by round",
        xlabel="local epochs, grouped by server round",
        ylabel="mean cross-entropy (nats / example)",
    )
    if curves:
        axes.legend(fontsize="small", ncol=2)


def _training_times(axes: Axes, records: RunRecords, rounds: list[int]) -> None:
    times = [[m.training_time for m in records.train[r].values()] for r in rounds]
    if rounds:
        axes.boxplot(times, tick_labels=[str(r) for r in rounds])
    axes.set(
        title="Training time per client, by round",
        xlabel="server round",
        ylabel="local training time (s)",
    )


def _converged(axes: Axes, records: RunRecords, rounds: list[int]) -> None:
    reports = [list(records.train[r].values()) for r in rounds]
    bars = axes.bar(
        [str(r) for r in rounds],
        [_converged_fraction(train) for train in reports],
        label="converged clients",
    )
    labels = [f"{sum(m.converged for m in train)}/{len(train)}" for train in reports]
    axes.bar_label(bars, labels)
    axes.set(
        title="Share of clients that converged, by round",
        xlabel="server round",
        ylabel="converged fraction",
        ylim=(0, 1),
    )
    axes.legend()


def _eval_accuracy(axes: Axes, records: RunRecords, _: list[int]) -> None:
    means = {r: _accuracy(records.evaluate[r]) for r in sorted(records.evaluate)}
    for server_round in means:
        values = [e.accuracy for e in records.evaluate[server_round].values()]
        axes.scatter([server_round] * len(values), values, color="grey", s=12)
    shown = {r: mean for r, mean in means.items() if mean is not None}
    axes.plot(list(shown), list(shown.values()), marker="o", label="weighted mean")
    axes.set_xticks(list(means))
    axes.scatter([], [], color="grey", s=12, label="one client")
    axes.set(
        title="Federated evaluation accuracy of the global model, by round",
        xlabel="server round",
        ylabel="accuracy (share correct)",
        ylim=(0, 1.02),
    )
    axes.legend()
