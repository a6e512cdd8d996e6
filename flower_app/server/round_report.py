"""What a round's replies came to, and its compact summary.

Each sampled node ends in one bucket: accepted (metadata decoded and valid),
rejected (metadata refused; its model update still counts) or failed (error
reply or no reply). The summary stays one table however many clients there
are; per-client lines are capped.
"""

import statistics
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from google.protobuf.message import Message

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
    """Summarise the round in an aligned block of text, one fact a line."""
    rows = [("clients", report.counts())]
    accepted = list(report.accepted.values())
    if accepted:
        times = [meta.training_time for meta in accepted]
        converged = sum(meta.converged for meta in accepted)
        finals = [meta.training_losses[-1] for meta in accepted if meta.training_losses]
        rows.append(("converged", f"{converged}/{len(accepted)}"))
        rows.append(
            (
                "training time (s)",
                f"min {min(times):.3f} | median {statistics.median(times):.3f} | "
                f"max {max(times):.3f}",
            )
        )
        if finals:
            rows.append(("mean final loss", f"{statistics.fmean(finals):.4f}"))
    slow = [
        f"node {n}: {t:.3f} s" for n, t in stragglers(report, straggler_factor).items()
    ]
    rows.append(
        (f"stragglers (> {straggler_factor:g} x median)", capped(slow, cap) or "none")
    )
    for label, reasons in (("rejected", report.rejected), ("failed", report.failed)):
        if reasons:
            lines = [f"node {node}: {why}" for node, why in reasons.items()]
            rows.append((label, capped(lines, cap, separator="\n")))
    return text_table(f"Round {server_round}: training metadata", rows)


def text_table(title: str, rows: list[tuple[str, str]]) -> str:
    """Lay out (label, value) rows under a title, values aligned."""
    width = max(len(label) for label, _ in rows)
    lines = [title]
    for label, value in rows:
        first, *rest = value.split("\n")
        lines.append(f"  {label.ljust(width)}  {first}")
        lines += [f"  {'':{width}}  {more}" for more in rest]
    return "\n".join(lines)


def capped(lines: list[str], cap: int, separator: str = "; ") -> str:
    """Join the first `cap` lines, then say how many more there are."""
    shown = separator.join(lines[:cap])
    more = len(lines) - cap
    return f"{shown}{separator}... and {more} more" if more > 0 else shown
