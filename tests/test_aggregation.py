"""Convergence-aware aggregation and the round summary, on known numbers.

Expected models are computed here from FedAdagrad's update rule (the
oracle), not by asking the strategy.
"""

import logging

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message
from flwr.serverapp.strategy import FedAdagrad

from flower_app.outcomes.model import Outcomes, StageOutcomes
from flower_app.outcomes.stragglers import Stragglers, stragglers
from flower_app.server.aggregation import Policy
from flower_app.server.round_log import capped, round_table
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from flower_meta.v1.metadata_pb2 import MetadataLogRecord, TrainProcessMetadata
from tests.helpers import train_content
from tests.testing import NodeList, answer, delivered

ETA, TAU = 0.1, 1e-3  # FedAdagrad's defaults
DESCRIPTOR = TrainProcessMetadata.DESCRIPTOR


def _meta(converged: bool | None, time: float = 1.0) -> TrainProcessMetadata:
    meta = TrainProcessMetadata(training_time=time, training_losses=[0.5, 0.4])
    if converged is not None:
        meta.converged = converged
    return meta


def _aggregate(
    strategy: MetadataStrategy[FedAdagrad] | FedAdagrad,
    flags: list[bool | str | None],
    weights: list[int],
) -> np.ndarray:
    """Node k sends arrays full of k, weighted by weights[k - 1]; flag "bad" is
    metadata the strategy rejects."""
    nodes = list(range(1, len(flags) + 1))
    sampler = strategy.strategy if isinstance(strategy, MetadataStrategy) else strategy
    sampler.min_available_nodes = sampler.min_train_nodes = len(nodes)
    sent = {
        m.metadata.dst_node_id: m
        for m in delivered(
            strategy.configure_train(
                1,
                ArrayRecord({"w": Array(np.zeros(2))}),
                ConfigRecord(),
                NodeList(nodes),  # type: ignore[arg-type]
            )
        )
    }
    replies: list[Message] = []
    for node, flag, weight in zip(nodes, flags, weights, strict=True):
        meta = None if flag == "bad" else _meta(flag)  # type: ignore[arg-type]
        arrays = ArrayRecord({"w": Array(np.full(2, float(node)))})
        replies.append(answer(sent[node], train_content(arrays, weight, meta)))
    aggregated, _ = strategy.aggregate_train(1, replies)
    assert aggregated is not None
    return aggregated["w"].numpy()


def _fedadagrad_step(average: float) -> float:
    """FedAdagrad's first step from zero towards `average`."""
    return ETA * average / (abs(average) + TAU)


def _run(
    policy: Policy, flags: list[bool | str | None], weights: list[int]
) -> np.ndarray:
    options = MetadataOptions(aggregation=policy, downweight_factor=0.5)
    return _aggregate(MetadataStrategy(FedAdagrad(), metadata=options), flags, weights)


def test_all_is_plain_fedadagrad() -> None:
    ours = _run(Policy.ALL, [True, False, None], [1, 1, 2])
    expected = _fedadagrad_step((1 * 1 + 2 * 1 + 3 * 2) / 4)
    np.testing.assert_allclose(ours, [expected, expected])
    plain = _aggregate(FedAdagrad(), [True, False, None], [1, 1, 2])
    np.testing.assert_array_equal(ours, plain)


def test_converged_only_aggregates_converged_clients() -> None:
    ours = _run(Policy.CONVERGED_ONLY, [True, False, True, "bad"], [1, 5, 3, 7])
    expected = _fedadagrad_step((1 * 1 + 3 * 3) / 4)
    np.testing.assert_allclose(ours, [expected, expected])


def test_converged_only_falls_back_to_all_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="flwr"):
        ours = _run(Policy.CONVERGED_ONLY, [False, None, False], [1, 1, 2])
    expected = _fedadagrad_step((1 + 2 + 3 * 2) / 4)
    np.testing.assert_allclose(ours, [expected, expected])
    assert "converged-only: no client converged, aggregating all" in caplog.text


def test_downweight_scales_every_other_clients_weight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="flwr"):
        ours = _run(Policy.DOWNWEIGHT, [True, False, None, "bad"], [2, 2, 2, 2])
    # weights 2, 1, 1, 1: converged keeps 2; false, unknown, rejected halve
    expected = _fedadagrad_step((1 * 2 + 2 * 1 + 3 * 1 + 4 * 1) / 5)
    np.testing.assert_allclose(ours, [expected, expected])
    assert "downweight: 3 clients weighted x0.5" in caplog.text


@pytest.mark.parametrize("factor", [0.0, -0.5, 1.5])
def test_downweight_factor_must_be_a_fraction(factor: float) -> None:
    with pytest.raises(ValueError, match=r"downweight-factor must be in \(0, 1\]"):
        MetadataStrategy(
            FedAdagrad(), metadata=MetadataOptions(downweight_factor=factor)
        )


def test_a_factor_of_one_is_allowed() -> None:
    ours = _run(Policy.ALL, [True, False], [1, 1])
    options = MetadataOptions(aggregation=Policy.DOWNWEIGHT, downweight_factor=1.0)
    same = _aggregate(
        MetadataStrategy(FedAdagrad(), metadata=options), [True, False], [1, 1]
    )
    np.testing.assert_array_equal(ours, same)


def _stage(times: list[float], first: frozenset[int] = frozenset()) -> StageOutcomes:
    """Round 2 of nodes 1, 2, ... taking `times`; all but `first` were in round 1."""
    outcomes = Outcomes()
    for at in (1, 2):
        for node, time in enumerate(times, start=1):
            if at == 1 and node in first:
                continue
            record = MetadataLogRecord(
                server_round=at, node_id=node, record_key="train_metadata"
            )
            record.accepted.CopyFrom(_meta(True, time if at == 2 else 1.0))
            outcomes.add(record)
    return outcomes.stages["train_metadata"]


def test_planted_slow_clients_are_flagged() -> None:
    stage = _stage([1.0, 1.2, 0.9, 1.1, 5.0, 2.5, 2.3])
    late = stragglers(stage, 2, factor=2.0)
    assert late == Stragglers({5: 5.0, 6: 2.5}, {})  # median 1.2: limit 2.4
    table = round_table("Round 2", stage, 2, 2.0, cap=10)
    assert table.endswith("node 5: 5 s; node 6: 2.5 s")
    assert "training_time (s)" in table
    assert "min 0.9 | median 1.2 | max 5" in table
    assert "converged" in table
    assert "7/7 true" in table


def test_the_straggler_limit_is_exclusive() -> None:
    stage = _stage([1.0, 1.0, 1.0, 2.0, 2.0000001])  # median 1: limit 2
    assert stragglers(stage, 2, factor=2.0).slow == {5: 2.0000001}


def test_a_first_report_is_warm_up_not_a_straggler() -> None:
    stage = _stage([1.0, 1.0, 1.0, 3.0, 4.0], first=frozenset({4}))
    assert stragglers(stage, 2, factor=2.0) == Stragglers({5: 4.0}, {4: 3.0})
    table = round_table("Round 2", stage, 2, 2.0, cap=10)
    assert "warm-up (first report, not a straggler)  node 4: 3 s" in table


def test_summary_of_a_thousand_clients_stays_short() -> None:
    stage = _stage([1.0] * 1000)
    stage.round(2).rejected.update(
        {node: "malformed: garbage" for node in range(2000, 2500)}
    )
    table = round_table("Round 2", stage, 2, 2.0, cap=10)
    assert "1000 accepted, 500 rejected, 0 failed" in table
    assert "... and 490 more" in table
    assert len(table.splitlines()) < 40


@pytest.mark.parametrize(
    ("lines", "text"),
    [
        (["a", "b"], "a; b"),
        (["a", "b", "c"], "a; b; c"),
        (["a", "b", "c", "d"], "a; b; c; ... and 1 more"),
        (["a", "b", "c", "d", "e"], "a; b; c; ... and 2 more"),
    ],
)
def test_capped_says_how_many_more_past_the_cap(lines: list[str], text: str) -> None:
    assert capped(lines, 3) == text
