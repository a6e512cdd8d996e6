"""`flower-meta decode` and `report`: vectors, logs, wrong arguments, pipes.

The command runs as users run it, through its console script, so tracebacks,
exit statuses and closed pipes are real.
"""

import base64
import subprocess
from pathlib import Path

import pytest

from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog
from flower_app.testing import VENV_BIN
from tests.helpers import VECTORS, write_run

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
    return {
        "missing": tmp_path / "missing",
        "empty folder": tmp_path / "empty",
        "text file": tmp_path / "notes.txt",
        "payload file": TUTORIAL,
        "run folder": run,
        "log file": run / BINARY_LOG,
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
        "is a run folder's metadata log, not a payload: flower-meta decode --log",
    ),
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
