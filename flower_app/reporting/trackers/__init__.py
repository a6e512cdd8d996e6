"""A run's metadata in the experiment trackers people look at: MLflow, TensorBoard.

The same records the metadata log holds become scalars, live (the strategy
hands each record to a `Tracker` as it writes it) or afterwards (`export`
replays a run folder's log), so both give the same numbers:

- `<stage>/<field>/node_<id>`: each client's value per round (step: the
  round), for the first `CLIENT_CAP` clients of a stage to report only, so
  that a run of thousands of clients stays a few hundred charts (the
  round's summary covers every client);
- `<stage>_per_<step>/<field>/node_<id>`: a number series (e.g. per-epoch
  losses, `train_per_epoch/<field>/node_<id>`), one step per
  element, continuing across rounds: its own group, since its steps are
  epochs, not rounds. A round's points start after the longest series of
  every earlier round, so every client's round r sits at the same steps,
  whatever that client sent (or had refused) before;
- `<stage>/<field>` as text: any field that is not a number (text, enums,
  bytes, lists, maps), per round a table of how many clients sent each
  value (TensorBoard's Text tab; in MLflow the artifact
  `text/<stage>/<field>.md`);
- `<stage>/<field>/min|median|max`, `<stage>/<flag>/share_true`,
  `<stage>/accepted|rejected|failed|stragglers`: the round's summary;
- `centralized/<metric>`: the server's own evaluation, per round.

Every value carries the time its record was written (`received_at`), so an
export shows when training happened, not when it was exported; the MLflow
run starts and ends at the run's first and last record. Field names and
units come from the schema: units are MLflow tags `unit/<stage>/<field>`
and a TensorBoard text summary "units"; the run config is the MLflow run's
params, and TensorBoard's hyperparameters (its HParams tab) and a text
summary "run_config". A tracker
that fails is reported once in the log and then left out; it never stops a
run. MLflow and TensorBoard are optional dependencies
(`pip install 'flower-meta-protocol[mlflow]'`, `[tensorboard]`, or
`[trackers]` for both).
"""

from flower_app.reporting.trackers.convert import (
    TRACKED_CLIENTS,
    Backend,
    Scalar,
    Text,
    Tracker,
)
from flower_app.reporting.trackers.live import (
    KINDS,
    Guarded,
    default_mlflow_uri,
    default_tensorboard_dir,
    trackers,
)
from flower_app.reporting.trackers.mlflow_backend import (
    MLFLOW_UI,
    MlflowBackend,
    run_page,
)
from flower_app.reporting.trackers.replay import export, started_at
from flower_app.reporting.trackers.tensorboard_backend import TensorBoardBackend

__all__ = [
    "KINDS",
    "MLFLOW_UI",
    "TRACKED_CLIENTS",
    "Backend",
    "Guarded",
    "MlflowBackend",
    "Scalar",
    "TensorBoardBackend",
    "Text",
    "Tracker",
    "default_mlflow_uri",
    "default_tensorboard_dir",
    "export",
    "run_page",
    "started_at",
    "trackers",
]
