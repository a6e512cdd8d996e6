"""The metadata strategy on constructed rounds: outcomes, logs, containment.

Rounds are built as a SuperLink delivers them: `configure_train` addresses
the sampled nodes, each instruction gets its id, replies answer it.
"""

import ast
import hashlib
import inspect
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdagrad
from google.protobuf import json_format

from flower_app.app.settings import pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, JSON_LOG, MetadataLog, read_log
from flower_app.protocol.rules import MetadataDecodeError
from flower_app.server import strategy as strategy_module
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)
from tests.helpers import sample_metadata, train_content
from tests.testing import NodeList, answer, delivered

MODEL = {"w": np.zeros(4, dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}
URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"


def _arrays(value: float) -> ArrayRecord:
    return ArrayRecord({k: Array(np.full_like(v, value)) for k, v in MODEL.items()})


def _sent(
    strategy: MetadataStrategy[FedAdagrad] | FedAdagrad,
    nodes: list[int],
    evaluate: bool = False,
) -> dict[int, Message]:
    """Configure round 1's training (or evaluation) for `nodes`; return each
    node's instruction."""
    sampler = strategy.strategy if isinstance(strategy, MetadataStrategy) else strategy
    sampler.min_available_nodes = len(nodes)
    sampler.min_train_nodes = sampler.min_evaluate_nodes = len(nodes)
    configure = strategy.configure_evaluate if evaluate else strategy.configure_train
    messages = configure(
        1,
        ArrayRecord({k: Array(v) for k, v in MODEL.items()}),
        ConfigRecord(),
        NodeList(nodes),  # type: ignore[arg-type]
    )
    return {m.metadata.dst_node_id: m for m in delivered(messages)}


def _good(sent: dict[int, Message], node: int, weight: int = 10) -> Message:
    return answer(
        sent[node], train_content(_arrays(node), weight, sample_metadata(node))
    )


def _round(
    strategy: MetadataStrategy[FedAdagrad],
    nodes: list[int],
    replies: Mapping[int, RecordDict | Error],
) -> ArrayRecord | None:
    sent = _sent(strategy, nodes)
    arrays, _ = strategy.aggregate_train(
        1, [answer(sent[node], content) for node, content in replies.items()]
    )
    return arrays


def _bad_record(value: bytes) -> RecordDict:
    content = train_content(_arrays(4.0), 40, None)
    content["train_metadata"] = ConfigRecord({"type_url": URL, "meta": value})
    return content


def _mixed() -> dict[int, RecordDict | Error]:
    """Nodes 1-3 good, 4 undecodable, 5 without metadata, 6 an error reply."""
    return {
        1: train_content(_arrays(1), 10, sample_metadata(1)),
        2: train_content(_arrays(2), 20, sample_metadata(2)),
        3: train_content(_arrays(3), 30, sample_metadata(3)),
        4: _bad_record(b"\xff\xff\xff"),
        5: train_content(_arrays(5), 50, None),
        6: Error(code=0, reason="ClientApp raised"),
    }


def test_every_node_lands_in_one_bucket(caplog: pytest.LogCaptureFixture) -> None:
    strategy = MetadataStrategy(FedAdagrad())
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, [1, 2, 3, 4, 5, 6, 7], _mixed())  # 7 never answers

    report = strategy.reports[1]
    assert report.accepted == {n: sample_metadata(n) for n in (1, 2, 3)}
    assert set(report.rejected) == {4, 5}
    assert report.rejected[4].startswith("malformed: 3 bytes are not a")
    assert report.rejected[5].startswith("missing_record: message has no ConfigRecord")
    assert report.failed == {
        6: "error reply: ClientApp raised",
        7: "no reply before the round's timeout",
    }
    assert "round 1 metadata: 3 accepted, 2 rejected, 2 failed" in caplog.text


def _logged_dict(caplog: pytest.LogCaptureFixture, node: int) -> dict[str, object]:
    """The dict a node's log line shows, checked to be in the tutorial's form.

    Fields the schema gained since the tutorial follow its three, absent.
    """
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(f"round 1 node {node}: {{'training_time': ")
    ]
    shown = ast.literal_eval(line.split(": ", 1)[1])
    assert isinstance(shown, dict)
    first, later = list(shown)[:3], list(shown)[3:]
    assert first == ["training_time", "converged", "training_losses"]
    assert all(shown[name] is None for name in later)
    return {name: shown[name] for name in first}


def test_the_log_line_is_the_tutorials_dict(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(MetadataStrategy(FedAdagrad()), [1, 2], {n: _mixed()[n] for n in (1, 2)})
    assert _logged_dict(caplog, 2) == {
        "training_time": 12.5,
        "converged": True,
        "training_losses": {"epoch_1": 1.0, "epoch_2": 0.5},
    }
    absent = TrainProcessMetadata(training_time=0.0)
    content = train_content(_arrays(1), 10, absent)
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(MetadataStrategy(FedAdagrad()), [8], {8: content})
    assert _logged_dict(caplog, 8) == {
        "training_time": 0.0,
        "converged": None,
        "training_losses": {},
    }


def test_model_aggregation_is_fedadagrads_on_the_admitted_replies() -> None:
    ours = _round(MetadataStrategy(FedAdagrad()), [1, 2, 3, 4, 5, 6], _mixed())
    plain = FedAdagrad()
    sent = _sent(plain, [1, 2, 3, 4, 5])
    expected, _ = plain.aggregate_train(
        1, [answer(sent[n], c) for n, c in _mixed().items() if n != 6]
    )
    assert ours is not None
    assert expected is not None
    for key in MODEL:
        np.testing.assert_array_equal(ours[key].numpy(), expected[key].numpy())


def test_every_outcome_is_appended_to_the_log(tmp_path: Path) -> None:
    metadata_log = MetadataLog(tmp_path)
    strategy = MetadataStrategy(FedAdagrad(), metadata_log=metadata_log, run_id=77)
    _round(strategy, [1, 2, 3, 4, 5, 6, 7], _mixed())

    records = list(read_log(tmp_path / BINARY_LOG))
    assert [r.node_id for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.WhichOneof("outcome") for r in records] == (
        3 * ["accepted"] + 2 * ["rejected"] + 2 * ["failed"]
    )
    assert {(r.run_id, r.server_round, r.record_key) for r in records} == {
        (77, 1, "train_metadata")
    }
    assert records[1].accepted == sample_metadata(2)
    rejected = records[3].rejected
    assert (rejected.reason, rejected.payload, rejected.payload_size) == (
        "malformed",
        b"\xff\xff\xff",
        3,
    )
    assert rejected.payload_sha256 == hashlib.sha256(b"\xff\xff\xff").digest()
    assert (rejected.type_url, rejected.record_key) == (URL, "train_metadata")
    assert records[5].failed.reason == "error reply: ClientApp raised"
    assert all(r.received_at.seconds > 0 for r in records)


def test_a_refusal_names_its_field_and_rule_in_the_log_line_and_the_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metadata_log = MetadataLog(tmp_path)
    strategy = MetadataStrategy(FedAdagrad(), metadata_log=metadata_log)
    negative = TrainProcessMetadata(training_time=-1.0, training_losses=[0.5])
    by_node = train_content(_arrays(3), 30, None)
    by_node["train_metadata"] = codec.refusal_record(
        MetadataDecodeError("loss_out_of_range", "x", "losses[0]\n", "double.gte\x1b"),
        sample_metadata(3),
    )
    replies = {
        1: _bad_record(negative.SerializeToString()),
        2: _bad_record(b"\xff"),
        3: by_node,
    }
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, [1, 2, 3], replies)
    metadata_log.close()

    rejected = [r.rejected for r in read_log(tmp_path / BINARY_LOG)]
    assert [(r.field_path, r.rule_id) for r in rejected] == [
        ("training_time", "double.gte"),
        ("", ""),  # the payload as a whole
        ("losses[0]\\n", "double.gte\\x1b"),  # the node's words, escaped
    ]
    report = strategy.reports[1]
    assert report.rejected[1] == (
        "training_time_out_of_range: training_time: must be finite and >= 0, "
        "got -1 (rule double.gte)"
    )
    assert report.rejected[2].startswith("malformed: ")
    assert not report.rejected[2].endswith(")")  # no rule to name
    assert report.rejected[3].endswith("(rule double.gte\\x1b)")
    assert f"node 1: metadata skipped: {report.rejected[1]}" in caplog.text
    lines = (tmp_path / JSON_LOG).read_text().splitlines()
    first = json.loads(lines[0])["rejected"]
    assert (first["fieldPath"], first["ruleId"]) == ("training_time", "double.gte")


def test_the_json_mirror_holds_every_record_once_when_the_log_closes(
    tmp_path: Path,
) -> None:
    metadata_log = MetadataLog(tmp_path)
    _round(
        MetadataStrategy(FedAdagrad(), metadata_log=metadata_log),
        [1, 2, 3, 4, 5, 6, 7],
        _mixed(),
    )
    metadata_log.close()
    continued = MetadataLog(tmp_path)  # a later run in the same folder
    _round(
        MetadataStrategy(FedAdagrad(), metadata_log=continued),
        [8],
        {8: train_content(_arrays(8), 80, sample_metadata(8))},
    )
    continued.close()

    lines = (tmp_path / JSON_LOG).read_text().splitlines()
    records = list(read_log(tmp_path / BINARY_LOG))
    assert len(lines) == len(records) == 8
    for line, record in zip(lines, records, strict=True):
        assert json_format.Parse(line, MetadataLogRecord()) == record


def test_a_large_rejected_payload_is_kept_as_prefix_size_and_hash(
    tmp_path: Path,
) -> None:
    payload = b"\x0a" + b"\xff" * 99_999  # field 1 with a bad length: malformed
    metadata_log = MetadataLog(tmp_path)
    options = MetadataOptions(limits=MetadataOptions().limits.__class__(200_000))
    strategy = MetadataStrategy(
        FedAdagrad(), metadata=options, metadata_log=metadata_log
    )
    _round(strategy, [1, 2], {1: _bad_record(payload), 2: _mixed()[1]})
    (record, _) = read_log(tmp_path / BINARY_LOG)
    assert record.rejected.payload == payload[:256]
    assert record.rejected.payload_size == 100_000
    assert record.rejected.payload_sha256 == hashlib.sha256(payload).digest()
    assert (tmp_path / BINARY_LOG).stat().st_size < 1_000


def test_a_reply_is_its_addressees_even_when_signed_by_another_node() -> None:
    strategy = MetadataStrategy(FedAdagrad())
    sent = _sent(strategy, [1, 2])
    forged = answer(
        sent[2], train_content(_arrays(2), 20, sample_metadata(5)), sender=1
    )
    strategy.aggregate_train(1, [_good(sent, 1), forged])
    assert strategy.reports[1].accepted == {
        1: sample_metadata(1),
        2: sample_metadata(5),
    }


def test_a_node_that_answers_twice_counts_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = MetadataStrategy(FedAdagrad())
    sent = _sent(strategy, [1, 2])
    again = answer(sent[2], _bad_record(b"\xff"))
    with caplog.at_level(logging.INFO, logger="flwr"):
        arrays, _ = strategy.aggregate_train(
            1, [_good(sent, 1), _good(sent, 2), again, again]
        )
    report = strategy.reports[1]
    assert set(report.accepted) == {1, 2}
    assert not report.rejected
    assert "2 accepted, 0 rejected, 0 failed (2 duplicate replies ignored)" in (
        caplog.text
    )
    once = MetadataStrategy(FedAdagrad())
    sent = _sent(once, [1, 2])
    expected, _ = once.aggregate_train(1, [_good(sent, 1), _good(sent, 2)])
    assert arrays is not None
    assert expected is not None
    np.testing.assert_array_equal(arrays["w"].numpy(), expected["w"].numpy())


@pytest.mark.parametrize("cap", [0, 2, 4, 5])
def test_per_client_lines_stop_at_the_cap(
    cap: int, caplog: pytest.LogCaptureFixture
) -> None:
    strategy = MetadataStrategy(
        FedAdagrad(), metadata=MetadataOptions(client_log_cap=cap)
    )
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, [1, 2, 3, 4, 5], {n: _mixed()[1] for n in (1, 2, 3, 4, 5)})
    lines = [r.message for r in caplog.records if r.message.startswith("round 1 node")]
    assert len(lines) == cap
    if cap < 5:
        assert f"round 1 train: {5 - cap} more clients not shown" in caplog.text
    else:
        assert "more clients not shown" not in caplog.text


def _weights(content: RecordDict, value: float | list[float] | None) -> RecordDict:
    metrics = MetricRecord({"train_loss": 0.5})
    if value is not None:
        metrics["num-examples"] = value
    content["metrics"] = metrics
    return content


def _out_of_shape() -> dict[str, RecordDict]:
    """Replies FedAdagrad would refuse, one kind each."""
    good = train_content(_arrays(9), 10, sample_metadata())
    metadata_as_metrics = train_content(_arrays(9), 10, None)
    metadata_as_metrics["train_metadata"] = MetricRecord({"meta": 1.0})
    metadata_as_arrays = train_content(_arrays(9), 10, None)
    metadata_as_arrays["train_metadata"] = _arrays(1)
    extra_metrics = train_content(_arrays(9), 10, sample_metadata())
    extra_metrics["more"] = MetricRecord({"x": 1.0})
    no_arrays = train_content(_arrays(9), 10, sample_metadata())
    del no_arrays["arrays"]
    other_shape = train_content(
        ArrayRecord(
            {
                "w": Array(np.zeros(5, dtype=np.float32)),
                "b": Array(np.zeros(2, dtype=np.float32)),
            }
        ),
        10,
        sample_metadata(),
    )
    other_names = train_content(
        ArrayRecord(
            {
                "w": Array(np.zeros(4, dtype=np.float32)),
                "c": Array(np.zeros(2, dtype=np.float32)),
            }
        ),
        10,
        sample_metadata(),
    )
    broken_array = train_content(_arrays(9), 10, sample_metadata())
    broken_array.array_records["arrays"]["w"] = Array(
        dtype="float32", shape=(4,), stype="numpy.ndarray", data=b"junk"
    )
    list_weight = train_content(_arrays(9), 10, sample_metadata())
    list_metric = train_content(_arrays(9), 10, sample_metadata())
    list_metric["metrics"] = MetricRecord(
        {"train_loss": [0.5, 0.4], "num-examples": 10}
    )
    return {
        "metadata as MetricRecord": metadata_as_metrics,
        "metadata as ArrayRecord": metadata_as_arrays,
        "two MetricRecords": extra_metrics,
        "no ArrayRecord": no_arrays,
        "other array shape": other_shape,
        "other array names": other_names,
        "array bytes that do not load": broken_array,
        "no weight": _weights(train_content(_arrays(9), 10, sample_metadata()), None),
        "weight as a list": _weights(list_weight, [1.0, 2.0]),
        "NaN weight": _weights(
            train_content(_arrays(9), 10, sample_metadata()), float("nan")
        ),
        "negative weight": _weights(
            train_content(_arrays(9), 10, sample_metadata()), -1
        ),
        "list metric": list_metric,
        "good": good,
    }


@pytest.mark.parametrize("kind", [k for k in _out_of_shape() if k != "good"])
def test_a_reply_the_aggregation_would_refuse_fails_alone(kind: str) -> None:
    replies = {1: _mixed()[1], 2: _mixed()[2], 3: _out_of_shape()[kind]}
    strategy = MetadataStrategy(FedAdagrad())
    arrays = _round(strategy, [1, 2, 3], replies)
    report = strategy.reports[1]
    assert set(report.accepted) == {1, 2}
    assert set(report.failed) == {3}
    assert report.failed[3]
    plain = FedAdagrad()
    sent = _sent(plain, [1, 2])
    good = [answer(sent[n], _mixed()[n]) for n in (1, 2)]
    expected, _ = plain.aggregate_train(1, good)
    assert arrays is not None
    assert expected is not None
    np.testing.assert_array_equal(arrays["w"].numpy(), expected["w"].numpy())


def test_a_round_where_nothing_weighs_anything_aggregates_nothing() -> None:
    replies = {
        n: _weights(train_content(_arrays(n), 0, sample_metadata()), 0) for n in (1, 2)
    }
    strategy = MetadataStrategy(FedAdagrad())
    assert _round(strategy, [1, 2], replies) is None
    assert set(strategy.reports[1].failed) == {1, 2}
    assert "weighs 0" in strategy.reports[1].failed[1]


def _evaluated(
    accuracy: float, examples: int, meta: EvaluateProcessMetadata
) -> RecordDict:
    """What an evaluate function replies: metrics and metadata, unchecked."""
    url = f"type.googleapis.com/{meta.DESCRIPTOR.full_name}"
    return RecordDict(
        {
            "metrics": MetricRecord({"accuracy": accuracy, "num-examples": examples}),
            codec.EVALUATE_RECORD_KEY: ConfigRecord(
                {"type_url": url, "meta": meta.SerializeToString()}
            ),
        }
    )


def test_an_evaluate_round_reads_metadata_and_averages_every_reply(
    tmp_path: Path,
) -> None:
    """Evaluate replies carry no arrays; a refused report still counts its metrics."""
    strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
    sent = _sent(strategy, [1, 2, 3], evaluate=True)
    good = EvaluateProcessMetadata(
        evaluation_time=0.25, num_examples=10, loss=0.5, accuracy=0.9
    )
    bad = EvaluateProcessMetadata(
        evaluation_time=0.25, num_examples=10, loss=0.5, accuracy=1.5
    )
    replies = {
        1: _evaluated(0.9, 10, good),
        2: _evaluated(0.6, 30, good),
        3: _evaluated(0.5, 10, bad),
    }
    metrics = strategy.aggregate_evaluate(
        1, [answer(sent[n], content) for n, content in replies.items()]
    )
    report = strategy.evaluations[1]
    assert set(report.accepted) == {1, 2}
    assert list(report.rejected) == [3]
    assert report.rejected[3].startswith("evaluation_out_of_range: accuracy: ")
    assert report.failed == {}
    assert metrics is not None
    assert metrics["accuracy"] == pytest.approx((0.9 * 10 + 0.6 * 30 + 0.5 * 10) / 50)


def test_the_library_defaults_are_the_apps_documented_defaults() -> None:
    """A strategy built with no options behaves as pyproject.toml's run config."""
    config = pyproject_run_config()
    options = MetadataOptions()
    assert options.client_log_cap == config["client-log-cap"]
    assert options.straggler_factor == config["straggler-factor"]
    assert options.downweight_factor == config["downweight-factor"]
    assert options.aggregation.value == config["aggregation"]
    assert options.limits.max_epochs == config["max-epochs"]
    assert options.limits.max_payload_bytes == config["max-payload-bytes"]
    assert options.types == [TrainProcessMetadata, EvaluateProcessMetadata]
    assert MetadataOptions(train_type=None).types == [EvaluateProcessMetadata]


def test_start_takes_flowers_defaults() -> None:
    ours = inspect.signature(MetadataStrategy.start).parameters
    flowers = inspect.signature(FedAdagrad.start).parameters
    assert {k: p.default for k, p in ours.items()} == {
        k: p.default for k, p in flowers.items()
    }


def test_start_logs_each_centralized_evaluation_durably(tmp_path: Path) -> None:
    """Round 0's evaluation, before any round: in the log once start returns."""
    strategy = MetadataStrategy(
        FedAdagrad(), metadata_log=MetadataLog(tmp_path), run_id=5
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        return MetricRecord({"accuracy": 0.5, "loss": 1.25, "per-class": [0.1, 0.2]})

    model = ArrayRecord({k: Array(v) for k, v in MODEL.items()})
    strategy.start(None, model, num_rounds=0, evaluate_fn=evaluate)  # type: ignore[arg-type]
    (record,) = read_log(tmp_path / BINARY_LOG)  # before close: flushed
    assert record.WhichOneof("outcome") == "centralized"
    assert dict(record.centralized.metrics) == {"accuracy": 0.5, "loss": 1.25}
    assert (record.run_id, record.server_round, record.node_id) == (5, 0, 0)


def test_start_without_an_evaluation_logs_none(tmp_path: Path) -> None:
    model = ArrayRecord({k: Array(v) for k, v in MODEL.items()})
    for evaluate_fn in (None, lambda server_round, arrays: None):
        strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
        strategy.start(None, model, num_rounds=0, evaluate_fn=evaluate_fn)  # type: ignore[arg-type]
        assert strategy.metadata_log is not None
        strategy.metadata_log.close()
    assert list(read_log(tmp_path / BINARY_LOG)) == []


def test_the_summary_line_times_reading_and_syncing_apart(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    readings = iter([10.0, 10.5, 10.75])  # start, read, synced
    monkeypatch.setattr(
        strategy_module, "time", SimpleNamespace(perf_counter=lambda: next(readings))
    )
    strategy = MetadataStrategy(FedAdagrad())
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, [1], {1: _mixed()[1]})
    assert (
        "round 1 metadata: 1 accepted, 0 rejected, 0 failed "
        "(read in 500 ms, log synced in 250 ms)"
    ) in caplog.messages


def test_the_global_models_shape_wins_even_when_most_replies_differ() -> None:
    strategy = MetadataStrategy(FedAdagrad())
    other = ArrayRecord(
        {k: Array(np.zeros(v.size + 1, v.dtype)) for k, v in MODEL.items()}
    )
    _round(
        strategy,
        [1, 2, 3],
        {
            1: train_content(_arrays(1), 10, sample_metadata(1)),
            2: train_content(other, 10, sample_metadata(2)),
            3: train_content(other, 10, sample_metadata(3)),
        },
    )
    report = strategy.reports[1]
    assert set(report.accepted) == {1}
    assert report.failed == dict.fromkeys(
        (2, 3), "arrays differ in names or shapes from the global model's"
    )


def test_records_of_a_strategy_told_no_run_say_run_0(tmp_path: Path) -> None:
    strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(tmp_path))
    _round(strategy, [1], {1: train_content(_arrays(1), 10, sample_metadata(1))})
    assert strategy.metadata_log is not None
    strategy.metadata_log.close()
    assert [r.run_id for r in read_log(tmp_path / BINARY_LOG)] == [0]


def test_replies_with_other_metric_names_all_count_on_the_shared_metrics() -> None:
    odd = train_content(_arrays(3), 10, sample_metadata(3))
    odd["metrics"] = MetricRecord({"accuracy": 0.5, "num-examples": 10})
    replies = {n: train_content(_arrays(n), 10, sample_metadata(n)) for n in (1, 2)}
    strategy = MetadataStrategy(FedAdagrad())
    sent = _sent(strategy, [1, 2, 3])
    arrays, metrics = strategy.aggregate_train(
        1, [answer(sent[n], c) for n, c in (replies | {3: odd}).items()]
    )
    assert set(strategy.reports[1].accepted) == {1, 2, 3}
    assert metrics == MetricRecord()  # train_loss and accuracy: not every reply's

    plain = FedAdagrad()
    plain_sent = _sent(plain, [1, 2, 3])
    only_weights = {n: train_content(_arrays(n), 10, None) for n in (1, 2, 3)}
    for content in only_weights.values():
        content["metrics"] = MetricRecord({"num-examples": 10})
    expected, _ = plain.aggregate_train(
        1, [answer(plain_sent[n], c) for n, c in only_weights.items()]
    )
    assert arrays is not None
    assert expected is not None
    for key in MODEL:
        np.testing.assert_array_equal(arrays[key].numpy(), expected[key].numpy())


def test_a_metric_every_reply_holds_is_averaged_by_the_weights() -> None:
    replies = {n: train_content(_arrays(n), 10 * n, sample_metadata(n)) for n in (1, 2)}
    replies[1]["metrics"] = MetricRecord({"train_loss": 0.2, "num-examples": 10})
    replies[2]["metrics"] = MetricRecord(
        {"train_loss": 0.8, "num-examples": 30, "extra": 1.0}
    )
    strategy = MetadataStrategy(FedAdagrad())
    sent = _sent(strategy, [1, 2])
    _, metrics = strategy.aggregate_train(
        1, [answer(sent[n], c) for n, c in replies.items()]
    )
    assert metrics is not None
    assert dict(metrics) == {"train_loss": pytest.approx((0.2 * 10 + 0.8 * 30) / 40)}


def test_a_metric_of_another_length_fails_naming_it_cut_at_80() -> None:
    strategy = MetadataStrategy(FedAdagrad())
    long_name = "m" * 300
    replies = {n: train_content(_arrays(n), 10, sample_metadata(n)) for n in (1, 2, 3)}
    for n in (1, 2):
        replies[n]["metrics"] = MetricRecord({long_name: 0.5, "num-examples": 10})
    replies[3]["metrics"] = MetricRecord({long_name: [0.5, 0.4], "num-examples": 10})
    _round(strategy, [1, 2, 3], replies)
    assert strategy.reports[1].failed == {
        3: f"metric '{'m' * 80}... (300 characters in all)' holds a list of 2, "
        "most replies a number"
    }


def test_a_stage_without_a_metadata_type_says_so_not_zero_of_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = MetadataStrategy(
        FedAdagrad(), metadata=MetadataOptions(train_type=None, evaluate_type=None)
    )
    replies: dict[int, RecordDict | Error] = {
        n: train_content(_arrays(n), 10 * n, sample_metadata(1)) for n in (1, 2, 3)
    }
    replies[4] = Error(code=0, reason="ClientApp raised")
    with caplog.at_level(logging.INFO, logger="flwr"):
        _round(strategy, [1, 2, 3, 4], replies)
    assert (
        "round 1 train: 4 replies, 1 failed; no metadata read "
        "(MetadataOptions train_type is None)"
    ) in caplog.text
    assert "0 accepted, 0 rejected" not in caplog.text
