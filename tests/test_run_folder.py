"""A run folder is untrusted input: `flower-meta` on a folder from anyone.

Whatever the folder holds, the commands write only where they say, follow
no symlink, allocate by what is there rather than by what a size prefix
claims, and end every problem in one line on stderr and exit status 1, with
everything still readable printed, reported or exported. The oracles are
the file system (what exists where, byte for byte), MLflow's own client and
protobuf's own parser, never the code under test.
"""

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flower_app import cli
from flower_app.outcomes.replay import RUN_CONFIG
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.protocol.run_schema import SCHEMA, file_descriptor_set
from flower_app.reporting.report import REPORT_FOLDER
from flower_meta.v1 import options_pb2
from flower_meta.v1.metadata_pb2 import (
    MetadataLogRecord,
)
from tests.helpers import expected_plots, write_run

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

HOSTILE_KEYS = [
    "../../../x/pwned",
    "/tmp/pwned",
    "..",
    "a\x00b\nc",
    "$x$ and $\\sqrt{$",
    "$\\sqrt{" * 60,
    "é" * 300,
]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def _snapshot(root: Path, *skip: Path) -> dict[str, str]:
    """Every path under `root` (not under `skip`): its kind and content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.is_symlink():
            found[str(path)] = "link:" + str(path.readlink())
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path)] = "folder"
    return found


def _one_line_each(errors: list[str]) -> None:
    assert errors
    assert all(line.startswith("flower-meta: ") for line in errors), errors
    assert not any("Traceback" in line for line in errors)


def _outputs(run: Path) -> list[Path]:
    trackers = run.parent.with_name(f"{run.parent.name}-trackers")
    return [run / REPORT_FOLDER, trackers]  # mlflow.db, mlartifacts/, tensorboard/


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_report_names_its_files_itself_whatever_the_log_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    run = write_run(tmp_path / "share" / "run", record_key=key)
    before = _snapshot(tmp_path, run / REPORT_FOLDER)
    outside = [Path("/tmp/pwned_training_time.png"), Path("/x/pwned_training_time.png")]
    assert not any(path.exists() for path in outside)

    code, out, errors = _cli(capsys, "report", str(run))

    assert (code, errors) == (0, [])
    assert _snapshot(tmp_path, run / REPORT_FOLDER) == before
    assert not any(path.exists() for path in outside)
    written = sorted(p.name for p in (run / REPORT_FOLDER).iterdir())
    assert "report.html" in written
    pngs = [name for name in written if name != "report.html"]
    assert len(pngs) == len(expected_plots(run)) == 7  # every field varies
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,129}\.png", name) for name in pngs)
    assert out.count("wrote ") == len(pngs) + 1


@pytest.mark.parametrize("target", ["report.html", "evaluate_loss.png"])
def test_a_symlink_where_the_report_writes_is_replaced_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    run = write_run(tmp_path / "run")
    victim = tmp_path / "thesis.tex"
    victim.write_text("years of work")
    (run / REPORT_FOLDER).mkdir()
    (run / REPORT_FOLDER / target).symlink_to(victim)

    code, _, errors = _cli(capsys, "report", str(run))

    assert (code, errors) == (0, [])
    assert victim.read_text() == "years of work"
    page = run / REPORT_FOLDER / target
    assert page.is_file()
    assert not page.is_symlink()


@pytest.mark.parametrize(
    ("command", "folder"),
    [
        (["report"], f"runs/run/{REPORT_FOLDER}"),
        (["export", "--to", "tensorboard"], "runs-trackers/tensorboard/run"),
    ],
)
def test_an_output_folder_that_is_a_symlink_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], folder: str
) -> None:
    run = write_run(tmp_path / "runs" / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / folder).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / folder).symlink_to(elsewhere, target_is_directory=True)

    code, _, errors = _cli(capsys, *command, str(run))

    assert code == 1
    _one_line_each(errors)
    assert len(errors) == 1
    assert "symlink" in errors[0]
    assert list(elsewhere.iterdir()) == []


def test_mlflow_export_uploads_only_the_run_folders_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    hidden = tmp_path / "home"
    hidden.mkdir()
    (hidden / "key.pem").write_text("PRIVATE")
    run = write_run(tmp_path / "runs" / "run")
    (run / "notes.txt").symlink_to(secret)
    (run / "more").symlink_to(hidden, target_is_directory=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    code, _, errors = _cli(
        capsys, "export", str(run), "--to", "mlflow", "--tracking-uri", uri
    )

    assert (code, errors) == (0, [])
    client, found = _only_mlflow_run(uri)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert BINARY_LOG in artifacts
    assert SCHEMA in artifacts
    assert not artifacts & {"notes.txt", "more", "metadata.lock"}
    stored = Path(found.info.artifact_uri.removeprefix("file://"))
    texts = [p.read_text(errors="replace") for p in stored.rglob("*") if p.is_file()]
    assert not any("secret" in t or "PRIVATE" in t for t in texts)


def _only_mlflow_run(uri: str) -> tuple["MlflowClient", "Run"]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("flower-meta")
    assert experiment is not None
    (found,) = client.search_runs([experiment.experiment_id])
    return client, found


def _append_raw(run: Path, data: bytes) -> None:
    with (run / BINARY_LOG).open("ab") as log:
        log.write(data)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


COMMANDS = [
    ["decode", "--log"],
    ["report"],
    ["export", "--to", "tensorboard"],
]


@pytest.mark.parametrize("size", [2**62, 2**63 - 1, 2**64 - 1, 70_000])
@pytest.mark.parametrize("command", COMMANDS, ids=["decode", "report", "export"])
def test_a_size_prefix_is_checked_against_the_bytes_that_follow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: int, command: list[str]
) -> None:
    run = write_run(tmp_path / "run")
    intact = (run / BINARY_LOG).stat().st_size
    _append_raw(run, _varint(size) + b"\x08\x01")

    code, out, errors = _cli(capsys, *command, str(run))

    assert code == 1
    _one_line_each(errors)
    (line,) = [e for e in errors if "damaged" in e]
    assert f"record 9 at byte {intact} is damaged" in line
    assert f"it declares {size} bytes, 2 follow" in line
    if command[0] == "decode":
        assert len(out.splitlines()) == 8


def _schema_bytes() -> bytes:
    return file_descriptor_set([MetadataLogRecord.DESCRIPTOR.file]).SerializeToString()


def _schema_with(change: str) -> bytes:
    files = descriptor_pb2.FileDescriptorSet.FromString(_schema_bytes())
    if change == "duplicate":
        files.file.append(files.file[-1])
    elif change == "unbuildable":
        files.file[-1].dependency.append("no/such/import.proto")
        del files.file[0]
    elif change == "redefined":
        (ours,) = [f for f in files.file if f.name.endswith("metadata.proto")]
        (record,) = [m for m in ours.message_type if m.name == "MetadataLogRecord"]
        (field,) = [f for f in record.field if f.name == "server_round"]
        field.type = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    elif change == "nested 500 deep":
        deep = files.file.add(name="deep.proto", package="deep", syntax="proto3")
        message = deep.message_type.add(name="M0")
        for depth in range(1, 500):
            message = message.nested_type.add(name=f"M{depth}")
    elif change == "no record type":
        (ours,) = [f for f in files.file if f.name.endswith("metadata.proto")]
        ours.package = "elsewhere.v1"
    return files.SerializeToString()


SCHEMAS = {
    "empty": b"",
    "garbage": b"\xff\xfe\x00garbage",
    "truncated": _schema_bytes()[:500],
    "duplicate": _schema_with("duplicate"),
    "unbuildable": _schema_with("unbuildable"),
    "redefined": _schema_with("redefined"),
    "nested 500 deep": _schema_with("nested 500 deep"),
    "no record type": _schema_with("no record type"),
}


@pytest.mark.parametrize("schema", list(SCHEMAS))
@pytest.mark.parametrize("command", COMMANDS, ids=["decode", "report", "export"])
def test_a_bad_schema_is_a_schema_problem_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: str, command: list[str]
) -> None:
    run = write_run(tmp_path / "run")
    (run / SCHEMA).write_bytes(SCHEMAS[schema])

    code, out, errors = _cli(capsys, *command, str(run))

    assert code == 1
    _one_line_each(errors)
    assert len(errors) == 1
    assert str(run / SCHEMA) in errors[0]
    assert "damaged" not in errors[0]  # the log is not blamed
    assert out == ""


def _chain_schema(length: int) -> bytes:
    """This build's schema, plus a message type whose fields nest `length` deep."""
    files = descriptor_pb2.FileDescriptorSet.FromString(_schema_bytes())
    chain = files.file.add(name="chain.proto", package="chain", syntax="proto3")
    for depth in range(length):
        message = chain.message_type.add(name=f"C{depth}")
        if depth + 1 < length:
            message.field.add(
                name="next",
                number=1,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                type_name=f".chain.C{depth + 1}",
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            )
    return files.SerializeToString()


@pytest.mark.parametrize(
    ("type_url", "value", "schema"),
    [
        ("type.googleapis.com/no.such.Type", b"", None),
        ("type.googleapis.com/flower_meta.v1.TrainProcessMetadata", b"\xff\xff", None),
        ("", b"\x08\x01", None),
        ("type.googleapis.com/chain.C0", b"", _chain_schema(500)),
    ],
    ids=["unknown type", "garbage bytes", "no type URL", "500 deep"],
)
def test_an_undecodable_accepted_message_is_named_and_the_rest_goes_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    type_url: str,
    value: bytes,
    schema: bytes | None,
) -> None:
    run = write_run(tmp_path / "run")
    odd = MetadataLogRecord(server_round=2, node_id=7, record_key="train_metadata")
    odd.accepted_other.type_url, odd.accepted_other.value = type_url, value
    metadata_log = MetadataLog(run, json_lines=False)
    metadata_log.append(odd)
    metadata_log.close()
    if schema is not None:
        (run / SCHEMA).write_bytes(schema)

    decoded, lines, decode_errors = _cli(capsys, "decode", "--log", str(run))
    reported, tables, report_errors = _cli(capsys, "report", str(run))

    assert (decoded, reported) == (1, 1)
    assert len(lines.splitlines()) == 8
    for errors in (decode_errors, report_errors):
        _one_line_each(errors)
        assert len(errors) == 1
        assert "undecodable" in errors[0]
    assert decode_errors[0].startswith(
        f"flower-meta: {run / BINARY_LOG}: record 9 is undecodable"
    )
    assert "round 2 node 7" in report_errors[0]
    assert "train: TrainProcessMetadata, by round" in tables
    page = (run / REPORT_FOLDER / "report.html").read_text()
    assert "1 records could not be decoded" in page


@pytest.mark.parametrize(
    "content", [b"[1, 2, 3]", b"not json", b'"text"', b"[" * 100_000]
)
def test_a_run_config_that_is_no_object_is_named_and_the_export_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    run = write_run(tmp_path / "run")
    (run / RUN_CONFIG).write_bytes(content)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    code, out, errors = _cli(
        capsys, "export", str(run), "--to", "mlflow", "--tracking-uri", uri
    )

    assert code == 1
    _one_line_each(errors)
    assert len(errors) == 1
    assert f"{run / RUN_CONFIG}: not a run config" in errors[0]
    _, found = _only_mlflow_run(uri)
    assert found.data.params == {}
    assert "train/training_time/median" in found.data.metrics
    assert out.startswith("exported")


def test_names_mlflow_would_refuse_are_made_safe_and_all_arrives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", record_key="a/../b\x00c\n$d$_metadata")
    (run / RUN_CONFIG).write_text('{"lr\\u001b[31m": 0.1, "a/../b": "x", "ok-key": 1}')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    code, _, errors = _cli(
        capsys, "export", str(run), "--to", "mlflow", "--tracking-uri", uri
    )

    assert (code, errors) == (0, [])
    _, found = _only_mlflow_run(uri)
    assert found.data.params["ok-key"] == "1"
    assert sorted(found.data.params.values()) == ["0.1", "1", "x"]
    stages = {name.split("/")[0] for name in found.data.metrics}
    assert "evaluate" in stages
    (odd,) = {s for s in stages - {"evaluate"} if not s.endswith("_per_epoch")}
    assert re.fullmatch(r"[A-Za-z0-9_-]+", odd)
    assert f"{odd}_per_epoch" in stages  # its per-epoch series, as safe
    assert f"{odd}/training_time/median" in found.data.metrics


# Property: arbitrary bytes in any file of a run folder.

FILES = [BINARY_LOG, SCHEMA, RUN_CONFIG]


def _mutated(original: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["replace", "truncate", "flip", "insert"]))
    if how == "replace" or not original:
        return data.draw(st.binary(max_size=300))
    at = data.draw(st.integers(0, len(original) - 1))
    if how == "truncate":
        return original[:at]
    if how == "flip":
        return (
            original[:at]
            + bytes([original[at] ^ data.draw(st.integers(1, 255))])
            + (original[at + 1 :])
        )
    return original[:at] + data.draw(st.binary(min_size=1, max_size=20)) + original[at:]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_bytes_in_any_file_end_in_status_0_or_1_and_one_line_each(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    data: st.DataObject,
) -> None:
    root = tmp_path_factory.mktemp("shared")
    run = write_run(root / "runs" / "run")
    (run / RUN_CONFIG).write_text('{"local-epochs": 5, "learning-rate": 0.1}')
    for name in data.draw(st.sets(st.sampled_from(FILES), min_size=1)):
        (run / name).write_bytes(_mutated((run / name).read_bytes(), data))
    command = data.draw(st.sampled_from(COMMANDS))
    before = _snapshot(root, *_outputs(run))

    code, out, errors = _cli(capsys, *command, str(run))

    assert code in (0, 1)
    assert (code == 1) == bool(errors)
    if errors:
        _one_line_each(errors)
    assert _snapshot(root, *_outputs(run)) == before
    if command[0] == "decode" and code == 0:
        assert len(out.splitlines()) == len(list(read_log(run / BINARY_LOG)))


def _schema_with_unit(unit: str) -> bytes:
    """The log's schema, with `unit` as training_time's unit."""
    files = descriptor_pb2.FileDescriptorSet.FromString(_schema_bytes())
    (ours,) = [f for f in files.file if f.name.endswith("metadata.proto")]
    (train,) = [m for m in ours.message_type if m.name == "TrainProcessMetadata"]
    (field,) = [f for f in train.field if f.name == "training_time"]
    field.options.Extensions[options_pb2.field].unit = unit
    return files.SerializeToString()


def test_texts_from_a_run_folder_reach_the_trackers_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Units and run-config keys at most 200 characters, values at most 500
    in TensorBoard's tables and HParams, 6,000 in MLflow's params."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.util import tensor_util

    run = write_run(tmp_path / "runs" / "run")
    (run / SCHEMA).write_bytes(_schema_with_unit("u" * 1000))
    (run / RUN_CONFIG).write_text(f'{{"{"k" * 1000}": "{"v" * 9000}"}}')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def cut(text: str, limit: int) -> str:
        return f"{text[:limit]}... ({len(text)} characters in all)"

    for tracker in (["tensorboard"], ["mlflow", "--tracking-uri", uri]):
        code, _, errors = _cli(capsys, "export", str(run), "--to", *tracker)
        assert (code, errors) == (0, [])

    _, found = _only_mlflow_run(uri)
    (value,) = found.data.params.values()
    assert value == "v" * 6000
    assert found.data.tags["unit/train/training_time"] == cut("u" * 1000, 200)
    board = tmp_path / "runs-trackers" / "tensorboard" / "run"
    events = EventAccumulator(str(board), size_guidance={"tensors": 0})
    events.Reload()
    cells = {
        tag: [
            row.strip("| ").split(" | ")
            for tensor in events.Tensors(tag)
            for row in tensor_util.make_ndarray(tensor.tensor_proto)
            .item()
            .decode()
            .splitlines()[2:]
        ]
        for tag in ("units/text_summary", "run_config/text_summary")
    }
    assert ["train/training_time", cut("u" * 1000, 200)] in cells["units/text_summary"]
    assert cells["run_config/text_summary"] == [
        [cut("k" * 1000, 500), cut("v" * 9000, 500)]
    ]
    (content,) = events.PluginTagToContent("hparams").values()
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert {k: v.string_value for k, v in start.hparams.items()} == {
        cut("k" * 1000, 200): cut("v" * 9000, 500)
    }
