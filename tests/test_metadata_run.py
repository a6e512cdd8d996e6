"""`MetadataRun`: one object opens and closes a run's log, run config, trackers, report.

Each test reads the files back through protobuf, json and TensorBoard's own
reader, not through the object under test.
"""

import json
import logging
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg
from google.protobuf.wrappers_pb2 import DoubleValue
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from flower_app import MetadataLog, MetadataOptions, MetadataRun, MetadataStrategy
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, JSON_LOG, read_log
from tests.helpers import sample_metadata
from tests.testing import VENV_BIN, NodeList, answer, delivered


def _context(run_config: dict[str, bool | int | float | str]) -> Context:
    return Context(
        run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config=run_config
    )


def _one_round(strategy: MetadataStrategy[FedAvg], times: list[float]) -> None:
    sent = delivered(
        strategy.configure_train(
            1,
            ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
            ConfigRecord(),
            NodeList(list(range(1, len(times) + 1))),  # type: ignore[arg-type]
        )
    )
    replies = []
    for message, seconds in zip(sent, times, strict=True):
        meta = sample_metadata(3)
        meta.training_time = seconds
        content = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
                "metrics": MetricRecord({"num-examples": 10}),
                codec.TRAIN_RECORD_KEY: codec.to_config_record(meta),
            }
        )
        replies.append(answer(message, content))
    strategy.aggregate_train(1, replies)


def test_from_context_writes_every_output_where_the_run_config_says(
    tmp_path: Path,
) -> None:
    config: dict[str, bool | int | float | str] = {
        "output-dir": str(tmp_path / "runs"),
        "trackers": " tensorboard ",
        "learning-rate": 0.1,
    }
    with MetadataRun.from_context(_context(config)) as run:
        assert run.folder == tmp_path / "runs" / "7"
        strategy = run.wrap(FedAvg(min_available_nodes=3, min_train_nodes=3))
        _one_round(strategy, [1, 2, 4])
    folder = tmp_path / "runs" / "7"
    assert json.loads((folder / "run_config.json").read_text()) == config
    records = list(read_log(folder / BINARY_LOG))
    assert sorted(r.accepted.training_time for r in records) == [1, 2, 4]
    assert {r.run_id for r in records} == {7}
    assert len((folder / JSON_LOG).read_text().splitlines()) == 3
    assert "<html" in (folder / "report" / "report.html").read_text()
    assert [p.name for p in folder.parent.iterdir()] == ["7"]  # runs only
    events = EventAccumulator(str(tmp_path / "runs-trackers" / "tensorboard" / "7"))
    events.Reload()
    (median,) = events.Scalars("train/training_time/median")
    assert (median.step, median.value) == (1, 2.0)


def test_an_empty_run_config_means_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    run = MetadataRun.from_context(_context({}))
    assert run.folder == tmp_path / "flower-meta-runs" / "7"
    assert run.trackers == []
    run.close()
    assert (run.folder / "report" / "report.html").is_file()


def test_report_false_writes_no_report(tmp_path: Path) -> None:
    run = MetadataRun.from_context(
        _context({"output-dir": str(tmp_path), "report": False, "json-log": False})
    )
    run.close()
    assert (tmp_path / "7" / BINARY_LOG).is_file()
    assert not (tmp_path / "7" / "report").exists()
    assert not (tmp_path / "7" / JSON_LOG).exists()


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"json-log": "yes"}, TypeError, "'json-log' must be bool, got 'yes'"),
        ({"output-dir": 3}, TypeError, "run config 'output-dir' must be str, got 3"),
        ({"trackers": "mlflow,wandb"}, ValueError, "got 'wandb'"),
    ],
)
def test_a_wrong_key_is_named_before_anything_is_written(
    tmp_path: Path,
    config: dict[str, bool | int | float | str],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        MetadataRun.from_context(_context({"output-dir": str(tmp_path), **config}))
    assert not (tmp_path / "7").exists()


def test_the_types_are_named_once_and_a_log_without_them_is_refused(
    tmp_path: Path,
) -> None:
    options = MetadataOptions(train_type=DoubleValue, evaluate_type=None)
    run = MetadataRun(tmp_path / "run", options=options)
    assert run.log.holds(DoubleValue)
    run.wrap(FedAvg())
    run.close()
    plain = MetadataLog(tmp_path / "plain")
    with pytest.raises(ValueError, match=r"without google\.protobuf\.DoubleValue"):
        MetadataStrategy(FedAvg(), metadata=options, metadata_log=plain)
    plain.close()


def test_a_report_that_fails_costs_a_warning_not_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = MetadataRun(tmp_path / "run")
    (tmp_path / "run" / "report").write_text("a file where the report folder goes")
    with caplog.at_level(logging.WARNING, logger="flwr"):
        run.close()
    assert "report not written, the run goes on" in caplog.text


CONTRADICTORY = """syntax = "proto3";
package acme.v1;
import "flower_meta/v1/options.proto";
message Stats {
  optional double wall_seconds = 1 [(flower_meta.v1.field) = {gte: 5, lte: 1}];
}
"""


def _buf_validate(field: str) -> str:
    """A user's .proto whose one field carries `field`'s options."""
    return (
        'syntax = "proto3";\npackage acme.v1;\n'
        'import "buf/validate/validate.proto";\n'
        'import "flower_meta/v1/options.proto";\n'
        f"message Stats {{\n  {field};\n}}\n"
    )


BUF_VALIDATE_REFUSED = [
    (
        "optional double wall_seconds = 1 "
        "[(buf.validate.field).double = {gt: 1, lt: 1}]",
        "acme.v1.Stats.wall_seconds: no value can meet > 1 and < 1",
    ),
    (
        "optional double wall_seconds = 1 [(buf.validate.field).double.gte = 0, "
        "(flower_meta.v1.field).lte = 1]",
        "rules in both (flower_meta.v1.field) and (buf.validate.field)",
    ),
    (
        "uint32 examples = 1 [(buf.validate.field).double.gte = 1]",
        "acme.v1.Stats.examples: (buf.validate.field).double rules on a field of "
        "type uint32",
    ),
    (
        "repeated double losses = 1 [(buf.validate.field).repeated.items.float = "
        "{gte: 0}]",
        "(buf.validate.field).repeated.items.float rules on a field of type double",
    ),
    (
        "repeated double losses = 1 [(buf.validate.field).double.gte = 0]",
        "(buf.validate.field).double rules on a repeated field: its elements' "
        "rules go under repeated.items",
    ),
    (
        "string device = 1 [(buf.validate.field).double.gte = 0]",
        "(buf.validate.field).double rules on a field of type string",
    ),
    (
        "double x = 1 [(buf.validate.field).string.min_len = 1]",
        "(buf.validate.field).string rules on a field of type double",
    ),
    (
        "map<string, double> x = 1 [(buf.validate.field).map.values.int32.gt = 1]",
        "(buf.validate.field).map.values.int32 rules on a field of type double",
    ),
    (
        'optional double wall_seconds = 1 [(buf.validate.field).cel = {id: "x", '
        'expression: "this.nope > 0"}]',
        "acme.v1.Stats: a rule fails on a message of zero values: error evaluating x",
    ),
    (  # short-circuits before the error on every value: buf's type check sees it
        'optional double wall_seconds = 1 [(buf.validate.field).cel = {id: "x", '
        'expression: "this >= 0.0 || this.nope"}]',
        "buf lint refused stats.proto: stats.proto:6:37:(buf.validate.field).cel."
        'expression on field "wall_seconds" fails to compile',
    ),
]


@pytest.mark.parametrize(
    ("source", "outputs", "said"),
    [
        ('syntax = "proto3";\nmessage {', [], "stats.proto:2:"),
        (
            CONTRADICTORY,
            [],
            "stats.proto: acme.v1.Stats.wall_seconds: no value can meet >= 5 and <= 1",
        ),
        (CONTRADICTORY, ["--docs-out", "docs"], "no value can meet >= 5 and <= 1"),
        *((_buf_validate(field), [], said) for field, said in BUF_VALIDATE_REFUSED),
    ],
    ids=[
        "syntax",
        "rule",
        "rule with docs",
        "buf.validate bounds",
        "rules in both",
        "buf.validate rules of another type",
        "buf.validate item rules of another type",
        "buf.validate element rules not under items",
        "buf.validate number rules on a string",
        "buf.validate string rules on a number",
        "buf.validate map value rules of another type",
        "buf.validate cel that cannot be evaluated",
        "buf.validate cel that does not type-check",
    ],
)
def test_generate_refuses_a_bad_proto_in_one_line_and_writes_nothing(
    tmp_path: Path, source: str, outputs: list[str], said: str
) -> None:
    (tmp_path / "stats.proto").write_text(source)
    done = subprocess.run(
        [str(VENV_BIN / "flower-meta"), "generate", "stats.proto", *outputs],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        ("flower-meta: protoc refused stats.proto: ", "flower-meta: buf lint refused")
    )
    assert said in line
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["stats.proto"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_every_file_of_a_run_folder_has_one_mode_and_no_exec_bit(
    tmp_path: Path, umask: int, mode: int
) -> None:
    """Colleagues read the report as they read the log; nothing is executable."""
    before = os.umask(umask)
    try:
        config: dict[str, bool | int | float | str] = {"output-dir": str(tmp_path)}
        with MetadataRun.from_context(_context(config)) as run:
            _one_round(
                run.wrap(FedAvg(min_available_nodes=2, min_train_nodes=2)), [1, 3]
            )
    finally:
        os.umask(before)
    files = [p for p in (tmp_path / "7").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "metadata.binpb",
        "metadata.jsonl",
        "schema.binpb",
        "metadata.lock",
        "run_config.json",
        "report.html",
    }
    modes = {
        p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in files
    }
    assert set(modes.values()) == {mode}, modes


def test_closing_a_run_logs_its_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every adopter's run ends with the line the README shows."""
    config: dict[str, bool | int | float | str] = {"output-dir": str(tmp_path)}
    with (
        caplog.at_level(logging.INFO, logger="flwr"),
        MetadataRun.from_context(_context(config)) as run,
    ):
        strategy = run.wrap(FedAvg(min_available_nodes=3, min_train_nodes=3))
        _one_round(strategy, [1, 2, 4])
        strategy.centralized[1] = {"accuracy": 0.91234, "loss": 0.25}
    assert (
        "Summary: 1 round, final centralized accuracy 0.9123, loss 0.2500; "
        "metadata over all rounds: train 3 accepted, 0 rejected, 0 failed; "
        "evaluate 0 accepted, 0 rejected, 0 failed"
    ) in caplog.text
