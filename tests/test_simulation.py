"""An in-process Flower simulation: real ClientApps train and their metadata arrives."""

import math
from collections import Counter
from pathlib import Path

import pytest
from google.protobuf.message import Message

from flower_app import cli
from flower_app.app.client_app import app as client_app
from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from flower_meta.v1.metadata_pb2 import EvaluateProcessMetadata, TrainProcessMetadata
from tests.conftest import Simulate
from tests.helpers import RUNS_FOLDER, assert_report_plots

NODES = 3


def _train(meta: Message) -> TrainProcessMetadata:
    assert isinstance(meta, TrainProcessMetadata)
    return meta


pytestmark = pytest.mark.e2e


def test_metadata_reaches_the_strategy_every_round(
    simulate: Simulate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    strategy = simulate(client_app, NODES)
    assert sorted(strategy.reports) == [1, 2, 3]
    for report in strategy.reports.values():
        assert not report.rejected
        assert not report.failed
        assert len(report.accepted) == NODES
        for meta in report.accepted.values():
            assert isinstance(meta, TrainProcessMetadata)
            assert 0 < meta.training_time < 60
            assert len(meta.training_losses) == 5  # local-epochs in pyproject.toml
            assert all(
                0 < loss < 10 and math.isfinite(loss) for loss in meta.training_losses
            )
            assert meta.HasField("converged")
    last_round = [_train(m) for m in strategy.reports[3].accepted.values()]
    first_round = [_train(m) for m in strategy.reports[1].accepted.values()]
    mean_final = sum(m.training_losses[-1] for m in last_round) / NODES
    mean_first = sum(m.training_losses[0] for m in first_round) / NODES
    assert mean_final < mean_first

    (run_dir,) = (tmp_path / RUNS_FOLDER).iterdir()
    assert_report_plots(run_dir)  # the ServerApp wrote the report
    assert cli.main(["report", str(run_dir)]) == 0
    assert cli.main(["decode", "--log", str(run_dir)]) == 0

    records = list(read_log(run_dir / BINARY_LOG))
    outcomes = Counter(r.WhichOneof("outcome") for r in records)
    assert outcomes == {"accepted": 3 * NODES, "evaluated": 3 * 2, "centralized": 4}
    assert {r.server_round for r in records} == {0, 1, 2, 3}
    for evaluations in strategy.evaluations.values():
        assert len(evaluations.accepted) == 2  # fraction-evaluate 0.5; min-nodes 2
        for evaluation in evaluations.accepted.values():
            assert isinstance(evaluation, EvaluateProcessMetadata)
            assert 0 <= evaluation.accuracy <= 1
            assert evaluation.num_examples > 0
