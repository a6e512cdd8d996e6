"""The runs folder as a list: each run folder's start, run id, status and result.

A run's result is its last centralized evaluation, every metric of it by
name.

What `flower-meta runs` prints, newest first by when the run started (its
first record's time; a folder whose log has no timed record sorts by the
log file's own time). A run's status is read from its folder alone:
`running` while a process holds the log's lock, `damaged` when the log's
tail does not parse, else `ended`. Anything in the runs folder that is no
run folder (no metadata log) is left out.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    CorruptLogError,
    is_locked,
    read_log,
)
from flower_app.protocol.records import written_at
from flower_app.protocol.run_schema import SchemaError, record_type


@dataclass(frozen=True)
class RunInfo:
    """One run folder, summed up."""

    folder: Path
    run_id: str
    """The run id its records carry (the folder's name if they carry none)."""
    started: int
    """ms since the Unix epoch: its first record's time, else its log's mtime."""
    status: str
    """"running", "ended" or "damaged"."""
    rounds: int
    """Rounds with any outcome (round 0, the initial evaluation, not counted)."""
    final: dict[str, float]
    """The last centralized evaluation's metrics; empty if the run has none."""

    def row(self) -> list[str]:
        """Give the run as the cells of one line of `flower-meta runs`."""
        when = datetime.fromtimestamp(self.started / 1000, UTC)
        return [
            when.strftime("%Y-%m-%d %H:%M:%S"),
            self.run_id,
            self.status,
            str(self.rounds),
            ", ".join(f"{k} {v:.4g}" for k, v in sorted(self.final.items())) or "-",
            str(self.folder),
        ]


COLUMNS = ["started (UTC)", "run id", "status", "rounds", "final centralized", "folder"]


def runs(root: Path) -> list[RunInfo]:
    """Every run folder in `root`, newest first.

    Raises `FileNotFoundError` (or `NotADirectoryError`) naming `root`
    when it is no folder; a run folder whose schema does not build is
    listed as damaged.
    """
    if not root.exists():
        raise FileNotFoundError(f"no runs folder at {root}: no run has written there")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file, not a runs folder")
    found = [info(folder) for folder in _run_folders(root)]
    return sorted(found, key=lambda run: (run.started, run.run_id), reverse=True)


def _run_folders(root: Path) -> Iterator[Path]:
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and (entry / BINARY_LOG).is_file():
            yield entry


def info(folder: Path) -> RunInfo:
    """Sum one run folder up, reading its log once, records only (no payloads)."""
    run_id = ""
    started: int | None = None
    rounds: set[int] = set()
    final: dict[str, float] = {}
    last_centralized = -1
    status = "running" if is_locked(folder) else "ended"
    try:
        for record in read_log(folder / BINARY_LOG, record_type(folder)):
            run_id = run_id or str(record.run_id or "")  # type: ignore[attr-defined]
            if started is None:
                started = written_at(record)
            at = record.server_round  # type: ignore[attr-defined]
            outcome = record.WhichOneof("outcome")
            if outcome == "centralized" and at >= last_centralized:
                final = dict(record.centralized.metrics)  # type: ignore[attr-defined]
                last_centralized = at
            if at > 0 and outcome is not None:
                rounds.add(at)
    except (CorruptLogError, SchemaError):
        status = "damaged" if status == "ended" else status
    if started is None:
        started = int((folder / BINARY_LOG).stat().st_mtime * 1000)
    run_id = run_id or folder.name
    return RunInfo(folder, run_id, started, status, len(rounds), final)
