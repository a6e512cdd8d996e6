"""A node's egress policy: what it keeps back, what the server makes of it.

The node config is the operator's; the server accepts a report whose
required field was withheld by policy, and says so in the log line, the
metadata log and the report. The node keeps its own copy of what it sent.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable

from flower_app.app import client_app
from flower_app.app.server_app import CustomFedAdagrad
from flower_app.client.egress import EgressPolicy
from flower_app.client.mod import MetadataMod, metadata_mod, report
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.reporting import tables
from flower_app.reporting.run_records import load
from flower_app.testing import NodeList, answer, delivered
from flower_meta.v1.metadata_pb2 import EgressNote, TrainProcessMetadata
from tests.conftest import Simulate

LOSSES = [1.23456789, 0.87654321, 0.5]
URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"


def _meta() -> TrainProcessMetadata:
    return TrainProcessMetadata(
        training_time=2.3456789, converged=False, training_losses=LOSSES
    )


@pytest.mark.parametrize(
    ("config", "policy"),
    [
        ({}, EgressPolicy()),
        ({"metadata-allow": "*"}, EgressPolicy()),
        (
            {"metadata-allow": " training_time , converged", "metadata-series": "last"},
            EgressPolicy(
                allow=frozenset({"training_time", "converged"}), last_only=True
            ),
        ),
        ({"metadata-digits": 3}, EgressPolicy(digits=3)),
        ({"metadata-egress-log": "/tmp/x"}, EgressPolicy(log=Path("/tmp/x"))),
    ],
)
def test_the_policy_is_read_from_the_node_config(
    config: dict[str, object], policy: EgressPolicy
) -> None:
    assert EgressPolicy.from_node_config(config) == policy


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"metadata-series": "first"}, "metadata-series must be 'all' or 'last'"),
        ({"metadata-digits": -1}, "metadata-digits must be an integer >= 0"),
        ({"metadata-digits": 2.5}, "metadata-digits must be an integer >= 0"),
    ],
)
def test_a_policy_the_node_cannot_follow_is_refused(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EgressPolicy.from_node_config(config)


def test_withheld_last_only_and_rounded_as_the_policy_says() -> None:
    meta = _meta()
    policy = EgressPolicy(
        allow=frozenset({"training_time", "training_losses"}), last_only=True, digits=3
    )
    note = policy.apply(meta)
    assert note == EgressNote(
        withheld=["converged"], last_only=["training_losses"], significant_digits=3
    )
    assert meta == TrainProcessMetadata(training_time=2.35, training_losses=[0.5])
    assert not meta.HasField("converged")


@pytest.mark.parametrize(
    ("losses", "noted"),
    [
        ([], []),
        ([0.5], []),
        ([0.9, 0.5], ["training_losses"]),
        ([1.0, 0.9, 0.5], ["training_losses"]),
    ],
)
def test_last_only_notes_only_a_series_it_shortened(
    losses: list[float], noted: list[str]
) -> None:
    meta = TrainProcessMetadata(training_time=1.0, training_losses=losses)
    note = EgressPolicy(last_only=True).apply(meta)
    assert list(meta.training_losses) == losses[-1:]
    assert list(note.last_only) == noted


def test_the_default_policy_changes_nothing() -> None:
    meta = _meta()
    assert EgressPolicy().apply(meta).ByteSize() == 0
    assert meta == _meta()


def test_a_field_absent_anyway_is_not_called_withheld() -> None:
    meta = TrainProcessMetadata(training_time=1.0)
    note = EgressPolicy(allow=frozenset({"training_time"})).apply(meta)
    assert list(note.withheld) == []


def _client() -> ClientApp:
    app = ClientApp(mods=[MetadataMod(evaluate=None)])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        report(training_losses=LOSSES, converged=False)
        arrays = ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))})
        metrics = MetricRecord({"num-examples": 10})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    return app


def _node(node_id: int, config: dict[str, str | int]) -> Context:
    base: dict[str, str | int] = {"partition-id": 0, "num-partitions": 1}
    return Context(
        run_id=5,
        node_id=node_id,
        node_config=dict(base | config),
        state=RecordDict(),
        run_config={},
    )


def test_two_nodes_two_policies_through_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    strategy = CustomFedAdagrad(metadata_log=MetadataLog(tmp_path / "server"))
    strategy.current_arrays = {"w": np.zeros(2, dtype=np.float32)}
    strategy.min_available_nodes = strategy.min_train_nodes = 2
    sent = {
        m.metadata.dst_node_id: m
        for m in delivered(
            strategy.configure_train(
                1,
                ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
                ConfigRecord(),
                NodeList([1, 2]),  # type: ignore[arg-type]
            )
        )
    }
    contexts = {
        1: _node(
            1,
            {
                "metadata-allow": "training_losses",
                "metadata-egress-log": str(tmp_path / "node-1"),
            },
        ),
        2: _node(2, {"metadata-series": "last", "metadata-digits": 2}),
    }
    replies = [_client()(sent[n], contexts[n]) for n in (1, 2)]
    with caplog.at_level(logging.INFO, logger="flwr"):
        strategy.aggregate_train(
            1,
            [answer(sent[n], r.content) for n, r in zip((1, 2), replies, strict=True)],
        )
    assert strategy.metadata_log is not None
    strategy.metadata_log.close()

    report_ = strategy.reports[1]
    assert (
        report_.counts() == "2 accepted, 0 rejected, 0 failed"
    )  # training_time withheld
    lines = {
        node: next(m for m in caplog.messages if m.startswith(f"round 1 node {node}: "))
        for node in (1, 2)
    }  # fields a later schema adds come after these, absent
    assert lines[1].startswith(
        "round 1 node 1: {'training_time': 'withheld by the node', 'converged': "
        "'withheld by the node', 'training_losses': {'epoch_1': 1.235, "
        "'epoch_2': 0.8765, 'epoch_3': 0.5}"
    )
    assert lines[1].endswith("} (node policy: withheld training_time, converged)")
    assert "'training_losses': {'last_epoch': 0.5}" in lines[2]
    assert lines[2].endswith(
        "} (node policy: training_losses: last element only; rounded to 2 "
        "significant digits)"
    )
    assert "node egress policies" in caplog.text

    server = {r.node_id: r for r in read_log(tmp_path / "server" / BINARY_LOG)}
    assert list(server[1].egress.withheld) == ["training_time", "converged"]
    assert server[2].egress.significant_digits == 2
    (copy,) = read_log(tmp_path / "node-1" / BINARY_LOG)
    assert copy.accepted == server[1].accepted
    assert (copy.node_id, copy.run_id, copy.egress) == (1, 5, server[1].egress)
    assert copy.server_round == server[1].server_round == 1

    text = tables.as_text(load(tmp_path / "server"))
    assert "what node egress policies kept back" in text
    assert "withheld training_time, converged" in text


def test_a_note_that_names_no_field_is_refused() -> None:
    strategy = CustomFedAdagrad()
    strategy.current_arrays = {"w": np.zeros(2, dtype=np.float32)}
    strategy.min_available_nodes = strategy.min_train_nodes = 1
    (sent,) = delivered(
        strategy.configure_train(
            1,
            ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
            ConfigRecord(),
            NodeList([1]),  # type: ignore[arg-type]
        )
    )
    note = EgressNote(withheld=["training_time", "\x1b[31mno_such\nfield"])
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
            "metrics": MetricRecord({"num-examples": 1}),
            "train_metadata": ConfigRecord(
                {
                    "type_url": URL,
                    "meta": b"",
                    "egress": note.SerializeToString(),
                }
            ),
        }
    )
    strategy.aggregate_train(1, [answer(sent, content)])
    reason = strategy.reports[1].rejected[1]
    assert reason.startswith("malformed: the egress note names")
    assert reason.isprintable()


POLICIES: dict[int, dict[str, str | int]] = {
    0: {"metadata-allow": "training_losses,evaluation_time,num_examples,loss,accuracy"},
    1: {"metadata-series": "last", "metadata-digits": 2},
}
"""What each simulated node's operator allows to leave, by partition."""


def _operator(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Set this node's egress policy, as its operator's node config would.

    A simulation gives every node the same node config; this stands in for
    the two operators' own `--node-config`.
    """
    context.node_config.update(POLICIES[int(context.node_config["partition-id"])])
    return call_next(msg, context)


policy_app = ClientApp(mods=[_operator, metadata_mod])
policy_app.train()(client_app.train)
policy_app.evaluate()(client_app.evaluate)


@pytest.mark.e2e
def test_two_nodes_under_two_policies_in_a_simulation(
    simulate: Simulate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    strategy = simulate(policy_app, 2)
    for server_round in (1, 2, 3):
        report_ = strategy.reports[server_round]
        assert report_.counts() == "2 accepted, 0 rejected, 0 failed"
        notes = sorted(report_.egress.values(), key=lambda n: len(n.withheld))
        assert [list(n.withheld) for n in notes] == [[], ["training_time", "converged"]]
        assert [list(n.last_only) for n in notes] == [["training_losses"], []]
    (run_dir,) = (tmp_path / "flower-meta-runs").iterdir()
    text = tables.as_text(load(run_dir))
    assert "withheld training_time, converged" in text
    assert "training_losses: last element only; rounded to 2 significant digits" in text
