"""Write a run's report into `<run folder>/report/`: plots and one page."""

from collections.abc import Callable
from logging import WARNING
from pathlib import Path

from flwr.common import log

from flower_app.outcomes.model import Outcomes
from flower_app.outcomes.replay import load, run_config_values
from flower_app.outcomes.stragglers import STRAGGLER_FACTOR
from flower_app.protocol.files import output_folder
from flower_app.reporting import plots
from flower_app.reporting.html import write_html

REPORT_FOLDER = "report"


def write_report(
    run_dir: Path,
    straggler_factor: float = STRAGGLER_FACTOR,
    problem: Callable[[str], None] = lambda text: log(WARNING, "%s", text),
    outcomes: Outcomes | None = None,
) -> tuple[Outcomes, list[Path]]:
    """Write the run's plots and report.html; return its outcomes and the files.

    `outcomes`: the run's, as its strategy or a replay holds them (None:
    replay the folder's log now). A run config that cannot be read is told
    to `problem` and left out.
    """
    outcomes = load(run_dir) if outcomes is None else outcomes
    folder = output_folder(run_dir / REPORT_FOLDER)
    drawn = plots.write_plots(outcomes, folder)
    title = f"Flower run {outcomes.run_id or run_dir.name}: metadata report"
    config = run_config_values(run_dir, problem)
    page = write_html(outcomes, drawn, folder, title, straggler_factor, config)
    return outcomes, [*(plot.path for plot in drawn), page]
