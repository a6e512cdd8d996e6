"""A run folder's log replayed into a tracker: `flower-meta export`."""

from collections.abc import Callable
from pathlib import Path

from flower_app.protocol.metadata_log import BINARY_LOG, CorruptLogError, read_log
from flower_app.protocol.records import written_at
from flower_app.protocol.run_schema import record_type
from flower_app.reporting.trackers.convert import BATCH, Tracker


def started_at(run_dir: Path) -> int | None:
    """Return when a run folder's first timed record was written, ms since the epoch."""
    try:
        for record in read_log(run_dir / BINARY_LOG, record_type(run_dir)):
            if (when := written_at(record)) is not None:
                return when
    except CorruptLogError:
        pass  # what precedes the damage had no time; export says what is wrong
    return None


def export(
    run_dir: Path, tracker: Tracker, progress: Callable[[int], None] = lambda _: None
) -> None:
    """Replay a run folder's log into `tracker`, round by round."""
    current: int | None = None
    records = read_log(run_dir / BINARY_LOG, record_type(run_dir))
    try:
        for count, record in enumerate(records, 1):
            server_round = record.server_round  # type: ignore[attr-defined]
            if current is not None and server_round != current:
                tracker.flush(BATCH)
            current = server_round
            tracker.append(record)
            progress(count)
    except CorruptLogError as err:
        tracker.outcomes.damage = str(err)
    tracker.close(run_dir)
