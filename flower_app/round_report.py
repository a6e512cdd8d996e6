"""What a round's replies came to, and its compact summary.

Each sampled node ends in one bucket: accepted (metadata decoded and valid),
rejected (metadata refused; its model update still counts) or failed (error
reply or no reply). The summary stays one table however many clients there
are; per-client lines are capped.
"""

import io
import statistics
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

M = TypeVar("M", bound=Message)
NodeId = int


@dataclass
class RoundReport(Generic[M]):
    """The outcome of every sampled node's reply in one stage of one round."""

    accepted: dict[NodeId, M] = field(default_factory=dict)
    rejected: dict[NodeId, str] = field(default_factory=dict)
    failed: dict[NodeId, str] = field(default_factory=dict)

    def counts(self) -> str:
        """Count accepted, rejected and failed replies in one phrase."""
        return (
            f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, "
            f"{len(self.failed)} failed"
        )


def stragglers(
    report: RoundReport[TrainProcessMetadata], factor: float
) -> dict[NodeId, float]:
    """Nodes whose training took more than `factor` x the round's median time."""
    times = {node: meta.training_time for node, meta in report.accepted.items()}
    if not times:
        return {}
    limit = factor * statistics.median(times.values())
    return {node: time for node, time in times.items() if time > limit}


def summary_table(
    server_round: int,
    report: RoundReport[TrainProcessMetadata],
    straggler_factor: float,
    cap: int,
) -> str:
    """Render the round's summary as a small text table."""
    table = Table(title=f"Round {server_round}: training metadata", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("clients", report.counts())
    accepted = list(report.accepted.values())
    if accepted:
        times = [meta.training_time for meta in accepted]
        converged = sum(meta.converged for meta in accepted)
        finals = [meta.training_losses[-1] for meta in accepted if meta.training_losses]
        table.add_row("converged", f"{converged}/{len(accepted)}")
        table.add_row(
            "training time (s)",
            f"min {min(times):.3f} | median {statistics.median(times):.3f} | "
            f"max {max(times):.3f}",
        )
        if finals:
            table.add_row("mean final loss", f"{statistics.fmean(finals):.4f}")
    slow = stragglers(report, straggler_factor)
    table.add_row(
        f"stragglers (> {straggler_factor:g} x median)",
        capped([f"node {n}: {t:.3f} s" for n, t in slow.items()], cap) or "none",
    )
    for label, reasons in (("rejected", report.rejected), ("failed", report.failed)):
        if reasons:
            lines = [f"node {node}: {why}" for node, why in reasons.items()]
            table.add_row(label, capped(lines, cap, separator="\n"))
    return render(table)


def render(table: Table) -> str:
    """Render a rich table as plain text for the log."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text().rstrip()


def capped(lines: list[str], cap: int, separator: str = "; ") -> str:
    """Join the first `cap` lines, then say how many more there are."""
    shown = separator.join(lines[:cap])
    more = len(lines) - cap
    return f"{shown}{separator}... and {more} more" if more > 0 else shown
