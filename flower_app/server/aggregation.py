"""Convergence-aware choice of the train replies the global model is built from.

`all` aggregates every reply, as the tutorial does. `converged-only` keeps the
replies of clients whose metadata says they converged, and falls back to all
when none did. `downweight` multiplies the aggregation weight of every other
client (not converged, convergence unknown, or metadata rejected) by a factor
in (0, 1]. FedAdagrad then aggregates the chosen replies as usual, the train
metrics with the same weights.
"""

from enum import StrEnum

from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import Message

from flower_app.server.round_report import NodeId, RoundReport


class Policy(StrEnum):
    """The run config's `aggregation` choices."""

    ALL = "all"
    CONVERGED_ONLY = "converged-only"
    DOWNWEIGHT = "downweight"


def converged_nodes(report: RoundReport[TrainProcessMetadata]) -> set[NodeId]:
    """Nodes whose accepted metadata says they converged."""
    return {node for node, meta in report.accepted.items() if meta.converged}


def choose(
    policy: Policy,
    replies: list[tuple[NodeId, Message]],
    report: RoundReport[TrainProcessMetadata],
    factor: float,
    weight_key: str,
) -> tuple[list[Message], str]:
    """Return the replies to aggregate under `policy`, and what was done."""
    converged = converged_nodes(report)
    everyone = [reply for _, reply in replies]
    if policy is Policy.CONVERGED_ONLY:
        chosen = [reply for node, reply in replies if node in converged]
        if not chosen:
            return everyone, "converged-only: no client converged, aggregating all"
        return chosen, f"converged-only: aggregating {len(chosen)} converged clients"
    if policy is Policy.DOWNWEIGHT:
        others = [
            reply
            for node, reply in replies
            if node not in converged and reply.has_content()
        ]
        for reply in others:
            for metrics in reply.content.metric_records.values():
                if weight_key in metrics:
                    metrics[weight_key] = float(metrics[weight_key]) * factor  # type: ignore[arg-type]
        return everyone, f"downweight: {len(others)} clients weighted x{factor:g}"
    return everyone, "all: aggregating every client"
