"""Write a run folder's report into `<run folder>/report/`: plots and one page."""

from pathlib import Path

from flower_app.protocol.files import output_folder
from flower_app.reporting import plots
from flower_app.reporting.html import write_html
from flower_app.reporting.run_records import RunRecords, load

REPORT_FOLDER = "report"
STRAGGLER_FACTOR = 2.0


def write_report(
    run_dir: Path, straggler_factor: float = STRAGGLER_FACTOR
) -> tuple[RunRecords, list[Path]]:
    """Read the run's log, write its plots and report.html; return both."""
    records = load(run_dir)
    folder = output_folder(run_dir / REPORT_FOLDER)
    drawn = plots.write_plots(records, folder)
    title = f"Flower run {run_dir.name}: metadata report"
    return records, [
        *drawn,
        write_html(records, drawn, folder, title, straggler_factor),
    ]
