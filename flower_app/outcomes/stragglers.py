"""Stragglers: clients far above their round's median duration.

A client whose ROLE_DURATION field exceeds `factor` x the round's median is
slow; in its first accepted report that is start-up cost (a warm-up), not
a straggler. The default factor is `STRAGGLER_FACTOR`, here and nowhere
else.
"""

import statistics
from dataclasses import dataclass

from flower_app.outcomes.model import NodeId, StageOutcomes
from flower_app.outcomes.statistics import by_node
from flower_app.protocol import schema
from flower_meta.v1.options_pb2 import ROLE_DURATION

STRAGGLER_FACTOR = 2.0
"""A client slower than this x its round's median duration is a straggler."""


@dataclass(frozen=True)
class Stragglers:
    """One round's slow clients, by duration."""

    slow: dict[NodeId, float]
    """node -> duration: slower than the factor x the median."""
    warm_up: dict[NodeId, float]
    """As slow, but in the node's first report: start-up cost, not a straggler."""


def stragglers(
    stage: StageOutcomes, at: int, factor: float = STRAGGLER_FACTOR
) -> Stragglers:
    """Round `at`'s clients whose duration exceeds `factor` x the round's median."""
    found = stage.by_round.get(at)
    duration = (
        None
        if stage.message_type is None
        else schema.with_role(stage.message_type, ROLE_DURATION)
    )
    if found is None or duration is None:
        return Stragglers({}, {})
    times = by_node(found.accepted, duration)
    if not times:
        return Stragglers({}, {})
    limit = factor * statistics.median(times.values())
    slow = {node: time for node, time in times.items() if time > limit}
    first = {node for node in slow if stage.first_accepted.get(node) == at}
    return Stragglers(
        {n: t for n, t in slow.items() if n not in first},
        {n: t for n, t in slow.items() if n in first},
    )
