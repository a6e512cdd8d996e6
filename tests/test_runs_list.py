"""`flower-meta runs`: the runs folder as a list, newest first, and nothing else."""

import os
import subprocess
from pathlib import Path

from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog
from flower_meta.v1.metadata_pb2 import CentralizedEvaluation, MetadataLogRecord
from tests.helpers import sample_metadata, write_run
from tests.testing import VENV_BIN

COMMAND = str(VENV_BIN / "flower-meta")
DAY = 1_796_000_000  # 2026-11-30 00:53:20 UTC, in seconds


def _run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FLWR_HOME=str(home)) if home else None
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, timeout=120, env=env
    )


def _write(
    folder: Path, run_id: int, started: int, rounds: int, accuracy: float
) -> None:
    """A run of `rounds` rounds whose first record (round 0's centralized
    evaluation) is stamped `started` (s)."""
    log = MetadataLog(folder)
    for at in range(rounds + 1):
        if at:
            record = MetadataLogRecord(
                run_id=run_id, server_round=at, node_id=3, record_key="train_metadata"
            )
            record.accepted.CopyFrom(sample_metadata(2))
            record.received_at.seconds = started + 60 * at
            log.append(record)
        centralized = MetadataLogRecord(run_id=run_id, server_round=at)
        centralized.centralized.CopyFrom(
            CentralizedEvaluation(
                metrics={
                    "accuracy": accuracy - 0.1 * (rounds - at),
                    "loss": 1 - accuracy + 0.1 * (rounds - at),
                }
            )
        )
        centralized.received_at.seconds = started + 60 * at + (30 if at else 0)
        log.append(centralized)
    log.close()


def _final(accuracy: str, loss: str) -> list[str]:
    return ["accuracy", f"{accuracy},", "loss", loss]


def test_runs_are_listed_newest_first_with_status_rounds_and_accuracy(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    _write(runs / "111", 111, DAY, 3, 0.9512)
    _write(runs / "222", 222, DAY + 7200, 2, 0.8)  # two hours later: the newest
    old = write_run(runs / "copied-elsewhere")  # unstamped records, run id 9
    os.utime(old / BINARY_LOG, (DAY - 86400, DAY - 86400))  # a day before
    _write(runs / "333", 333, DAY + 3600, 1, 0.7)
    with (runs / "333" / BINARY_LOG).open("ab") as tail:
        tail.write(b"\x40\x0a")  # a torn last record
    (runs / "notes.txt").write_text("not a run\n")
    (runs / "empty").mkdir()
    live = MetadataLog(runs / "444")  # a run being written now, no record yet
    os.utime(runs / "444" / BINARY_LOG, (DAY + 9000, DAY + 9000))

    listed = _run("runs", str(runs))
    latest = _run("runs", "--latest", str(runs))
    live.close()

    assert (listed.returncode, listed.stderr) == (0, "")
    lines = [line.split() for line in listed.stdout.splitlines()]
    heading = "started (UTC) run id status rounds final centralized folder"
    assert " ".join(lines[0]) == heading
    assert lines[1:] == [
        ["2026-11-30", "03:23:20", "444", "running", "0", "-", str(runs / "444")],
        [
            "2026-11-30",
            "02:53:20",
            "222",
            "ended",
            "2",
            *_final("0.8", "0.2"),
            str(runs / "222"),
        ],
        [
            "2026-11-30",
            "01:53:20",
            "333",
            "damaged",
            "1",
            *_final("0.7", "0.3"),
            str(runs / "333"),
        ],
        [
            "2026-11-30",
            "00:53:20",
            "111",
            "ended",
            "3",
            *_final("0.9512", "0.0488"),
            str(runs / "111"),
        ],
        ["2026-11-29", "00:53:20", "9", "ended", "2", "-", str(old)],
    ]
    assert (latest.returncode, latest.stdout) == (0, f"{runs / '444'}\n")


def test_the_default_runs_folder_is_flwr_homes(tmp_path: Path) -> None:
    _write(tmp_path / "flower-meta-runs" / "5", 5, DAY, 1, 0.5)
    result = _run("runs", "--latest", home=tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        f"{tmp_path / 'flower-meta-runs' / '5'}\n",
    )


def test_no_runs_folder_is_one_line_and_status_1(tmp_path: Path) -> None:
    missing = _run("runs", home=tmp_path)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        f"flower-meta: no runs folder at {tmp_path / 'flower-meta-runs'}: "
        "no run has written there\n"
    )
    (tmp_path / "flower-meta-runs").mkdir()
    empty = _run("runs", "--latest", home=tmp_path)
    assert (empty.returncode, empty.stdout) == (1, "")
    assert "holds no run folder yet" in empty.stderr
