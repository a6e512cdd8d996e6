"""Write a run folder's report into `<run folder>/report/`: plots and one page."""

from collections.abc import Callable
from logging import WARNING
from pathlib import Path

from flwr.common import log

from flower_app.protocol.files import output_folder
from flower_app.reporting import plots
from flower_app.reporting.html import write_html
from flower_app.reporting.run_records import RunRecords, load, run_config_values

REPORT_FOLDER = "report"
STRAGGLER_FACTOR = 2.0


def write_report(
    run_dir: Path,
    straggler_factor: float = STRAGGLER_FACTOR,
    problem: Callable[[str], None] = lambda text: log(WARNING, "%s", text),
    records: RunRecords | None = None,
) -> tuple[RunRecords, list[Path]]:
    """Read the run's log, write its plots and report.html; return both.

    A run config that cannot be read is told to `problem` and left out.
    `records`: the run's log already read (None: read it now).
    """
    records = load(run_dir) if records is None else records
    folder = output_folder(run_dir / REPORT_FOLDER)
    drawn = plots.write_plots(records, folder)
    title = f"Flower run {records.run_id or run_dir.name}: metadata report"
    config = run_config_values(run_dir, problem)
    page = write_html(records, drawn, folder, title, straggler_factor, config)
    return records, [*(plot.path for plot in drawn), page]
