"""MLflow: one MLflow run per Flower run, in any tracking store."""

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from flower_app.protocol.files import regular_files, safe_name
from flower_app.protocol.metadata_log import LOCK
from flower_app.protocol.text import printable
from flower_app.reporting.trackers.convert import BATCH, Scalar, Text

MLFLOW_UI = "http://127.0.0.1:5000"
"""Where `mlflow ui` serves by default."""


class MlflowBackend:
    """One MLflow run per Flower run, in any tracking store.

    Names come from the log (record keys, field names) and the run config:
    they are made safe first (`files.safe_name`), and whatever the store
    still refuses is told to `problem` and skipped, batch by batch, so the
    rest of the run still arrives.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, str],
        problem: Callable[[str], None] | None = None,
        started: int | None = None,
    ):
        """Start an MLflow run named `run_name` in `experiment`, with `params`.

        `problem` takes what the store refuses; None: refusals raise.
        `started`: when the run began, ms since the epoch (None: now).
        """
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        # Its store's set-up lines ("Creating initial MLflow database tables")
        # are no news to a run's log or a command's one line a problem.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.problem = problem
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(
                experiment, artifact_location=_artifacts_beside(tracking_uri)
            )
        )
        # A training experiment: MLflow 3 otherwise opens its GenAI view.
        self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, TRAINING)
        # Exporting a run again replaces its MLflow run: one run a Flower run.
        for earlier in self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_NAME}` = '{_quoted(run_name)}'"
        ):
            self.client.delete_run(earlier.info.run_id)
        self.experiment_id = experiment_id
        self.run_id = self.client.create_run(
            experiment_id, run_name=run_name, start_time=started
        ).info.run_id
        self.tracking_uri = tracking_uri
        self._text_log: dict[str, list[str]] = {}
        found_params = [Param(safe_name(k), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(found_params), 100):
            self._logged("run config", params=found_params[start : start + 100])

    def scalars(self, values: Sequence[Scalar]) -> None:
        """Log metrics in batches of `BATCH` (MLflow's limit)."""
        from mlflow.entities import Metric

        metrics = [
            Metric(name, value, when, step) for name, value, step, when in values
        ]
        for start in range(0, len(metrics), BATCH):
            self._logged("metrics", metrics=metrics[start : start + BATCH])

    def texts(self, values: Sequence[Text]) -> None:
        """Keep each name's texts, round by round, as the artifact `text/<name>.md`."""
        for name, text, step, _ in values:
            self._text_log.setdefault(name, []).append(f"## round {step}\n\n{text}\n")
        for name in {name for name, *_ in values}:
            self.client.log_text(
                self.run_id, "\n".join(self._text_log[name]), f"text/{name}.md"
            )

    def units(self, units: dict[str, str]) -> None:
        """Tag each field with its unit."""
        from mlflow.entities import RunTag

        self._logged("units", tags=[RunTag(f"unit/{k}", v) for k, v in units.items()])

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        """Keep the run folder's own files as artifacts; end the run at `ended`.

        Only regular files the folder holds are uploaded: a symlink in it
        is skipped, never followed to what it points at.
        """
        if run_dir is not None:
            for path in regular_files(run_dir):
                if path.name == LOCK or path.name.startswith("."):
                    continue  # the log's lock; a temporary file of a write
                folder = path.parent.relative_to(run_dir).as_posix()
                self.client.log_artifact(
                    self.run_id, str(path), None if folder == "." else folder
                )
        self.client.set_terminated(self.run_id, end_time=ended)

    def _logged(self, what: str, **batch: object) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_batch(self.run_id, **batch)  # type: ignore[arg-type]
        except MlflowException as err:
            if self.problem is None:
                raise
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.problem(f"MLflow refused {what}, left out: {printable(reason, 300)}")


def run_page(experiment_id: str, run_id: str, ui: str = MLFLOW_UI) -> str:
    """Return the MLflow UI's page of a run's charts, in the model-training view.

    MLflow 3's UI opens in its GenAI view whatever the experiment's kind
    tag says, until its "Model training" switch is set; the page's
    `workflowType` parameter sets it.
    """
    return (
        f"{ui}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics"
        "?workflowType=machine_learning"
    )


EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING = "custom_model_development"
"""The experiment kind MLflow 3 shows as model training, not GenAI."""
RUN_NAME = "mlflow.runName"


def _quoted(text: str) -> str:
    """Put `text` inside a single-quoted MLflow search string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _artifacts_beside(tracking_uri: str) -> str | None:
    """Keep a SQLite store's artifacts in a folder beside it, not in the cwd.

    MLflow otherwise puts them under ./mlruns of whatever directory the
    process runs in; other stores choose for themselves (None).
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix) :]).parent / "mlartifacts").as_uri()
