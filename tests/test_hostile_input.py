"""Every bad reply has one defined outcome, in unit tests and a real simulation.

Outcome: one log line naming round, node and reason, escaped; that reply
rejected (its update still counts) or failed (it does not); every other
client untouched; nothing escapes `aggregate_train`.
"""

import dataclasses
import io
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdagrad
from flwr.superlink.grid import InMemoryGrid, inmemory_grid

from flower_app.app.settings import Settings
from flower_app.app.task import Net
from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from flower_app.protocol.rules import Limits
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from tests import hostile
from tests.conftest import AppRunConfig, Simulate
from tests.helpers import sample_metadata, train_content
from tests.testing import NodeList, answer, delivered

OPTIONS = MetadataOptions(limits=Limits(expected_epochs=hostile.EXPECTED_EPOCHS))
MODEL = {"arrays": np.zeros(3, dtype=np.float32)}


def _round(
    strategy: MetadataStrategy[FedAdagrad] | FedAdagrad, tamper: hostile.Tamper | None
) -> ArrayRecord | None:
    sampler = strategy.strategy if isinstance(strategy, MetadataStrategy) else strategy
    sampler.min_available_nodes = sampler.min_train_nodes = 3
    sent = {
        m.metadata.dst_node_id: m
        for m in delivered(
            strategy.configure_train(
                3,
                ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))}),
                ConfigRecord(),
                NodeList([1, 2, 3]),  # type: ignore[arg-type]
            )
        )
    }
    replies = []
    for node in (1, 2, 3):
        arrays = ArrayRecord({"w": Array(np.full(3, float(node), dtype=np.float32))})
        content = train_content(arrays, 10, sample_metadata(5))
        if node == 2 and tamper is not None:
            tamper(content)
        replies.append(answer(sent[node], content))
    aggregated, _ = strategy.aggregate_train(3, replies)
    return aggregated


@pytest.mark.parametrize("bad", hostile.BAD_INPUTS, ids=lambda b: b.name)
def test_bad_input_has_one_outcome_alone(
    bad: hostile.BadInput,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(hostile.ARMED_MARKER, str(tmp_path / "executed"))
    strategy = MetadataStrategy(FedAdagrad(), metadata=OPTIONS)
    with caplog.at_level(logging.INFO, logger="flwr"):
        ours = _round(strategy, bad.tamper)

    report = strategy.reports[3]
    assert report.accepted == {1: sample_metadata(5), 3: sample_metadata(5)}
    outcomes = {"rejected": report.rejected, "failed": report.failed}
    assert set(outcomes[bad.outcome]) == {2}
    assert len(report.rejected) + len(report.failed) == 1
    assert outcomes[bad.outcome][2].startswith(bad.expected(first="w"))
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("round ")
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith("round 3 node 2: ")
    assert warnings[0].isprintable()
    assert len(warnings[0]) < 700
    plain = FedAdagrad()
    kept = None if bad.outcome == "failed" else bad.tamper
    expected = _round(plain, kept) if kept is None else _round(plain, _no_metadata)
    assert ours is not None
    assert expected is not None
    np.testing.assert_array_equal(ours["w"].numpy(), expected["w"].numpy())
    assert not (tmp_path / "executed").exists()


def _no_metadata(content: object) -> None:
    """FedAdagrad ignores metadata: a rejected reply aggregates as this."""


def test_a_lone_surrogate_in_the_type_url_is_escaped(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from flower_app.protocol.metadata_log import MetadataLog

    strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, hostile._payload(hostile._VALID, "\ud800"))
    assert strategy.reports[3].rejected[2].startswith("invalid_type_url: ")
    (_, rejected, _) = read_log(tmp_path / BINARY_LOG)
    assert rejected.rejected.type_url == "\\ud800"
    assert "\\ud800" in caplog.text


def test_a_huge_type_url_is_stored_and_shown_bounded(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from flower_app.protocol.metadata_log import MetadataLog

    strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, hostile._payload(hostile._VALID, "t" * 1_000_000))
    assert max(len(r.getMessage()) for r in caplog.records) < 2_000
    assert (tmp_path / BINARY_LOG).stat().st_size < 3_000


def test_an_array_in_another_npy_format_version_still_counts() -> None:
    """Header bytes unlike the server's send the array down the full load."""

    def version_2(content: RecordDict) -> None:
        arrays = content.array_records["arrays"]
        array = arrays["w"]
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array.numpy(), version=(2, 0))
        arrays["w"] = Array(array.dtype, array.shape, array.stype, buffer.getvalue())

    strategy = MetadataStrategy(FedAdagrad(), metadata=OPTIONS)
    ours = _round(strategy, version_2)
    assert sorted(strategy.reports[3].accepted) == [1, 2, 3]
    assert ours is not None
    expected = _round(FedAdagrad(), None)
    assert expected is not None
    np.testing.assert_array_equal(ours["w"].numpy(), expected["w"].numpy())


@pytest.fixture
def quick_run(
    monkeypatch: pytest.MonkeyPatch, app_run_config: AppRunConfig, tmp_path: Path
) -> Path:
    """One round, no federated evaluation, logs in tmp."""
    app_run_config(
        {
            "num-server-rounds": 1,
            "fraction-evaluate": 0.0,
            "output-dir": str(tmp_path / "runs"),
        }
    )
    monkeypatch.setenv(hostile.ARMED_MARKER, str(tmp_path / "executed"))
    return tmp_path


@pytest.mark.e2e
def test_simulation_survives_every_bad_input_and_failure(
    quick_run: Path, simulate: Simulate
) -> None:
    strategy = simulate(hostile.app, hostile.NUM_NODES)
    report = strategy.reports[1]
    assert len(report.accepted) == 1
    expected = {"rejected": [], "failed": []}  # type: dict[str, list[str]]
    first = next(iter(Net(num_features=1, num_classes=2).state_dict()))
    for bad in hostile.BAD_INPUTS:
        expected[bad.outcome].append(bad.expected(first))
    expected["rejected"].append("loss_out_of_range")  # refused by the node itself
    at_node = [why for why in report.rejected.values() if "by the node" in why]
    assert len(at_node) == 1, report.rejected
    assert at_node[0].startswith(
        "loss_out_of_range: refused by the node: training_losses[0]: "
    ), at_node
    reasons = sorted(why.split(":")[0] for why in report.rejected.values())
    assert reasons == sorted(expected["rejected"])
    failures = sorted(report.failed.values())
    assert len(failures) == len(expected["failed"]) + len(hostile.FAILURES)
    for start in expected["failed"]:
        assert any(why.startswith(start) for why in failures), start
    assert "error reply: this ClientApp gives up" in failures
    crashed = [why for why in failures if "crashes" in why]
    assert crashed == [
        r"error reply: this ClientApp crashes\nwith a second line "
        "(RayTaskError(ClientAppException))"
    ], failures
    assert sum(why.startswith("error reply: ") for why in failures) == 2
    assert all(why.isprintable() for why in failures)
    assert not (quick_run / "executed").exists(), "an armed pickle was unpickled"

    (run_dir,) = (quick_run / "runs").iterdir()
    outcomes = sorted(
        r.WhichOneof("outcome") or "" for r in read_log(run_dir / BINARY_LOG)
    )
    assert outcomes.count("accepted") == 1
    assert outcomes.count("rejected") == len(expected["rejected"])
    assert outcomes.count("failed") == len(failures)


ROUND_TIMEOUT = 600.0
"""Long enough for the answering node's first call on any machine, however busy."""


@pytest.mark.e2e
def test_a_silent_node_fails_once_its_round_timed_out(
    quick_run: Path, simulate: Simulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flower's own timeout ends the round; the test, not the machine, says when.

    The clock Flower's in-memory grid reads jumps past the round's timeout as
    soon as the other node's reply is in, so the answering node may take as
    long as a busy machine makes it. The silent node waits for a file the
    test creates once the round was aggregated.
    """
    release = quick_run / "release"
    monkeypatch.setenv(hostile.RELEASE, str(release))
    defaults = Settings.from_context
    monkeypatch.setattr(
        Settings,
        "from_context",
        lambda context: dataclasses.replace(
            defaults(context), round_timeout=ROUND_TIMEOUT
        ),
    )
    replies_in: list[Message] = []
    pull = InMemoryGrid.pull_messages

    def pull_and_count(self: InMemoryGrid, message_ids: Any) -> Any:
        pulled = list(pull(self, message_ids))
        replies_in.extend(pulled)
        return pulled

    def grid_clock() -> float:
        return time.time() + (ROUND_TIMEOUT + 1 if replies_in else 0.0)

    monkeypatch.setattr(InMemoryGrid, "pull_messages", pull_and_count)
    monkeypatch.setattr(
        inmemory_grid, "time", SimpleNamespace(time=grid_clock, sleep=time.sleep)
    )
    aggregate = MetadataStrategy.aggregate_train

    def then_release(
        self: MetadataStrategy[FedAdagrad], server_round: int, replies: list[Message]
    ) -> object:
        try:
            return aggregate(self, server_round, replies)
        finally:
            release.touch()

    monkeypatch.setattr(MetadataStrategy, "aggregate_train", then_release)
    strategy = simulate(hostile.silent_app, 2)
    report = strategy.reports[1]
    assert len(report.accepted) == 1
    assert len(replies_in) == 1
    assert list(report.failed.values()) == ["no reply before the round's timeout"]
