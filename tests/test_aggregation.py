"""Convergence-aware aggregation and straggler detection, on known arrays."""

import logging

import numpy as np
import pytest
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import Array, ArrayRecord, Message
from flwr.serverapp.strategy import FedAdagrad

from flower_app.server.aggregation import Policy
from flower_app.server.round_report import RoundReport, stragglers, summary_table
from flower_app.server.strategy import CustomFedAdagrad, MetadataPolicy
from tests.conftest import reply_from, train_content

ETA, TAU = 0.1, 1e-3  # FedAdagrad's defaults


def _meta(converged: bool | None, time: float = 1.0) -> TrainProcessMetadata:
    meta = TrainProcessMetadata(training_time=time, training_losses=[0.5, 0.4])
    if converged is not None:
        meta.converged = converged
    return meta


def _replies(converged: list[bool | None], weights: list[int]) -> list[Message]:
    """Node k sends arrays full of k, weighted by `weights[k - 1]`."""
    return [
        reply_from(
            node,
            train_content(
                ArrayRecord({"w": Array(np.full(2, float(node)))}), weight, _meta(flag)
            ),
        )
        for node, (flag, weight) in enumerate(zip(converged, weights, strict=True), 1)
    ]


def _aggregate(strategy: FedAdagrad, replies: list[Message]) -> np.ndarray:
    strategy.current_arrays = {"w": np.zeros(2)}
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    return arrays["w"].numpy()


def _fedadagrad_step(average: float) -> float:
    """FedAdagrad's first step from zero towards `average`."""
    return ETA * average / (abs(average) + TAU)


def _run(
    policy: Policy, converged: list[bool | None], weights: list[int]
) -> np.ndarray:
    strategy = CustomFedAdagrad(policy=MetadataPolicy(policy, downweight_factor=0.5))
    return _aggregate(strategy, _replies(converged, weights))


def test_all_is_plain_fedadagrad() -> None:
    ours = _run(Policy.ALL, [True, False, None], [1, 1, 2])
    expected = _fedadagrad_step((1 * 1 + 2 * 1 + 3 * 2) / 4)
    np.testing.assert_allclose(ours, [expected, expected])
    plain = _aggregate(FedAdagrad(), _replies([True, False, None], [1, 1, 2]))
    np.testing.assert_array_equal(ours, plain)


def test_converged_only_aggregates_converged_clients() -> None:
    ours = _run(Policy.CONVERGED_ONLY, [True, False, True], [1, 5, 3])
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


def test_downweight_scales_the_others_weight() -> None:
    ours = _run(Policy.DOWNWEIGHT, [True, False, None], [2, 2, 2])
    expected = _fedadagrad_step((1 * 2 + 2 * 1 + 3 * 1) / 4)
    np.testing.assert_allclose(ours, [expected, expected])


def test_downweight_factor_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match=r"downweight-factor must be in \(0, 1\]"):
        CustomFedAdagrad(policy=MetadataPolicy(Policy.DOWNWEIGHT, downweight_factor=0))


def _report(times: list[float]) -> RoundReport[TrainProcessMetadata]:
    return RoundReport(
        accepted={node: _meta(True, t) for node, t in enumerate(times, start=1)}
    )


def test_planted_slow_clients_are_flagged() -> None:
    report = _report([1.0, 1.2, 0.9, 1.1, 5.0, 2.5])
    assert stragglers(report, factor=2.0) == {5: 5.0, 6: 2.5}
    table = summary_table(4, report, straggler_factor=2.0, cap=10)
    assert "node 5: 5.000 s; node 6: 2.500 s" in table
    assert "min 0.900 | median 1.150 | max 5.000" in table
    assert "6/6" in table


def test_summary_of_a_thousand_clients_stays_short() -> None:
    report = _report([1.0] * 1000)
    report.rejected = {node: "malformed: garbage" for node in range(2000, 2500)}
    table = summary_table(1, report, straggler_factor=2.0, cap=10)
    assert "1000 accepted, 500 rejected, 0 failed" in table
    assert "... and 490 more" in table
    assert len(table.splitlines()) < 40
