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

import logging
import math
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from logging import WARNING
from pathlib import Path
from typing import Protocol

from flwr.common import log
from google.protobuf.message import Message

from flower_app.protocol import display, schema
from flower_app.protocol.files import (
    output_folder,
    regular_files,
    safe_name,
    trackers_folder,
)
from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    LOCK,
    CorruptLogError,
    read_log,
)
from flower_app.protocol.run_schema import record_type
from flower_app.protocol.schema import FieldDescriptor
from flower_app.protocol.text import printable
from flower_app.reporting.run_records import Messages, RunRecords
from flower_app.reporting.tables import (
    VALUES_SHOWN,
    numeric_fields,
    other_fields,
    value_text,
)

Scalar = tuple[str, float, int, int]
"""(name, value, step, when: milliseconds since the Unix epoch)"""
KINDS = ("mlflow", "tensorboard")
CLIENT_CAP = 10
"""Clients of a stage whose own values are tracked; the summaries cover all."""
DEFAULT_STRAGGLER_FACTOR = 2.0
MLFLOW_UI = "http://127.0.0.1:5000"
"""Where `mlflow ui` serves by default."""


Text = tuple[str, str, int, int]
"""(name, Markdown, step, when: milliseconds since the Unix epoch)"""


class Backend(Protocol):
    """What a tracker library is asked to do."""

    def scalars(self, values: Sequence[Scalar]) -> None:
        """Record scalars."""

    def texts(self, values: Sequence[Text]) -> None:
        """Record texts: Markdown, one per name and step."""

    def units(self, units: dict[str, str]) -> None:
        """Record what each field's numbers are measured in."""

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        """Finish, keeping the run folder's files where the tracker can.

        `ended`: the run's last record's time (ms since the epoch), if known.
        """


class Tracker:
    """Turns metadata log records into a tracker's scalars, round by round."""

    def __init__(
        self, backend: Backend, straggler_factor: float = DEFAULT_STRAGGLER_FACTOR
    ):
        """Send to `backend`; flag stragglers above `straggler_factor` x the median."""
        self.backend = backend
        self.straggler_factor = straggler_factor
        self.records = RunRecords()
        self._offsets: dict[str, int] = defaultdict(int)
        """A series' first step of the next round: the earlier rounds' longest."""
        self._series: dict[tuple[str, int], list[tuple[int, Message, int]]] = (
            defaultdict(list)
        )
        """(stage key, round) -> tracked clients' (node, message, when)."""
        self._pending: list[Scalar] = []
        self._texts: list[Text] = []
        self._seen: dict[str, set[int]] = defaultdict(set)
        self._tracked: dict[str, set[int]] = defaultdict(set)
        self._units: dict[str, str] = {}
        self._rounds: dict[tuple[str, int], int] = {}
        self.last: int | None = None
        """The latest record time seen, ms since the Unix epoch."""

    def append(self, record: Message) -> None:
        """Take one record: a client's values now, the round's summary at `flush`.

        `record` is a `MetadataLogRecord` of this build or of a log's own schema.
        """
        key = self.records.add(record)
        at = record.server_round  # type: ignore[attr-defined]
        when = written_at(record) or int(time.time() * 1000)
        self.last = max(self.last or when, when)
        if record.WhichOneof("outcome") == "centralized":
            metrics = self.records.centralized[at]
            self._pending += [
                (f"centralized/{safe_name(k)}", v, at, when) for k, v in metrics.items()
            ]
            return
        if not key:
            return
        stage = self.records.stage(key)
        self._rounds[key, at] = max(self._rounds.get((key, at), when), when)
        node = record.node_id  # type: ignore[attr-defined]
        tracked = self._tracked[key]
        if node not in tracked and len(tracked) < CLIENT_CAP:
            tracked.add(node)
        meta = stage.accepted.get(at, {}).get(node) if node in tracked else None
        if meta is not None:
            self._client(safe_name(stage.name), node, at, meta, when)
            self._series[key, at].append((node, meta, when))

    def flush(self) -> None:
        """Summarise the rounds taken since the last flush; send everything.

        A summarised round's messages are let go: a tracker holds one round.
        """
        for (key, at), when in sorted(self._rounds.items()):
            self._series_points(key, at)
            self._summary(key, at, when)
            self.records.stage(key).accepted.pop(at, None)
        self._rounds.clear()
        if self._units:
            self.backend.units(dict(self._units))
            self._units.clear()
        if self._pending:
            self.backend.scalars(self._pending)
            self._pending = []
        if self._texts:
            self.backend.texts(self._texts)
            self._texts = []

    def close(self, run_dir: Path | None = None) -> None:
        """Send what is left and finish."""
        self.flush()
        self.backend.close(run_dir, self.last)

    def _client(self, stage: str, node: int, at: int, meta: Message, when: int) -> None:
        for field in numeric_fields(meta.DESCRIPTOR):
            name = f"{stage}/{safe_name(field.name)}"
            if unit := schema.unit(field):
                self._units[name] = printable(unit, 200)
            if field.is_repeated:
                continue  # at the round's end, when its longest series is known
            if (value := display.value(meta, field)) is not None:
                self._pending.append((f"{name}/node_{node}", value, at, when))

    def _series_points(self, key: str, at: int) -> None:
        """Send the tracked clients' series of one round, aligned across clients.

        Round `at` of a series starts after the longest series of each
        earlier round (of every client, tracked or not): a step depends on
        the round and the element's index only.
        """
        stage = self.records.stage(key)
        accepted = list((stage.accepted.get(at) or Messages()).values())
        name = safe_name(stage.name)
        tracked = self._series.pop((key, at), [])
        for field in numeric_fields(stage.message_type):
            if not field.is_repeated:
                continue
            step = safe_name(schema.field_spec(field).series or "element")
            series = f"{name}_per_{step}/{safe_name(field.name)}"
            offset = self._offsets[series]
            for node, meta, when in tracked:
                for index, value in enumerate(getattr(meta, field.name), 1):
                    self._pending.append(
                        (f"{series}/node_{node}", float(value), offset + index, when)
                    )
            longest = max((len(getattr(m, field.name)) for m in accepted), default=0)
            self._offsets[series] = offset + longest

    def _summary(self, key: str, at: int, when: int) -> None:
        stage = self.records.stage(key)
        accepted = stage.accepted.get(at) or Messages()
        counts = {
            "accepted": len(accepted),
            "rejected": len(stage.rejected.get(at, {})),
            "failed": len(stage.failed.get(at, {})),
        }
        first = set(accepted) - self._seen[key]
        self._seen[key] |= set(accepted)
        late = display.stragglers(accepted, self.straggler_factor, first)
        counts["stragglers"] = len(late.slow)
        name = safe_name(stage.name)
        self._pending += [
            (f"{name}/{k}", float(v), at, when) for k, v in counts.items()
        ]
        messages = list(accepted.values())
        for field in numeric_fields(stage.message_type):
            self._pending += [
                (f"{name}/{safe_name(field.name)}/{what}", value, at, when)
                for what, value in _field_summary(messages, field)
            ]
        for field in other_fields(stage.message_type):
            sent: Counter[str | None] = Counter(
                value_text(meta, field) for meta in messages
            )
            if sent:
                text = _counts_markdown(sent)
                self._texts.append((f"{name}/{safe_name(field.name)}", text, at, when))


def _field_summary(
    messages: list[Message], field: FieldDescriptor
) -> list[tuple[str, float]]:
    present = display.values(messages, field)
    if not present:
        return []
    if schema.is_bool(field):
        return [("share_true", present.count(1.0) / len(present))]
    return [
        ("min", min(present)),
        ("median", statistics.median(present)),
        ("max", max(present)),
    ]


def _counts_markdown(counts: Counter[str | None]) -> str:
    """Tabulate in Markdown how many clients sent each value, most first."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))
    rows = [
        f"| {_cell('(not sent)' if value is None else value)} | {count} |"
        for value, count in ranked[:VALUES_SHOWN]
    ]
    if len(ranked) > VALUES_SHOWN:
        rest = sum(count for _, count in ranked[VALUES_SHOWN:])
        rows.append(f"| {len(ranked) - VALUES_SHOWN} other values | {rest} |")
    return "| value | clients |\n| --- | --- |\n" + "\n".join(rows)


def written_at(record: Message) -> int | None:
    """When a record was written (its `received_at`), ms since the Unix epoch."""
    stamp = record.received_at  # type: ignore[attr-defined]
    if not stamp.seconds and not stamp.nanos:
        return None
    return int(stamp.seconds * 1000 + stamp.nanos // 1_000_000)


def started_at(run_dir: Path) -> int | None:
    """Return when a run folder's first timed record was written, ms since the epoch."""
    try:
        for record in read_log(run_dir / BINARY_LOG, record_type(run_dir)):
            if (when := written_at(record)) is not None:
                return when
    except CorruptLogError:
        pass  # what precedes the damage had no time; export says what is wrong
    return None


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
        """Log metrics in batches of 1000 (MLflow's limit)."""
        from mlflow.entities import Metric

        metrics = [
            Metric(name, value, when, step) for name, value, step, when in values
        ]
        for start in range(0, len(metrics), 1000):
            self._logged("metrics", metrics=metrics[start : start + 1000])

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


class TensorBoardBackend:
    """TensorBoard event files in one folder per Flower run.

    Written with TensorBoard's own event writer and protos (the package
    `tensorboard`), so no ML framework is needed.
    """

    def __init__(self, log_dir: Path, params: dict[str, str] | None = None) -> None:
        """Write event files into `log_dir`; `params`: the run config, as text."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        folder = output_folder(log_dir)
        for earlier in folder.glob("events.out.tfevents.*"):
            if earlier.is_symlink() or earlier.is_file():  # a link, never its target
                earlier.unlink()  # exporting again replaces the run, not adds one
        self.log_dir = folder
        self.writer = EventFileWriter(str(folder))
        if params:
            self._table("run_config", ("key", "value"), params)
            self._hparams(params)

    def scalars(self, values: Sequence[Scalar]) -> None:
        """Add each scalar at its step, at the time of its record."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        for name, value, step, when in values:
            entry = Summary.Value(tag=name, simple_value=value)
            self._add(Summary(value=[entry]), step, when / 1000)
        self.writer.flush()

    def texts(self, values: Sequence[Text]) -> None:
        """Add each text (Markdown) at its step, at the time of its record."""
        from tensorboard.plugins.text.summary_v2 import text_pb

        for name, text, step, when in values:
            self._add(text_pb(f"{name}/text_summary", text), step, when / 1000)
        self.writer.flush()

    def units(self, units: dict[str, str]) -> None:
        """Write the units as a Markdown table under the tag "units"."""
        self._table("units", ("field", "unit"), units)

    def _table(self, tag: str, columns: tuple[str, str], rows: dict[str, str]) -> None:
        """Write a two-column Markdown table as the text summary `tag`."""
        from tensorboard.plugins.text.summary_v2 import text_pb

        lines = "\n".join(
            f"| {_cell(k)} | {_cell(v)} |" for k, v in sorted(rows.items())
        )
        table = f"| {columns[0]} | {columns[1]} |\n| --- | --- |\n{lines}"
        self._add(text_pb(f"{tag}/text_summary", table), 0, time.time())

    def _hparams(self, params: dict[str, str]) -> None:
        """Write the run config as the run's hyperparameters (the HParams tab)."""
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb

        values = {printable(key, 200): _hparam(text) for key, text in params.items()}
        self._add(hparams_pb(values, start_time_secs=time.time()), 0, time.time())

    def _add(self, summary: object, step: int, wall_time: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.writer.add_event(Event(wall_time=wall_time, step=step, summary=summary))

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        """Close the event file."""
        self.writer.close()


def _hparam(text: str) -> bool | float | str:
    """Read a run-config value as an HParams value: a number, a flag or text."""
    if text in {"True", "False"}:
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return number
    return printable(text, 500)


def _cell(text: str) -> str:
    """Text as one Markdown table cell: no line break, no column bar."""
    return printable(text, 500).replace("|", "\\|")


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
    straggler_factor: float = DEFAULT_STRAGGLER_FACTOR,
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
                tracker.flush()
            current = server_round
            tracker.append(record)
            progress(count)
    except CorruptLogError as err:
        tracker.records.damage = str(err)
    tracker.close(run_dir)
