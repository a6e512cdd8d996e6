"""`MetadataRun`: the one object that owns a run's metadata outputs.

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        with MetadataRun.from_context(context) as run:
            strategy = run.wrap(FedAvg())
            strategy.start(grid=grid, initial_arrays=arrays, num_rounds=3)

The metadata types are named once, in the run's `MetadataOptions`: the run
opens its folder's metadata log with them, writes the run config beside it,
starts the trackers the run config names, and gives all of it to every
strategy it wraps. When the run ends it closes the log, writes the report
and closes the trackers. None of this stops a run: a disk that refuses, a
tracker that fails or a missing extra costs one warning each.
"""

import json
import os
from collections.abc import Callable, Mapping, Sequence
from logging import INFO, WARNING
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from flwr.app import Context
from flwr.common import log
from flwr.serverapp.strategy import Strategy

from flower_app.extras import missing_extra
from flower_app.outcomes.model import Outcomes
from flower_app.outcomes.replay import RUN_CONFIG
from flower_app.outcomes.summary import summary
from flower_app.protocol.files import run_folder, write_atomic
from flower_app.protocol.metadata_log import MetadataLog
from flower_app.reporting.trackers import KINDS, Guarded, trackers
from flower_app.server.strategy import MetadataOptions, MetadataStrategy

DEFAULT_OPTIONS = MetadataOptions()
S = TypeVar("S", bound=Strategy)
Value = bool | int | float | str
T = TypeVar("T", bool, str)


class MetadataRun:
    """A run's metadata log, run config, trackers and report.

    Parameters
    ----------
    folder : Path
        The run folder: its metadata log, run config, report and TensorBoard
        files go here.
    options : MetadataOptions (default: MetadataOptions())
        The metadata types (named only here) and how the strategies read,
        use and show them.
    run_id : int (default: 0)
        The Flower run id the records are filed under.
    run_config : Mapping[str, bool | int | float | str] (default: {})
        Written to the folder's `run_config.json`, for the report and the
        trackers' parameters.
    json_lines : bool (default: True)
        Keep `metadata.jsonl` beside the binary log.
    report : bool (default: True)
        Write the report (needs the `report` extra) when the run closes.
    tracker_names : Sequence[str] (default: ())
        Trackers fed live: "mlflow", "tensorboard" (the `trackers` extra).
    mlflow_tracking_uri : str (default: "")
        MLflow's store; empty: $MLFLOW_TRACKING_URI, else a SQLite file
        beside the run folders.

    """

    def __init__(
        self,
        folder: Path,
        *,
        options: MetadataOptions = DEFAULT_OPTIONS,
        run_id: int = 0,
        run_config: Mapping[str, Value] | None = None,
        json_lines: bool = True,
        report: bool = True,
        tracker_names: Sequence[str] = (),
        mlflow_tracking_uri: str = "",
    ) -> None:
        """Open the run's outputs; see the class for the parameters."""
        unknown = [name for name in tracker_names if name not in KINDS]
        if unknown:
            raise ValueError(
                f"run config 'trackers' must name {' or '.join(KINDS)}, "
                f"got {unknown[0]!r}"
            )
        self.folder = folder
        self.options = options
        self.run_id = run_id
        self.report = report
        config = dict(run_config or {})
        text = json.dumps(config, indent=2).encode()
        _kept("run config", lambda: write_atomic(folder, RUN_CONFIG, text))
        self.log = MetadataLog(folder, json_lines, options.types)
        self.outcomes = Outcomes()
        """Every outcome of the strategies this run wrapped, as they logged them."""
        self.strategies: list[MetadataStrategy[Any]] = []
        """The strategies this run wrapped."""
        self.trackers: list[Guarded] = []
        if tracker_names:
            uri = mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
            params = {key: str(value) for key, value in config.items()}
            self.trackers = trackers(
                tracker_names,
                folder,
                str(run_id),
                params,
                uri,
                options.straggler_factor,
            )
            names = ", ".join(t.name for t in self.trackers) or "none started"
            log(INFO, "Trackers: %s", names)

    @classmethod
    def from_context(
        cls, context: Context, options: MetadataOptions = DEFAULT_OPTIONS
    ) -> "MetadataRun":
        """Open the outputs of the run `context` belongs to, as its run config says.

        Reads these run-config keys, each optional: `output-dir` (str; the
        run folder is `<output-dir>/<run id>`, default
        `$FLWR_HOME/flower-meta-runs`), `json-log` (bool, default true),
        `report` (bool, default true), `trackers` (str, comma-separated
        "mlflow", "tensorboard"; default none), `mlflow-tracking-uri` (str).
        A key of the wrong type raises `TypeError` naming it.
        """
        config = context.run_config
        return cls(
            run_folder(_key(config, "output-dir", ""), context.run_id),
            options=options,
            run_id=context.run_id,
            run_config=config,
            json_lines=_key(config, "json-log", True),
            report=_key(config, "report", True),
            tracker_names=tracker_names(_key(config, "trackers", "")),
            mlflow_tracking_uri=_key(config, "mlflow-tracking-uri", ""),
        )

    def wrap(self, strategy: S) -> MetadataStrategy[S]:
        """Put `strategy` behind a `MetadataStrategy` writing to this run."""
        wrapped = MetadataStrategy(
            strategy,
            metadata=self.options,
            metadata_log=self.log,
            trackers=self.trackers,
            run_id=self.run_id,
            outcomes=self.outcomes,
        )
        self.strategies.append(wrapped)
        return wrapped

    def close(self) -> None:
        """Log the run's summary, close the log, write the report, close trackers."""
        if self.strategies:
            log(INFO, "Summary: %s", summary(self.outcomes))
        self.log.close()
        if self.log.unpersisted:
            log(
                WARNING,
                "Metadata log: %s records could not be written (see the warning above)",
                len(self.log.unpersisted),
            )
        log(INFO, "Metadata log: %s", self.folder)
        if self.report:
            self._write_report()
        for tracker in self.trackers:
            tracker.close(self.folder)

    def __enter__(self) -> "MetadataRun":
        """Use the run as a context: it closes when the block ends."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the run, also when the block raised."""
        self.close()

    def _write_report(self) -> None:
        """Log the run's summary tables and write its report into the folder.

        From the outcomes the run holds: the folder is not read back.
        """
        try:
            from flower_app.reporting import tables
            from flower_app.reporting.report import REPORT_FOLDER, write_report
        except ModuleNotFoundError as err:
            log(WARNING, "report not written: %s", missing_extra(err) or err)
            return
        try:
            _, written = write_report(
                self.folder,
                self.options.straggler_factor,
                outcomes=self.outcomes,
            )
        except (OSError, ValueError) as err:
            log(WARNING, "report not written, the run goes on: %s", err)
            return
        log(INFO, "%s", tables.as_text(self.outcomes))
        log(INFO, "Report: %s", self.folder / REPORT_FOLDER)
        for path in written:
            log(INFO, "  %s", path.name)


def tracker_names(text: str) -> list[str]:
    """Read the run config's `trackers`: names separated by commas."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _key(config: Mapping[str, Value], key: str, default: T) -> T:
    """Read an optional run-config key of the default's type."""
    value = config.get(key, default)
    if type(value) is not type(default):
        kind = type(default).__name__
        raise TypeError(f"run config {key!r} must be {kind}, got {value!r}")
    return value


def _kept(what: str, write: Callable[[], object]) -> None:
    """Write a file of the run folder; a disk that refuses costs a warning only."""
    try:
        write()
    except OSError as err:
        log(WARNING, "%s not written, the run goes on: %s", what, err)
