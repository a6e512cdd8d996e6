"""What a round's replies came to, and its compact summary.

Each sampled node ends in one bucket: accepted (metadata decoded and valid),
rejected (metadata refused; its model update still counts) or failed (error
reply, no reply, or a reply the aggregation cannot take). A node that
replies more than once is counted once, by its first reply. The summary
stays one block however many clients there are: every number field summed
up (its unit from the schema), stragglers, and capped lists of reasons.
"""

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from google.protobuf.message import Message

from flower_app.protocol import display, schema
from flower_app.protocol.schema import Descriptor
from flower_meta.v1.metadata_pb2 import EgressNote
from flower_meta.v1.options_pb2 import ROLE_DURATION

M = TypeVar("M", bound=Message)
NodeId = int


@dataclass
class RoundReport(Generic[M]):
    """The outcome of every sampled node's reply in one stage of one round."""

    accepted: dict[NodeId, M] = field(default_factory=dict)
    rejected: dict[NodeId, str] = field(default_factory=dict)
    failed: dict[NodeId, str] = field(default_factory=dict)
    duplicates: dict[NodeId, int] = field(default_factory=dict)
    """Replies after a node's first, which were ignored."""
    egress: dict[NodeId, EgressNote] = field(default_factory=dict)
    """What accepted nodes' egress policies withheld or reduced."""

    def counts(self) -> str:
        """Count accepted, rejected and failed replies in one phrase."""
        text = (
            f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, "
            f"{len(self.failed)} failed"
        )
        if self.duplicates:
            ignored = sum(self.duplicates.values())
            text += f" ({ignored} duplicate replies ignored)"
        return text


def summary_table(
    title: str,
    report: RoundReport[M],
    descriptor: Descriptor,
    late: display.Stragglers,
    straggler_factor: float,
    cap: int,
) -> str:
    """Summarise one stage of a round in an aligned block of text."""
    rows = [("clients", report.counts())]
    accepted = list(report.accepted.values())
    if accepted:
        for found in descriptor.fields:
            if (text := display.summary(accepted, found)) is not None:
                rows.append((schema.label(found), text))
    duration = schema.with_role(descriptor, ROLE_DURATION)
    if duration is not None:
        unit = schema.unit(duration)
        rows.append(
            (
                f"stragglers (> {straggler_factor:g} x median {duration.name})",
                capped([f"node {n}: {t:.3g} {unit}" for n, t in late.slow.items()], cap)
                or "none",
            )
        )
        if late.warm_up:
            warm = [f"node {n}: {t:.3g} {unit}" for n, t in late.warm_up.items()]
            rows.append(("warm-up (first report, not a straggler)", capped(warm, cap)))
    if report.egress:
        policies = [
            f"node {n}: {display.egress_text(e)}" for n, e in report.egress.items()
        ]
        rows.append(("node egress policies", capped(policies, cap, separator="\n")))
    for label, reasons in (("rejected", report.rejected), ("failed", report.failed)):
        if reasons:
            lines = [f"node {node}: {why}" for node, why in reasons.items()]
            rows.append((label, capped(lines, cap, separator="\n")))
    return text_table(title, rows)


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
