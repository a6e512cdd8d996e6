"""`flower-meta`'s commands: vectors, logs, wrong arguments, pipes, terminals.

The command runs as users run it, through its console script, so tracebacks,
exit statuses and closed pipes are real.
"""

import base64
import contextlib
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from flower_app.protocol.metadata_log import BINARY_LOG, JSON_LOG, MetadataLog
from flower_app.protocol.run_schema import SCHEMA
from tests.helpers import VECTORS, write_run
from tests.testing import VENV_BIN

TUTORIAL = VECTORS / "tutorial_example.binpb"
COMMAND = str(VENV_BIN / "flower-meta")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=120)


def _json(name: str) -> str:
    return (VECTORS / f"{name}.json").read_text()


@pytest.mark.parametrize(
    "args",
    [
        [str(TUTORIAL)],
        [TUTORIAL.read_bytes().hex(), "--encoding", "hex"],
        [base64.b64encode(TUTORIAL.read_bytes()).decode(), "--encoding", "base64"],
    ],
    ids=["file", "hex", "base64"],
)
def test_decode_prints_canonical_json(args: list[str]) -> None:
    result = _run("decode", *args)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        _json("tutorial_example"),
        "",
    )


def test_decode_reads_a_log_from_its_folder_or_its_file(tmp_path: Path) -> None:
    write_run(tmp_path)
    by_folder, by_file = (
        _run("decode", "--log", str(tmp_path)),
        _run("decode", "--log", str(tmp_path / BINARY_LOG)),
    )
    assert by_folder.returncode == by_file.returncode == 0
    assert by_folder.stdout == by_file.stdout
    lines = by_folder.stdout.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith('{"accepted":{"converged":true,')
    assert '"failed":{"reason":"error reply: boom"}' in lines[3]


def _damage(folder: Path) -> None:
    with (folder / BINARY_LOG).open("ab") as tail:
        tail.write(b"\x40\x0a\x03")  # a record that claims 64 bytes, then stops


def test_decode_reads_a_log_up_to_its_damaged_tail(tmp_path: Path) -> None:
    write_run(tmp_path)
    _damage(tmp_path)
    result = _run("decode", "--log", str(tmp_path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 8
    assert "record 9 at byte" in result.stderr
    assert "the 8 records before it are intact" in result.stderr


def test_report_prints_tables_and_the_full_paths_it_wrote(tmp_path: Path) -> None:
    write_run(tmp_path)
    result = _run("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "train: TrainProcessMetadata, by round" in result.stdout
    assert "evaluate: EvaluateProcessMetadata, by round" in result.stdout
    written = [
        line.removeprefix("wrote ")
        for line in result.stdout.splitlines()
        if line.startswith("wrote ")
    ]
    assert written
    assert all(Path(path).is_file() and Path(path).is_absolute() for path in written)


def test_report_on_a_damaged_log_covers_the_intact_records(tmp_path: Path) -> None:
    write_run(tmp_path)
    _damage(tmp_path)
    result = _run("report", str(tmp_path))
    assert result.returncode == 1
    assert "train: TrainProcessMetadata" in result.stdout
    assert "report covers the intact records only" in result.stderr


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """One of each kind of path a user might hand the command."""
    run = write_run(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not protobuf\n")
    (run / "copy.binpb").write_bytes((run / BINARY_LOG).read_bytes())
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / BINARY_LOG).write_bytes((run / BINARY_LOG).read_bytes())
    return {
        "missing": tmp_path / "missing",
        "empty folder": tmp_path / "empty",
        "text file": tmp_path / "notes.txt",
        "payload file": TUTORIAL,
        "run folder": run,
        "log file": run / BINARY_LOG,
        "log copy beside its schema": run / "copy.binpb",
        "log without its schema": tmp_path / "lone" / BINARY_LOG,
        "schema file": run / SCHEMA,
        "JSON lines": run / JSON_LOG,
        "JSON vector": VECTORS / "tutorial_example.json",
    }


WRONG = [
    ("decode", "missing", "no such payload file"),
    ("decode", "empty folder", "is a folder; a payload is a file"),
    ("decode", "run folder", "is a folder; a payload is a file"),
    ("decode", "text file", "malformed"),
    ("decode --log", "missing", "no such run folder"),
    ("decode --log", "empty folder", "holds no metadata.binpb"),
    ("decode --log", "text file", "is a file, not a run folder"),
    ("decode --log", "payload file", "is a file, not a run folder (a payload? flower"),
    (
        "decode",
        "log file",
        "is its run folder's metadata log, not a payload; every record of the run: "
        "flower-meta decode --log",
    ),
    ("decode", "log copy beside its schema", "is its run folder's file, not a payload"),
    ("decode", "log without its schema", "is its run folder's metadata log"),
    (
        "decode",
        "schema file",
        "is its run folder's schema (a FileDescriptorSet; give it as --schema), "
        "not a payload",
    ),
    ("decode", "JSON vector", "holds JSON, not protobuf bytes (a golden vector's"),
    (
        "decode --type-url type.googleapis.com/acme.fleet.v1.FleetReport",
        "payload file",
        "a type this build does not know needs its schema: --schema",
    ),
    ("report", "JSON lines", "is a file of run folder"),
    ("decode --log", "JSON lines", "give the folder itself"),
    ("decode --schema notes.txt --log", "run folder", "--schema is for a payload"),
    ("report", "missing", "no such run folder"),
    ("report", "empty folder", "holds no metadata.binpb"),
    ("report", "text file", "is a file, not a run folder"),
    ("report", "payload file", "is a file, not a run folder"),
]


@pytest.mark.parametrize(("command", "place", "message"), WRONG)
def test_a_wrong_argument_is_one_line_and_status_1(
    command: str, place: str, message: str, places: dict[str, Path]
) -> None:
    result = _run(*command.split(), str(places[place]))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("flower-meta: ")
    assert message in result.stderr


def test_a_report_on_an_empty_log_says_so(tmp_path: Path) -> None:
    MetadataLog(tmp_path / "run").close()
    result = _run("report", str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"flower-meta: {tmp_path / 'run'}: its metadata log holds no records; "
        "the report is empty"
    ]


@pytest.mark.parametrize(
    "command",
    ["decode {payload}", "decode --log {run}", "report {run}"],
)
def test_output_piped_into_head_ends_quietly(
    command: str, places: dict[str, Path]
) -> None:
    big = places["run folder"].parent / "big"
    write_run(big, rounds=150)  # more output than a pipe holds
    args = command.format(payload=TUTORIAL, run=big)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{COMMAND}' {args} | head -1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stderr == ""
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1


def test_base64_with_a_character_outside_its_alphabet_is_refused() -> None:
    text = base64.b64encode(TUTORIAL.read_bytes()).decode()
    result = _run("decode", f"{text[:8]}!{text[8:]}", "--encoding", "base64")
    assert result.returncode == 1
    assert "is not valid base64" in result.stderr


def test_a_payloads_schema_may_be_given_as_its_run_folder(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    result = _run("decode", str(TUTORIAL), "--schema", str(run))
    assert (result.returncode, result.stdout) == (0, _json("tutorial_example"))


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        ([], "the following arguments are required"),
        (["export", "RUN"], "the following arguments are required: --to"),
    ],
    ids=["no command", "export without --to"],
)
def test_a_missing_argument_is_argparses_usage_and_status_2(
    args: list[str], missing: str
) -> None:
    result = _run(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("usage: flower-meta")
    assert missing in result.stderr.splitlines()[-1]


def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    """The trackers extra kept out by blocking its import (the wheel-only
    tests, e2e, run in a venv that truly lacks it)."""
    run = write_run(tmp_path / "run")
    export = f"['export', {str(run)!r}, '--to', 'mlflow']"
    result = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import sys; sys.modules['mlflow'] = None; "
            f"from flower_app.cli import main; sys.exit(main({export}))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "flower-meta: mlflow is not installed: "
        "pip install 'flower-meta-protocol[mlflow]'"
    ]


def test_a_report_without_matplotlib_prints_its_tables_and_names_the_extra(
    tmp_path: Path,
) -> None:
    """matplotlib kept out by blocking its import (the wheel-only tests, e2e,
    run `report` in a venv that truly lacks it)."""
    run = write_run(tmp_path / "run")
    result = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import sys; sys.modules['matplotlib'] = None; "
            "from flower_app.cli import main; "
            f"sys.exit(main(['report', {str(run)!r}]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "train: TrainProcessMetadata, by round" in result.stdout
    assert "wrote" not in result.stdout
    assert result.stderr.splitlines() == [
        "flower-meta: plots and report.html not written: matplotlib is not "
        "installed: pip install 'flower-meta-protocol[report]'"
    ]
    assert not (run / "report").exists()


def test_an_export_shows_its_progress_on_a_terminal_and_leaves_stdout_clean(
    tmp_path: Path,
) -> None:
    run = write_run(tmp_path / "runs" / "run")
    terminal, stderr = pty.openpty()
    with subprocess.Popen(
        [COMMAND, "export", str(run), "--to", "tensorboard"],
        stdout=subprocess.PIPE,
        stderr=stderr,
    ) as process:
        os.close(stderr)
        assert process.stdout is not None
        out = process.stdout.read().decode()
        assert process.wait(timeout=120) == 0
    shown = b""
    with contextlib.suppress(OSError):  # EIO: the terminal's other side closed
        while chunk := os.read(terminal, 65536):
            shown += chunk
    os.close(terminal)
    folder = tmp_path / "runs-trackers" / "tensorboard" / "run"  # not in runs/
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run"]
    assert out.splitlines() == [
        f"exported {run} to TensorBoard in {folder}; to view it: "
        f"tensorboard --logdir {folder}"
    ]
    assert b"exporting run to tensorboard" in shown
    assert shown.endswith(b"\x1b[2K")  # and erased when done


def test_generate_writes_where_it_is_told_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "stats.proto").write_text(
        'syntax = "proto3";\npackage acme.v1;\n'
        'import "flower_meta/v1/options.proto";\n'
        "message Stats {\n"
        '  double wall_seconds = 1 [(flower_meta.v1.field) = {unit: "s"}];\n}\n'
    )
    done = subprocess.run(
        [COMMAND, "generate", "stats.proto", "--docs-out", "docs"],
        cwd=tmp_path,  # no -I: the current folder is the import root
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"wrote {tmp_path}",
        f"wrote {tmp_path / 'docs'}",
    ]
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")}
    assert written == {"stats.proto", "stats_pb2.py", "stats_pb2.pyi", "docs/stats.md"}


def test_decode_takes_a_runs_payloads_out_with_their_type_urls(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")  # per round: 2 train, 1 evaluate, 1 failed
    out = tmp_path / "out"
    result = _run("decode", "--log", str(run), "--payloads", str(out))
    assert (result.returncode, result.stderr) == (0, "")
    train = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
    evaluate = "type.googleapis.com/flower_meta.v1.EvaluateProcessMetadata"
    assert result.stdout.splitlines() == [
        line
        for at in (1, 2)
        for line in (
            f"{train} {out / f'{at}-4-train.binpb'}",
            f"{train} {out / f'{at}-5-train.binpb'}",
            f"{evaluate} {out / f'{at}-4-evaluate.binpb'}",
        )
    ]
    records = [
        json.loads(line)
        for line in _run("decode", "--log", str(run)).stdout.splitlines()
    ]
    for record in records:
        if "accepted" not in record and "evaluated" not in record:
            continue
        stage = "train" if "accepted" in record else "evaluate"
        name = f"{record['serverRound']}-{record['nodeId']}-{stage}"
        url = (out / f"{name}.type_url").read_text()
        assert url == f"{train if stage == 'train' else evaluate}\n"
        shown = _run("decode", str(out / f"{name}.binpb"), "--type-url", url.strip())
        assert (
            json.loads(shown.stdout)
            == record["accepted" if stage == "train" else "evaluated"]
        )
    assert len(list(out.iterdir())) == 12  # 6 payloads, 6 type URLs


def test_payloads_need_a_log(tmp_path: Path) -> None:
    result = _run("decode", str(TUTORIAL), "--payloads", str(tmp_path / "out"))
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        "--payloads takes a run's payloads out: give --log RUN_FOLDER" in result.stderr
    )
    assert not (tmp_path / "out").exists()
