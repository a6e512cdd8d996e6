"""Trackers fed live by a run: started by name, guarded so none stops the run."""

from collections.abc import Callable, Iterable
from logging import WARNING
from pathlib import Path

from flwr.common import log
from google.protobuf.message import Message

from flower_app.outcomes.stragglers import STRAGGLER_FACTOR
from flower_app.protocol.files import output_folder, trackers_folder
from flower_app.reporting.trackers.convert import Backend, Tracker
from flower_app.reporting.trackers.mlflow_backend import MlflowBackend
from flower_app.reporting.trackers.tensorboard_backend import TensorBoardBackend

KINDS = ("mlflow", "tensorboard")


class Guarded:
    """A tracker that, when it fails, says so once and stops: the run goes on."""

    def __init__(self, name: str, tracker: Tracker) -> None:
        """Guard `tracker`, called `name` in the one warning it may cost."""
        self.name = name
        self.tracker: Tracker | None = tracker

    def append(self, record: Message) -> None:
        """Pass a record on, unless the tracker failed before."""
        self._call(lambda tracker: tracker.append(record))

    def flush(self) -> None:
        """Flush the tracker, unless it failed before."""
        self._call(lambda tracker: tracker.flush())

    def close(self, run_dir: Path | None = None) -> None:
        """Close the tracker, unless it failed before."""
        self._call(lambda tracker: tracker.close(run_dir))

    def _call(self, action: Callable[[Tracker], None]) -> None:
        if self.tracker is None:
            return
        try:
            action(self.tracker)
        except Exception as err:  # a tracker must never stop a run
            log(
                WARNING,
                "tracker %s failed, off for this run: %r",
                self.name,
                err,
            )
            self.tracker = None


def default_mlflow_uri(run_dir: Path) -> str:
    """MLflow's store for a run folder, unless told: one SQLite file for all runs.

    `sqlite:///<trackers folder>/mlflow.db` (`files.trackers_folder`), one
    experiment "flower-meta" for every run, artifacts in `mlartifacts/`
    beside the database.
    """
    folder = output_folder(trackers_folder(run_dir))
    return f"sqlite:///{folder / 'mlflow.db'}"


def default_tensorboard_dir(run_dir: Path) -> Path:
    """TensorBoard's folder for a run folder, unless told.

    `<trackers folder>/tensorboard/<run folder's name>`: one TensorBoard
    (`tensorboard --logdir <trackers folder>/tensorboard`) shows every run.
    """
    return trackers_folder(run_dir) / "tensorboard" / run_dir.name


def trackers(
    kinds: Iterable[str],
    run_dir: Path,
    run_name: str,
    params: dict[str, str],
    mlflow_uri: str = "",
    straggler_factor: float = STRAGGLER_FACTOR,
) -> list[Guarded]:
    """Start the trackers named in `kinds` for one run, each guarded.

    Their stores default to the trackers folder beside the runs folder
    (`default_mlflow_uri`, `default_tensorboard_dir`).
    """
    found = []
    for kind in kinds:
        try:
            backend = _backend(kind, run_dir, run_name, params, mlflow_uri)
        except Exception as err:  # e.g. not installed: say so, run on
            log(WARNING, "tracker %s is off for this run: %r", kind, err)
            continue
        found.append(Guarded(kind, Tracker(backend, straggler_factor)))
    return found


def _backend(
    kind: str, run_dir: Path, run_name: str, params: dict[str, str], mlflow_uri: str
) -> Backend:
    if kind == "mlflow":
        uri = mlflow_uri or default_mlflow_uri(run_dir)
        return MlflowBackend(uri, "flower-meta", run_name, params)
    if kind == "tensorboard":
        return TensorBoardBackend(default_tensorboard_dir(run_dir), params)
    raise ValueError(f"trackers are {', '.join(KINDS)}; not {kind!r}")
