"""One stage of one round in the run's log: an aligned block, however many clients.

Every number field summed up (its unit from the schema), stragglers and
warm-ups, and capped lists of egress policies, refusals and failures, all
read from the run's outcomes (`flower_app.outcomes`).
"""

from flower_app.outcomes.model import StageOutcomes
from flower_app.outcomes.statistics import summary
from flower_app.outcomes.stragglers import stragglers
from flower_app.protocol import schema
from flower_meta.v1.options_pb2 import ROLE_DURATION


def round_table(
    title: str,
    stage: StageOutcomes,
    at: int,
    straggler_factor: float,
    cap: int,
    duplicates: int = 0,
) -> str:
    """Summarise round `at` of `stage` in an aligned block of text.

    `cap` bounds each list of clients; `duplicates` counts replies after a
    node's first, which were ignored.
    """
    found = stage.round(at)
    counts = found.counts()
    if duplicates:
        counts += f" ({duplicates} duplicate replies ignored)"
    rows = [("clients", counts)]
    if found.accepted and stage.message_type is not None:
        for field in stage.message_type.fields:
            if (text := summary(found.accepted, field)) is not None:
                rows.append((schema.label(field), text))
    duration = (
        None
        if stage.message_type is None
        else schema.with_role(stage.message_type, ROLE_DURATION)
    )
    if duration is not None:
        late = stragglers(stage, at, straggler_factor)
        unit = schema.unit(duration)
        slow = [f"node {n}: {t:.3g} {unit}" for n, t in late.slow.items()]
        rows.append(
            (
                f"stragglers (> {straggler_factor:g} x median {duration.name})",
                capped(slow, cap) or "none",
            )
        )
        if late.warm_up:
            warm = [f"node {n}: {t:.3g} {unit}" for n, t in late.warm_up.items()]
            rows.append(("warm-up (first report, not a straggler)", capped(warm, cap)))
    if found.egress:
        policies = [f"node {n}: {text}" for n, text in found.egress.items()]
        rows.append(("node egress policies", capped(policies, cap, separator="\n")))
    for label, reasons in (("rejected", found.rejected), ("failed", found.failed)):
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
