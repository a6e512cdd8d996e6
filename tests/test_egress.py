"""A node's egress policy: what it keeps back, what the server makes of it.

The node config is the operator's; the server accepts a report whose
required field was withheld by policy, and says so in the log line, the
metadata log and the report. The node keeps its own copy of what it sent.
"""

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.serverapp.strategy import FedAdagrad

from flower_app.app import client_app, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.client.egress import EgressPolicy
from flower_app.client.mod import MetadataMod, metadata_mod, report
from flower_app.outcomes.replay import load
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.protocol.rules import Limits, MetadataDecodeError
from flower_app.reporting import tables
from flower_app.server.strategy import MetadataStrategy
from flower_meta.v1.metadata_pb2 import (
    EgressNote,
    EvaluateInstructions,
    EvaluateProcessMetadata,
    TrainProcessMetadata,
)
from tests.conftest import Simulate
from tests.testing import NodeList, answer, delivered

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
    strategy = MetadataStrategy(
        FedAdagrad(), metadata_log=MetadataLog(tmp_path / "server")
    )
    strategy.strategy.current_arrays = {"w": np.zeros(2, dtype=np.float32)}
    strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = 2
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


def _one_instruction(strategy: MetadataStrategy[FedAdagrad]) -> Message:
    """Configure round 1's training for node 1 alone; return its instruction."""
    strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = 1
    (sent,) = delivered(
        strategy.configure_train(
            1,
            ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
            ConfigRecord(),
            NodeList([1]),  # type: ignore[arg-type]
        )
    )
    return sent


def test_a_note_that_names_no_field_is_refused() -> None:
    strategy = MetadataStrategy(FedAdagrad())
    strategy.strategy.current_arrays = {"w": np.zeros(2, dtype=np.float32)}
    sent = _one_instruction(strategy)
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
        assert sorted(report_.egress.values()) == [
            "training_losses: last element only; rounded to 2 significant digits",
            "withheld training_time, converged",
        ]
    (run_dir,) = (tmp_path / "flower-meta-runs").iterdir()
    text = tables.as_text(load(run_dir))
    assert "withheld training_time, converged" in text
    assert "training_losses: last element only; rounded to 2 significant digits" in text


# What the server makes of a note, whatever the node claims.


def _decode(meta: TrainProcessMetadata, note: EgressNote, max_epochs: int) -> None:
    codec.decode(
        TrainProcessMetadata,
        URL,
        meta.SerializeToString(),
        Limits(max_epochs=max_epochs, expected_epochs=5),
        note,
    )


@pytest.mark.parametrize(
    ("meta", "note", "detail"),
    [
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.1] * 8000),
            EgressNote(last_only=["training_losses"]),
            "training_losses: the egress note says only its last element was sent, "
            "the payload holds 8000",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.2, 0.1]),
            EgressNote(last_only=["training_losses"]),
            "training_losses: the egress note says only its last element was sent, "
            "the payload holds 2",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.1] * 5),
            EgressNote(withheld=["training_time"]),
            "training_time: the egress note says it was withheld, the payload holds it",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.1] * 5),
            EgressNote(last_only=["training_time"]),
            "training_time: the egress note says only its last element was sent, "
            "the payload holds a scalar",
        ),
    ],
    ids=["8000 losses", "2 losses", "withheld but sent", "scalar"],
)
def test_a_note_its_payload_contradicts_is_refused_with_its_own_reason(
    meta: TrainProcessMetadata, note: EgressNote, detail: str
) -> None:
    with pytest.raises(MetadataDecodeError) as caught:
        _decode(meta, note, max_epochs=4096)
    assert (caught.value.reason, caught.value.detail) == (
        "egress_note_mismatch",
        detail,
    )
    field = detail.split(":")[0]
    rule = "egress_note.withheld" if "withheld" in detail else "egress_note.last_only"
    assert (caught.value.field_path, caught.value.rule_id) == (field, rule)


def test_a_true_note_still_excuses_what_the_policy_did() -> None:
    _decode(
        TrainProcessMetadata(training_losses=[0.1]),
        EgressNote(withheld=["training_time"], last_only=["training_losses"]),
        max_epochs=4096,
    )


def test_the_epoch_limit_holds_on_what_the_payload_holds_whatever_the_note() -> None:
    many = TrainProcessMetadata(training_time=1.0, training_losses=[0.1] * 8000)
    with pytest.raises(MetadataDecodeError) as caught:
        _decode(many, EgressNote(withheld=["converged"]), max_epochs=4096)
    assert caught.value.reason == "too_many_epochs"


def test_a_contradicting_note_is_a_rejection_and_the_update_counts(
    tmp_path: Path,
) -> None:
    strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
    sent = _one_instruction(strategy)
    record = codec.to_config_record(TrainProcessMetadata(training_time=1.0))
    record["meta"] = TrainProcessMetadata(
        training_time=1.0, training_losses=[0.1] * 8000
    ).SerializeToString()
    record["egress"] = EgressNote(last_only=["training_losses"]).SerializeToString()
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
            "metrics": MetricRecord({"num-examples": 10}),
            "train_metadata": record,
        }
    )
    arrays, _ = strategy.aggregate_train(1, [answer(sent, content)])
    assert arrays is not None
    assert strategy.reports[1].rejected[1].startswith("egress_note_mismatch: ")
    (logged,) = read_log(tmp_path / BINARY_LOG)
    assert logged.rejected.reason == "egress_note_mismatch"


# Every value that leaves the node, with the real example ClientApp.


def _instruction(kind: str, config: ConfigRecord) -> Message:
    content = RecordDict(
        {"arrays": ArrayRecord(task.Net(64, 10).state_dict()), "config": config}
    )
    return Message(content, dst_node_id=4, message_type=kind)


def _left_the_node(reply: Message, record_key: str) -> dict[str, object]:
    """Every value the reply carries about the call: metadata fields and metrics."""
    record = reply.content[record_key]
    assert isinstance(record, ConfigRecord)
    url = str(record["type_url"])
    message_type = (
        TrainProcessMetadata if url.endswith("TrainProcessMetadata") else None
    ) or EvaluateProcessMetadata
    meta = message_type.FromString(bytes(record["meta"]))  # type: ignore[arg-type]
    found: dict[str, object] = {f.name: v for f, v in meta.ListFields()}
    for metrics in reply.content.metric_records.values():
        found |= {f"metric {k}": v for k, v in metrics.items()}
    return found


def _rounded_to(value: object, digits: int) -> bool:
    values = list(value) if isinstance(value, Iterable) else [value]
    return all(isinstance(v, int) or float(f"{v:.{digits}g}") == v for v in values)


@pytest.mark.parametrize(
    ("allow", "expected_train", "expected_evaluate"),
    [
        (
            "training_time",
            {"training_time", "metric num-examples"},
            {"metric num-examples"},
        ),
        (
            "training_time,training_losses,eval_acc,accuracy",
            {"training_time", "training_losses", "metric num-examples"},
            {"accuracy", "metric eval_acc", "metric num-examples"},
        ),
    ],
)
def test_every_value_that_leaves_the_node_obeys_its_policy(
    allow: str, expected_train: set[str], expected_evaluate: set[str]
) -> None:
    context = Context(
        run_id=1,
        node_id=4,
        node_config={
            "partition-id": 1,
            "num-partitions": 10,
            "metadata-allow": allow,
            "metadata-digits": 2,
        },
        state=RecordDict(),
        run_config={},
    )
    settings = Settings.from_run_config(pyproject_run_config())
    train = client_app.app(
        _instruction(
            MessageType.TRAIN, codec.to_config_record(settings.train_instructions)
        ),
        context,
    )
    instructions = EvaluateInstructions(metadata_type_url=codec.EVALUATE_TYPE_URL)
    evaluate = client_app.app(
        _instruction(MessageType.EVALUATE, codec.to_config_record(instructions)),
        context,
    )
    for reply, key, expected in (
        (train, "train_metadata", expected_train),
        (evaluate, "evaluate_metadata", expected_evaluate),
    ):
        sent = _left_the_node(reply, key)
        assert set(sent) == expected
        assert all(_rounded_to(v, 2) for v in sent.values()), sent
