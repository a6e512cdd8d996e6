"""Every bad reply has one defined outcome, in unit tests and a real simulation.

Outcome: one log line naming round, node and reason; that reply's metadata
rejected (and logged with its reason); model aggregation and every other
client's metadata untouched; nothing escapes `aggregate_train`.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Context, Message
from flwr.serverapp.strategy import FedAdagrad

from flower_app.app.settings import Settings
from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from flower_app.protocol.validation import Limits, Reason
from flower_app.server.strategy import CustomFedAdagrad
from tests import hostile
from tests.conftest import Simulate, reply_from, sample_metadata, train_content

LIMITS = Limits(expected_epochs=hostile.EXPECTED_EPOCHS)
CURRENT = {"w": np.zeros(3, dtype=np.float32)}


def _reply(node: int) -> Message:
    arrays = ArrayRecord({"w": Array(np.full(3, float(node), dtype=np.float32))})
    return reply_from(node, train_content(arrays, 10, sample_metadata(5)))


def _aggregate(strategy: FedAdagrad, replies: list[Message]) -> ArrayRecord | None:
    strategy.current_arrays = {k: v.copy() for k, v in CURRENT.items()}
    arrays, _ = strategy.aggregate_train(3, replies)
    return arrays


@pytest.mark.parametrize(("name", "tamper", "reason"), hostile.BAD_INPUTS)
def test_bad_input_is_rejected_alone(
    name: str,
    tamper: hostile.Tamper,
    reason: Reason,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(hostile.ARMED_MARKER, str(tmp_path / "executed"))
    replies = [_reply(node) for node in (1, 2, 3)]
    tamper(replies[1].content)

    strategy = CustomFedAdagrad(limits=LIMITS)
    with caplog.at_level(logging.INFO, logger="flwr"):
        ours = _aggregate(strategy, replies)

    report = strategy.reports[3]
    assert set(report.accepted) == {1, 3}
    assert report.accepted[1] == sample_metadata(5)
    assert report.rejected[2].startswith(f"{reason}: ")
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"round 3 node 2: metadata skipped: {report.rejected[2]}"]
    plain = _aggregate(FedAdagrad(), replies)
    assert ours is not None
    assert plain is not None
    np.testing.assert_array_equal(ours["w"].numpy(), plain["w"].numpy())
    assert not (tmp_path / "executed").exists()


@pytest.fixture
def quick_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """One round, no federated evaluation, a 20 s round timeout, logs in tmp."""
    defaults = Settings.from_context

    def settings(context: Context) -> Settings:
        return dataclasses.replace(
            defaults(context),
            num_server_rounds=1,
            fraction_evaluate=0.0,
            round_timeout=20.0,
            output_dir=str(tmp_path / "runs"),
        )

    monkeypatch.setattr(Settings, "from_context", settings)
    monkeypatch.setenv(hostile.ARMED_MARKER, str(tmp_path / "executed"))
    return tmp_path


def test_simulation_survives_every_bad_input_and_failure(
    quick_run: Path, simulate: Simulate
) -> None:
    strategy = simulate(hostile.app, hostile.NUM_NODES)
    report = strategy.reports[1]
    assert len(report.accepted) == 1
    reasons = sorted(why.split(":")[0] for why in report.rejected.values())
    assert reasons == sorted(reason for _, _, reason in hostile.BAD_INPUTS)
    failures = list(report.failed.values())
    assert len(failures) == len(hostile.FAILURES)
    assert sum(why.startswith("error reply: ") for why in failures) == 2
    assert "error reply: this ClientApp gives up" in failures
    assert "no reply before the round's timeout" in failures
    assert not (quick_run / "executed").exists(), "an armed pickle was unpickled"

    (run_dir,) = (quick_run / "runs").iterdir()
    records = list(read_log(run_dir / BINARY_LOG))
    outcomes = sorted(r.WhichOneof("outcome") or "" for r in records)
    assert outcomes == ["accepted"] + ["rejected"] * len(hostile.BAD_INPUTS)
