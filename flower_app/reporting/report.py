"""Write a run folder's report: its plots, into `<run folder>/report/`."""

from pathlib import Path

from flower_app.reporting import plots
from flower_app.reporting.run_records import RunRecords, load

REPORT_FOLDER = "report"


def write_report(run_dir: Path) -> tuple[RunRecords, list[Path]]:
    """Read the run's log and write its report; return the records and files."""
    records = load(run_dir)
    return records, plots.write_plots(records, run_dir / REPORT_FOLDER)
