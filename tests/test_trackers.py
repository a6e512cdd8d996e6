"""MLflow and TensorBoard hold what the metadata log holds, live and exported.

Read back with the trackers' own readers (`MlflowClient`, TensorBoard's
`EventAccumulator`) and compared, value by value, with the metadata log.
"""

import json
import logging
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from flower_app import cli
from flower_app.app.client_app import app as client_app
from flower_app.outcomes.replay import RUN_CONFIG
from flower_app.protocol.metadata_log import BINARY_LOG, LOCK, MetadataLog, read_log
from flower_app.protocol.records import written_at
from flower_app.reporting.trackers import (
    TRACKED_CLIENTS,
    Guarded,
    MlflowBackend,
    Scalar,
    TensorBoardBackend,
    Text,
    Tracker,
    export,
    replay,
    trackers,
)
from flower_app.reporting.trackers.convert import BATCH
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    Rejection,
)
from tests.conftest import AppRunConfig, Simulate
from tests.helpers import sample_metadata
from tests.testing import VENV_BIN

Expected = dict[str, list[tuple[int, float]]]
"""metric -> [(step, value)], in the order they were logged"""


def _expected(run_dir: Path) -> Expected:
    """What the trackers must show, computed from the log, not by the trackers."""
    found: Expected = defaultdict(list)
    records = list(read_log(run_dir / BINARY_LOG))
    longest: dict[int, int] = defaultdict(int)  # round -> most epochs of a client
    for record in records:
        if record.HasField("accepted"):
            epochs = len(record.accepted.training_losses)
            longest[record.server_round] = max(longest[record.server_round], epochs)
    for record in records:
        at, node = record.server_round, record.node_id
        if record.HasField("accepted"):
            meta = record.accepted
            found[f"train/training_time/node_{node}"].append((at, meta.training_time))
            found[f"train/converged/node_{node}"].append((at, float(meta.converged)))
            # every client's round r starts after the longest series of each
            # earlier round, so one step is one moment of the run
            first = 1 + sum(n for r, n in longest.items() if r < at)
            for index, loss in enumerate(meta.training_losses):
                found[f"train_per_epoch/training_losses/node_{node}"].append(
                    (first + index, loss)
                )
        elif record.HasField("evaluated"):
            evaluated = record.evaluated
            found[f"evaluate/accuracy/node_{node}"].append((at, evaluated.accuracy))
            found[f"evaluate/loss/node_{node}"].append((at, evaluated.loss))
        elif record.HasField("centralized"):
            for name, value in record.centralized.metrics.items():
                found[f"centralized/{name}"].append((at, value))
    return found


def _mlflow(uri: str, run_name: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("flower-meta")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], f"run_name = '{run_name}'")
    return client, run.info.run_id


def _check_mlflow(uri: str, run_dir: Path, expected: Expected) -> MlflowClient:
    client, run_id = _mlflow(uri, run_dir.name)
    for metric, points in expected.items():
        history = client.get_metric_history(run_id, metric)
        assert [(m.step, m.value) for m in history] == points, metric
    run = client.get_run(run_id)
    assert run.data.tags["unit/train/training_time"] == "s"
    assert run.data.tags["unit/train/training_losses"] == "nats/example"
    return client


def _check_tensorboard(folder: Path, expected: Expected) -> None:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    for metric, points in expected.items():
        shown = [(e.step, e.value) for e in events.Scalars(metric)]
        assert [s for s, _ in shown] == [s for s, _ in points], metric
        np.testing.assert_array_equal(
            [v for _, v in shown],
            np.array([v for _, v in points], dtype=np.float32),
            metric,
        )


@pytest.mark.e2e
def test_a_live_run_fills_both_trackers(
    simulate: Simulate, app_run_config: AppRunConfig, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    app_run_config(
        {
            "num-server-rounds": 2,
            "output-dir": str(tmp_path / "runs"),
            "trackers": "mlflow,tensorboard",
            "mlflow-tracking-uri": uri,
        }
    )
    strategy = simulate(client_app, 3)
    (run_dir,) = (p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    expected = _expected(run_dir)
    assert (
        len(
            expected[
                "train_per_epoch/training_losses/node_"
                + str(next(iter(strategy.reports[1].accepted)))
            ]
        )
        == 10
    )
    client = _check_mlflow(uri, run_dir, expected)
    _, run_id = _mlflow(uri, run_dir.name)
    summary = client.get_metric_history(run_id, "train/accepted")
    assert [(m.step, m.value) for m in summary] == [(1, 3.0), (2, 3.0)]
    params = client.get_run(run_id).data.params
    assert params["num-server-rounds"] == "2"  # the run config in effect
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"metadata.binpb", "schema.binpb", "report"} <= artifacts
    assert any((tmp_path / "mlartifacts").rglob("metadata.binpb"))  # beside the store
    board = tmp_path / "runs-trackers" / "tensorboard" / run_dir.name
    _check_tensorboard(board, expected)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]


def _old_run(folder: Path) -> Path:
    """A run folder as written before this project had trackers: no schema.binpb,
    no record keys, no centralized records."""
    folder.mkdir(parents=True)
    with (folder / BINARY_LOG).open("wb") as log:
        from google.protobuf import proto

        for server_round in (1, 2):
            for node in (3, 4):
                record = MetadataLogRecord(
                    run_id=1, server_round=server_round, node_id=node
                )
                record.accepted.CopyFrom(sample_metadata(2 + node))
                proto.serialize_length_prefixed(record, log)  # type: ignore[arg-type]
            evaluated = MetadataLogRecord(
                run_id=1, server_round=server_round, node_id=3
            )
            evaluated.evaluated.CopyFrom(
                EvaluateProcessMetadata(
                    evaluation_time=0.1, num_examples=9, loss=0.4, accuracy=0.75
                )
            )
            proto.serialize_length_prefixed(evaluated, log)  # type: ignore[arg-type]
            rejected = MetadataLogRecord(run_id=1, server_round=server_round, node_id=5)
            rejected.rejected.CopyFrom(
                Rejection(reason="malformed", record_key="train_metadata")
            )
            proto.serialize_length_prefixed(rejected, log)  # type: ignore[arg-type]
    return folder


@pytest.mark.e2e
def test_flower_meta_export_loads_an_old_run_folder(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path / "runs" / "4242")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = str(VENV_BIN / "flower-meta")
    said = []
    for _ in range(2):  # exporting again replaces, never adds
        for to in (["--to", "mlflow", "--tracking-uri", uri], ["--to", "tensorboard"]):
            done = subprocess.run(
                [command, "export", str(run_dir), *to], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            said.append(done.stdout)
    assert f"mlflow ui --backend-store-uri {uri}" in said[2]
    board = tmp_path / "runs-trackers" / "tensorboard" / "4242"
    assert f"tensorboard --logdir {board}" in said[3]
    assert len(list(board.glob("events.out.tfevents.*"))) == 1
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("flower-meta")
    assert experiment is not None
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    expected = _expected(run_dir)
    client = _check_mlflow(uri, run_dir, expected)
    _, run_id = _mlflow(uri, "4242")
    rejected = client.get_metric_history(run_id, "train/rejected")
    assert [(m.step, m.value) for m in rejected] == [(1, 1.0), (2, 1.0)]
    _check_tensorboard(board, expected)


class Broken:
    """A tracker library that fails at the first write."""

    def scalars(self, values: Sequence[Scalar]) -> None:
        raise ConnectionError("tracking server gone")

    def texts(self, values: Sequence[Text]) -> None:
        raise ConnectionError("tracking server gone")

    def units(self, units: dict[str, str]) -> None:
        raise ConnectionError("tracking server gone")

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        raise ConnectionError("tracking server gone")


def test_a_failing_tracker_is_reported_once_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guarded = Guarded("broken", Tracker(Broken()))
    record = MetadataLogRecord(
        run_id=1, server_round=1, node_id=3, record_key="train_metadata"
    )
    record.accepted.CopyFrom(sample_metadata())
    with caplog.at_level(logging.WARNING, logger="flwr"):
        for _ in range(3):
            guarded.append(record)
            guarded.flush()
        guarded.close(tmp_path)
    warnings = [
        r.getMessage() for r in caplog.records if "tracker broken" in r.getMessage()
    ]
    gone = "ConnectionError('tracking server gone')"
    assert warnings == [f"tracker broken failed, off for this run: {gone}"]
    assert guarded.tracker is None


def test_an_unknown_or_missing_tracker_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flwr"):
        found = trackers(["wandb"], tmp_path, "1", {})
    assert found == []
    assert "tracker wandb is off for this run" in caplog.text
    MetadataLog(tmp_path)  # the run itself goes on


def test_beyond_the_cap_clients_count_in_the_summaries_only(tmp_path: Path) -> None:
    order = [9, 3, 14, 1, 7, 12, 5, 15, 2, 11, 8, 4, 13, 6, 10]
    times = {node: 0.1 * node + 0.05 * (node % 3) for node in order}
    metadata_log = MetadataLog(tmp_path, json_lines=False)
    for server_round in (1, 2):
        for node in order:
            record = MetadataLogRecord(
                server_round=server_round, node_id=node, record_key="train_metadata"
            )
            record.accepted.CopyFrom(sample_metadata(3))
            record.accepted.training_time = times[node] * server_round
            metadata_log.append(record)
    metadata_log.close()

    export(tmp_path, Tracker(TensorBoardBackend(tmp_path / "tensorboard")))

    events = EventAccumulator(
        str(tmp_path / "tensorboard"), size_guidance={"scalars": 0}
    )
    events.Reload()
    tags = events.Tags()["scalars"]
    tracked = {int(t.rsplit("_", 1)[1]) for t in tags if "/node_" in t}
    assert tracked == set(order[:TRACKED_CLIENTS]) == set(order[:10])  # the first ten
    medians = [(e.step, e.value) for e in events.Scalars("train/training_time/median")]
    assert [step for step, _ in medians] == [1, 2]
    for step, value in medians:
        expected = statistics.median(times[n] * step for n in order)
        assert value == pytest.approx(expected, rel=1e-6)
    accepted = [e.value for e in events.Scalars("train/accepted")]
    assert accepted == [15.0, 15.0]


START = 1_780_000_000_000
"""A training run's first record: ms since the Unix epoch (in 2026)."""


def _stamped_run(folder: Path) -> dict[tuple[int, int], int]:
    """Two rounds of two clients and a centralized record, each written a known
    minute after `START`; return (round, node) -> its time in ms."""
    times: dict[tuple[int, int], int] = {}
    metadata_log = MetadataLog(folder)
    for server_round in (1, 2):
        for node in (3, 4, 0):
            record = MetadataLogRecord(
                run_id=1, server_round=server_round, node_id=node
            )
            if node:
                record.record_key = "train_metadata"
                record.accepted.CopyFrom(sample_metadata(2))
                record.accepted.training_time = node * server_round
            else:
                record.centralized.metrics["accuracy"] = 0.5 * server_round
            times[server_round, node] = START + 60_000 * len(times) + 7
            record.received_at.FromMilliseconds(times[server_round, node])
            metadata_log.append(record)
    metadata_log.close()
    (folder / RUN_CONFIG).write_text(json.dumps({"lr": 0.05, "note": "a|b"}))
    return times


def test_an_export_shows_when_training_happened_not_when_it_was_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "runs" / "1"
    times = _stamped_run(run_dir)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (
        cli.main(["export", str(run_dir), "--to", "mlflow", "--tracking-uri", uri]) == 0
    )
    client, run_id = _mlflow(uri, "1")
    info = client.get_run(run_id).info
    assert (info.start_time, info.end_time) == (START + 7, max(times.values()))
    history = client.get_metric_history(run_id, "train/training_time/node_4")
    assert [(m.step, m.timestamp) for m in history] == [
        (1, times[1, 4]),
        (2, times[2, 4]),
    ]
    summary = client.get_metric_history(run_id, "train/training_time/median")
    assert [m.timestamp for m in summary] == [times[1, 4], times[2, 4]]  # its last
    centralized = client.get_metric_history(run_id, "centralized/accuracy")
    assert [m.timestamp for m in centralized] == [times[1, 0], times[2, 0]]


def test_tensorboard_keeps_epochs_apart_from_rounds_and_shows_the_run_config(
    tmp_path: Path,
) -> None:
    times = _stamped_run(tmp_path)
    params = {"lr": "0.05", "note": "a|b", "json-log": "True", "alpha": "nan"}
    export(tmp_path, Tracker(TensorBoardBackend(tmp_path / "tensorboard", params)))
    events = EventAccumulator(
        str(tmp_path / "tensorboard"),
        size_guidance={"scalars": 0, "tensors": 0},
    )
    events.Reload()
    groups = {tag.split("/")[0] for tag in events.Tags()["scalars"]}
    assert groups == {"train", "train_per_epoch", "centralized"}
    epochs = events.Scalars("train_per_epoch/training_losses/node_3")
    assert [e.step for e in epochs] == [1, 2, 3, 4]  # 2 epochs in each of 2 rounds
    rounds = events.Scalars("train/training_time/node_3")
    assert [(e.step, e.wall_time) for e in rounds] == [
        (1, times[1, 3] / 1000),
        (2, times[2, 3] / 1000),
    ]
    (config,) = events.Tensors("run_config/text_summary")
    assert config.step == 0  # the run's, not a round's
    table = tensor_util.make_ndarray(config.tensor_proto).item().decode()
    assert table.splitlines() == [
        "| key | value |",
        "| --- | --- |",
        "| alpha | nan |",
        "| json-log | True |",
        "| lr | 0.05 |",
        "| note | a\\|b |",
    ]
    (session,) = events.Tensors("_hparams_/session_start_info")
    assert session.step == 0
    (content,) = events.PluginTagToContent("hparams").values()
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert {k: json_format.MessageToDict(v) for k, v in start.hparams.items()} == {
        "lr": 0.05,
        "note": "a|b",
        "json-log": True,
        "alpha": "nan",  # not a number the HParams tab can sort
    }


def test_mlflow_gets_every_value_and_key_past_its_batch_limits(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "1"
    metadata_log = MetadataLog(run_dir)
    for node in range(1, 11):  # 10 clients x 120 epochs: over 1000 values a round
        record = MetadataLogRecord(
            run_id=1, server_round=1, node_id=node, record_key="train_metadata"
        )
        record.accepted.CopyFrom(sample_metadata(120))
        record.accepted.training_time = float(node)
        record.accepted.converged = node <= 3
        metadata_log.append(record)
    metadata_log.close()
    config = {f"key-{i:03}": i for i in range(250)} | {"long": "x" * 7000}
    (run_dir / RUN_CONFIG).write_text(json.dumps(config))
    (run_dir / LOCK).touch()  # the log's lock, and a write's temporary file:
    (run_dir / ".metadata.jsonl.tmp").write_text("half")  # neither is the run's
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = int(time.time() * 1000)
    assert (
        cli.main(["export", str(run_dir), "--to", "mlflow", "--tracking-uri", uri]) == 0
    )
    after = int(time.time() * 1000)
    expected = _expected(run_dir)
    assert sum(map(len, expected.values())) > 1000
    client = _check_mlflow(uri, run_dir, expected)
    _, run_id = _mlflow(uri, "1")
    params = client.get_run(run_id).data.params
    assert {k: v for k, v in params.items() if k != "long"} == {
        f"key-{i:03}": str(i) for i in range(250)
    }
    assert params["long"] == "x" * 6000  # MLflow's limit on a value
    shares = client.get_metric_history(run_id, "train/converged/share_true")
    assert [(m.step, m.value) for m in shares] == [(1, 0.3)]  # 3 of 10 clients
    times = client.get_metric_history(run_id, "train/training_time/node_3")
    assert before <= times[0].timestamp <= after  # no received_at: when exported
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert artifacts == {BINARY_LOG, "metadata.jsonl", "schema.binpb", RUN_CONFIG}
    assert any((tmp_path / "mlartifacts").rglob(BINARY_LOG))  # beside the store


def test_an_export_reports_its_progress_and_a_second_replaces_the_first(
    tmp_path: Path,
) -> None:
    _stamped_run(tmp_path)
    counted: list[int] = []
    export(tmp_path, Tracker(TensorBoardBackend(tmp_path / "tb")), counted.append)
    assert counted == [1, 2, 3, 4, 5, 6]
    export(tmp_path, Tracker(TensorBoardBackend(tmp_path / "tb")))  # again: replaced
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1


@pytest.mark.parametrize(
    ("seconds", "nanos", "ms"),
    [(0, 0, None), (1_780_000_000, 0, 1_780_000_000_000), (0, 2_500_000, 2)],
    ids=["unstamped", "on a whole second", "in the first second"],
)
def test_a_records_time_is_its_stamp_in_milliseconds(
    seconds: int, nanos: int, ms: int | None
) -> None:
    record = MetadataLogRecord()
    record.received_at.seconds, record.received_at.nanos = seconds, nanos
    assert written_at(record) == ms


class Recording:
    """A tracker library that keeps every batch of scalars it is sent."""

    def __init__(self) -> None:
        self.batches: list[list[Scalar]] = []
        self.texts_sent: list[list[Text]] = []

    def scalars(self, values: Sequence[Scalar]) -> None:
        self.batches.append(list(values))

    def texts(self, values: Sequence[Text]) -> None:
        self.texts_sent.append(list(values))

    def units(self, units: dict[str, str]) -> None:
        pass

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        pass


def test_an_export_sends_full_batches_each_round_summed_up_when_the_next_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = _stamped_run(tmp_path)
    everything = {
        times[server_round, node] for node in (3, 4, 0) for server_round in (1, 2)
    }
    backend = Recording()
    export(tmp_path, Tracker(backend))
    sent = [{when for _, _, _, when in batch} for batch in backend.batches]
    assert sent == [everything]  # fewer than BATCH scalars: one write, at the end
    assert sum(len(batch) for batch in backend.batches) < BATCH
    monkeypatch.setattr(replay, "BATCH", 1)  # a batch of one: each round alone
    backend = Recording()
    export(tmp_path, Tracker(backend))
    sent = [{when for _, _, _, when in batch} for batch in backend.batches]
    assert sent == [  # a tracker holds one round, not the whole log
        {times[server_round, node] for node in (3, 4, 0)} for server_round in (1, 2)
    ]


def test_mlflow_refusing_a_batch_is_told_in_its_own_first_line(
    tmp_path: Path,
) -> None:
    """A run deleted under the export (a second export of the same run, say)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    told: list[str] = []
    backend = MlflowBackend(uri, "flower-meta", "7", {}, problem=told.append)
    MlflowClient(uri).delete_run(backend.run_id)
    backend.scalars([("train/accepted", 2.0, 1, START)])
    (line,) = told
    assert line.startswith("MLflow refused metrics, left out: ")
    with pytest.raises(MlflowException) as refusal:  # what MLflow itself says
        MlflowClient(uri).log_metric(backend.run_id, "x", 1.0)
    assert line == f"MLflow refused metrics, left out: {refusal.value.message}"
    assert "deleted" in line
    silent = MlflowBackend(uri, "flower-meta", "8", {})
    MlflowClient(uri).delete_run(silent.run_id)
    with pytest.raises(MlflowException):  # no one to tell: the caller hears it
        silent.scalars([("train/accepted", 2.0, 1, START)])


def test_a_live_tensorboard_writes_beside_the_runs_folder_not_in_it(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs" / "7"
    run_dir.mkdir(parents=True)
    (found,) = trackers(["tensorboard"], run_dir, "7", {"lr": "0.1"})
    found.close(run_dir)
    board = tmp_path / "runs-trackers" / "tensorboard" / "7"
    assert len(list(board.glob("events.out.*"))) == 1
    assert list(run_dir.iterdir()) == []


def test_exporting_again_replaces_event_files_and_links_never_their_targets(
    tmp_path: Path,
) -> None:
    _stamped_run(tmp_path)
    folder = tmp_path / "tb"
    folder.mkdir()
    outside = tmp_path / "someone_elses.events"
    outside.write_bytes(b"not ours")
    (folder / "events.out.tfevents.1.old").write_bytes(b"an earlier export")
    (folder / "events.out.tfevents.2.link").symlink_to(outside)
    (folder / "events.out.tfevents.3.dir").mkdir()
    export(tmp_path, Tracker(TensorBoardBackend(folder)))
    kept = {p.name for p in folder.iterdir() if p.is_dir()}
    (written,) = [p for p in folder.iterdir() if not p.is_dir()]
    assert kept == {"events.out.tfevents.3.dir"}  # a folder: not an event file
    assert not written.is_symlink()
    assert written.name not in {
        "events.out.tfevents.1.old",
        "events.out.tfevents.2.link",
    }
    assert outside.read_bytes() == b"not ours"


def test_trackers_use_the_tracking_uri_given_or_one_beside_the_runs(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs" / "5"
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    for uri, store in (
        (elsewhere, elsewhere),
        ("", f"sqlite:///{tmp_path}/runs-trackers/mlflow.db"),
    ):
        (found,) = trackers(["mlflow"], run_dir, "5", {}, mlflow_uri=uri)
        found.close(run_dir)
        _, run_id = _mlflow(store, "5")
        assert run_id
