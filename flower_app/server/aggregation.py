"""Convergence-aware choice of the train replies the global model is built from.

`all` aggregates every reply, as the tutorial does. `converged-only` keeps the
replies of clients whose metadata says they converged (the field with role
ROLE_CONVERGED), and falls back to all when none did. `downweight`
multiplies the aggregation weight of every other client (not converged,
convergence unknown, or metadata rejected) by a factor in (0, 1]. The
strategy then aggregates the chosen replies as usual, the train metrics with
the same weights.
"""

from enum import StrEnum

from flwr.app import Message

from flower_app.outcomes.model import NodeId, RoundOutcomes
from flower_app.protocol import schema
from flower_meta.v1.options_pb2 import ROLE_CONVERGED


class Policy(StrEnum):
    """Which admitted replies the wrapped strategy aggregates (`aggregation`).

    Attributes
    ----------
    ALL
        Every admitted reply, as Flower would.
    CONVERGED_ONLY
        Only replies whose metadata says they converged (ROLE_CONVERGED).
    DOWNWEIGHT
        Every admitted reply, non-converged ones weighted by
        `MetadataOptions.downweight_factor`.

    """

    ALL = "all"
    CONVERGED_ONLY = "converged-only"
    DOWNWEIGHT = "downweight"


def converged_nodes(outcomes: RoundOutcomes) -> set[NodeId]:
    """Nodes whose accepted metadata says they converged."""
    return {
        node
        for node, meta in outcomes.accepted.items()
        if (found := schema.with_role(meta.DESCRIPTOR, ROLE_CONVERGED)) is not None
        and getattr(meta, found.name) is True
    }


def choose(
    policy: Policy,
    replies: list[tuple[NodeId, Message]],
    outcomes: RoundOutcomes,
    factor: float,
    weight_key: str,
) -> tuple[list[Message], str]:
    """Return the replies to aggregate under `policy`, and what was done."""
    everyone = [reply for _, reply in replies]
    if policy is Policy.CONVERGED_ONLY:
        converged = converged_nodes(outcomes)
        chosen = [reply for node, reply in replies if node in converged]
        if not chosen:
            return everyone, "converged-only: no client converged, aggregating all"
        return chosen, f"converged-only: aggregating {len(chosen)} converged clients"
    if policy is Policy.DOWNWEIGHT:
        converged = converged_nodes(outcomes)
        others = [reply for node, reply in replies if node not in converged]
        for reply in others:
            (metrics,) = reply.content.metric_records.values()
            metrics[weight_key] = float(metrics[weight_key]) * factor  # type: ignore[arg-type]
        return everyone, f"downweight: {len(others)} clients weighted x{factor:g}"
    return everyone, "all: aggregating every client"
