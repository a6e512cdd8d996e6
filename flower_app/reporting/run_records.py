"""A run folder's metadata log, read back by stage, round and node.

The log is read with its own schema (schema.binpb beside it), so fields and
message types this build never saw are there by name. A damaged tail keeps
every record before it and says why the log ended early.
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError, Message

from flower_app.protocol import codec, display
from flower_app.protocol.display import egress_text
from flower_app.protocol.metadata_log import BINARY_LOG, CorruptLogError, read_log
from flower_app.protocol.run_schema import SchemaError, message_class, record_type
from flower_app.protocol.schema import Descriptor
from flower_app.protocol.text import printable


class Messages(Mapping[int, Message]):
    """One round's accepted messages by node, kept as their bytes.

    A message is parsed each time it is read (about a microsecond), so a
    run of a million records is held in a few hundred bytes a record, not
    in a parsed message each.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._kept: dict[int, tuple[type[Message], bytes]] = {}

    def put(self, node: int, message: Message) -> None:
        """Keep `message` as node's."""
        self._kept[node] = (type(message), message.SerializeToString())

    def __getitem__(self, node: int) -> Message:
        """Parse node's message."""
        kind, data = self._kept[node]
        return kind.FromString(data)

    def __iter__(self) -> Iterator[int]:
        """Iterate over the nodes."""
        return iter(self._kept)

    def __len__(self) -> int:
        """Count the nodes."""
        return len(self._kept)


Rounds = dict[int, Messages]
"""round -> node -> accepted message"""
Reasons = dict[int, dict[int, str]]
"""round -> node -> reason"""
RUN_CONFIG = "run_config.json"
"""The run config a run folder was written with, if the app kept it."""
MAX_RUN_CONFIG_BYTES = 1 << 20
_KEYS = {"accepted": codec.TRAIN_RECORD_KEY, "evaluated": codec.EVALUATE_RECORD_KEY}
"""Record keys of outcomes in logs written before records named them."""


@dataclass
class Stage:
    """One record key's outcomes: "train_metadata" or "evaluate_metadata"."""

    record_key: str
    message_type: Descriptor | None = None
    """Type of its accepted messages; None until one is seen."""
    accepted: Rounds = field(default_factory=lambda: defaultdict(Messages))
    rejected: Reasons = field(default_factory=lambda: defaultdict(dict))
    failed: Reasons = field(default_factory=lambda: defaultdict(dict))
    egress: dict[int, str] = field(default_factory=dict)
    """node -> what its egress policy did, in words (its latest report)."""
    another_type: bool = False
    """Messages of a second type under a record key that has a first."""

    @property
    def name(self) -> str:
        """The stage's short name, e.g. "train"; "train (Other)" for a second type."""
        name = self.record_key.removesuffix("_metadata")
        if self.another_type and self.message_type is not None:
            return f"{name} ({self.message_type.name})"
        return name

    @property
    def rounds(self) -> list[int]:
        """Every round with an outcome, in order."""
        return sorted(set(self.accepted) | set(self.rejected) | set(self.failed))


@dataclass
class RunRecords:
    """A run's log records, by stage, round and node."""

    stages: dict[str, Stage] = field(default_factory=dict)
    centralized: dict[int, dict[str, float]] = field(default_factory=dict)
    """round -> metric -> value of the server's own evaluation."""
    damage: str = ""
    """Why the log ended early, if its tail is damaged."""
    undecodable: list[str] = field(default_factory=list)
    """Accepted records whose message this log's schema cannot read, in words."""
    run_id: int = 0
    """The Flower run id the records carry (0: none said)."""

    def nodes(self) -> set[int]:
        """Every node with an outcome or an egress report in the run."""
        return {
            node
            for stage in self.stages.values()
            for outcomes in (stage.accepted, stage.rejected, stage.failed)
            for by_node in outcomes.values()
            for node in by_node
        }.union(*(stage.egress for stage in self.stages.values()))

    def stage(self, record_key: str) -> Stage:
        """Return the stage of `record_key`, created when first needed."""
        return self.stages.setdefault(record_key, Stage(record_key))

    def typed_stage(self, record_key: str, message_type: Descriptor) -> str:
        """Return the key in `stages` of `record_key`'s messages of `message_type`.

        The first type a record key holds is its stage; a log holding a
        second type under the same key (a schema change mid-run, a node of
        another app) gets a stage for each further type, reported apart.
        """
        stage = self.stage(record_key)
        if stage.message_type in (None, message_type):
            stage.message_type = message_type
            return record_key
        key = f"{record_key}\0{message_type.full_name}"
        self.stages.setdefault(key, Stage(record_key, message_type, another_type=True))
        return key

    def add(self, record: Message) -> str:
        """File one record under its stage, round and node; return the stage's key.

        The key (in `stages`) is "" for the server's own evaluation, and for
        an outcome newer than this build's schema knows (skipped).
        """
        outcome = record.WhichOneof("outcome")
        at = record.server_round  # type: ignore[attr-defined]
        node = record.node_id  # type: ignore[attr-defined]
        self.run_id = self.run_id or record.run_id  # type: ignore[attr-defined]
        key = stage_key(record)
        if outcome == "centralized":
            self.centralized[at] = dict(record.centralized.metrics)  # type: ignore[attr-defined]
        if not key:
            return ""
        if outcome == "rejected":
            rejection = record.rejected  # type: ignore[attr-defined]
            self.stage(key).rejected[at][node] = display.refusal(
                rejection.reason,
                rejection.detail,
                _field(rejection, "rule_id", ""),
            )
        elif outcome == "failed":
            self.stage(key).failed[at][node] = record.failed.reason  # type: ignore[attr-defined]
        else:
            try:
                meta = unpacked(getattr(record, outcome))
            except Undecodable as err:
                self.undecodable.append(f"round {at} node {node}: {err}")
                return ""
            key = self.typed_stage(key, meta.DESCRIPTOR)
            stage = self.stages[key]
            stage.accepted[at].put(node, meta)
            note = _field(record, "egress", None)
            if note is not None and note.ByteSize():
                stage.egress[node] = egress_text(note)
        return str(key)


def stage_key(record: Message) -> str:
    """Return the record key of the stage a record is about; "" if none.

    Logs written before records named it: "train_metadata" for `accepted`,
    "evaluate_metadata" for `evaluated`, a rejection's own record key.
    """
    outcome = record.WhichOneof("outcome")
    if outcome in (None, "centralized"):
        return ""
    key = _field(record, "record_key", "") or _KEYS.get(str(outcome), "")
    if not key and outcome == "rejected":
        key = record.rejected.record_key  # type: ignore[attr-defined]
    return str(key)


def _field(record: Message, name: str, default: Any) -> Any:
    """Return a record's field, or `default` in a log whose schema predates it."""
    if name not in record.DESCRIPTOR.fields_by_name:
        return default
    return getattr(record, name)


class Undecodable(ValueError):
    """An accepted message packed as an Any that the log's schema cannot read."""


def unpacked(value: Message) -> Message:
    """Return the accepted message; an Any is unpacked with its own schema.

    Raises `Undecodable` for an Any whose type the schema lacks (or cannot
    build) or whose bytes do not parse.
    """
    if value.DESCRIPTOR.full_name != "google.protobuf.Any":
        return value
    type_url = value.type_url  # type: ignore[attr-defined]
    shown = printable(type_url, 120)
    pool = value.DESCRIPTOR.file.pool
    try:
        found = message_class(pool, type_url.rsplit("/", 1)[-1], "the log's schema")
    except SchemaError as err:
        raise Undecodable(f"{shown}: {err}") from err
    try:
        return found.FromString(value.value)  # type: ignore[attr-defined]
    except (DecodeError, RecursionError) as err:
        raise Undecodable(f"{shown}: its bytes do not parse ({err})") from err


def run_config(folder: Path, problem: Callable[[str], None]) -> dict[str, str]:
    """Return the run config a run folder was written with, each value as text.

    As `run_config_values`, each value as Python prints it.
    """
    return {
        key: str(value) for key, value in run_config_values(folder, problem).items()
    }


def run_config_values(
    folder: Path, problem: Callable[[str], None]
) -> dict[str, object]:
    """Return the run config a run folder was written with, as JSON values.

    A missing file is an empty config; one that is too large, no JSON, or
    no JSON object is told to `problem` and read as empty.
    """
    path = folder / RUN_CONFIG
    if not path.is_file():
        return {}
    try:
        if path.stat().st_size > MAX_RUN_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_RUN_CONFIG_BYTES} bytes")
        found = json.loads(path.read_bytes())
        if not isinstance(found, dict):
            raise ValueError(f"holds a JSON {type(found).__name__}, not an object")
    except (OSError, ValueError, RecursionError) as err:
        problem(f"{path}: not a run config, left out ({printable(str(err), 200)})")
        return {}
    return {str(key): value for key, value in found.items()}


def run_folder(path: Path) -> Path:
    """Return the run folder `path` names: the folder itself, or its log file."""
    folder = path.parent if path.name == BINARY_LOG and path.is_file() else path
    if folder.is_file():
        if (path.parent / BINARY_LOG).is_file():
            raise NotADirectoryError(
                f"{path} is a file of run folder {path.parent}: give the folder "
                f"itself ({path.parent})"
            )
        raise NotADirectoryError(
            f"{path} is a file, not a run folder (a payload? flower-meta decode {path})"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {path}")
    if not (folder / BINARY_LOG).is_file():
        raise FileNotFoundError(f"{folder} holds no {BINARY_LOG}: is it a run folder?")
    return folder


def load(path: Path) -> RunRecords:
    """Read a run folder's metadata log; a damaged tail keeps what precedes it."""
    folder = run_folder(path)
    records = RunRecords()
    try:
        for record in read_log(folder / BINARY_LOG, record_type(folder)):
            records.add(record)
    except CorruptLogError as err:
        records.damage = str(err)
    return records
