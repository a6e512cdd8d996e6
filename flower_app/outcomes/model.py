"""The outcomes of a run, filed by stage, round and node, from its log records.

Every record the strategy writes (or a reader replays) goes through
`Outcomes.add`: accepted metadata is kept as its bytes and parsed when read
(about a microsecond), so a round of a thousand clients costs a few hundred
bytes a client; a refusal or a failure keeps its reason in words. Records
of any schema revision are read: a log's own schema.binpb names fields and
message types this build never saw, and an `Any` is unpacked with it.
"""

from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from flower_app.protocol import display
from flower_app.protocol.records import has_field, stage_key, written_at
from flower_app.protocol.run_schema import SchemaError, message_class
from flower_app.protocol.schema import Descriptor
from flower_app.protocol.text import printable

NodeId = int


T = TypeVar("T")


class Messages(Mapping[NodeId, Message]):
    """One round's accepted messages by node, kept as their bytes, back to back.

    A message is parsed each time it is read: a round of a thousand clients
    costs about its bytes and 16 more a client, so a run of a million
    records is read back in a few hundred megabytes. What is read of every
    message again and again (a field's values over the round) is built once
    by `memo` and kept until the next `put`. A node put twice is the later
    message (in the earlier one's place in the order).
    """

    def __init__(self) -> None:
        """Start empty."""
        self._kind: type[Message] | None = None
        self._nodes = array("Q")
        self._ends = array("Q")
        self._data = bytearray()
        self._other: dict[int, type[Message]] = {}
        """position -> type, for a message not of the first type kept (rare)."""
        self._memo: dict[Callable[[Messages], Any], Any] = {}

    def put(self, node: NodeId, message: Message) -> None:
        """Keep `message` as node's."""
        kind = type(message)
        if kind is not self._kind:
            if self._kind is None:
                self._kind = kind
            else:
                self._other[len(self._nodes)] = kind
        data = self._data
        data += message.SerializeToString()
        self._nodes.append(node)
        self._ends.append(len(data))
        if self._memo:
            self._memo.clear()

    def memo(self, build: Callable[["Messages"], T]) -> T:
        """Return `build(self)`, built once until the next `put`."""
        if build not in self._memo:
            self._memo[build] = build(self)
        found: T = self._memo[build]
        return found

    def _parsed(self, position: int) -> Message:
        start = self._ends[position - 1] if position else 0
        kind = self._other.get(position, self._kind)
        assert kind is not None  # a position is kept with its message
        return kind.FromString(bytes(self._data[start : self._ends[position]]))

    def _positions(self) -> Sequence[int]:
        """Give the position of each node's latest message, in node order."""
        return self.memo(_latest)

    def __getitem__(self, node: NodeId) -> Message:
        """Parse node's message."""
        return self._parsed(self.memo(_index)[node])

    def __iter__(self) -> Iterator[NodeId]:
        """Iterate over the nodes."""
        return (self._nodes[i] for i in self._positions())

    def __len__(self) -> int:
        """Count the nodes."""
        return len(self._positions())

    def __contains__(self, node: object) -> bool:
        """Say whether `node` has a message here."""
        return node in self.memo(_index)

    def values(self) -> Iterator[Message]:  # type: ignore[override]
        """Parse every node's message, in node order."""
        return (self._parsed(i) for i in self._positions())

    def items(self) -> Iterator[tuple[NodeId, Message]]:  # type: ignore[override]
        """Parse every node's message, with its node, in node order."""
        return ((self._nodes[i], self._parsed(i)) for i in self._positions())


def _latest(messages: Messages) -> Sequence[int]:
    nodes = messages._nodes  # noqa: SLF001 (a memo of Messages itself)
    if len(set(nodes)) == len(nodes):
        return range(len(nodes))
    last = {node: i for i, node in enumerate(nodes)}
    first: dict[int, int] = {}
    for i, node in enumerate(nodes):
        first.setdefault(node, i)
    return [last[node] for node in sorted(first, key=first.__getitem__)]


def _index(messages: Messages) -> dict[NodeId, int]:
    nodes = messages._nodes  # noqa: SLF001 (a memo of Messages itself)
    return {nodes[i]: i for i in messages._positions()}  # noqa: SLF001


@dataclass
class RoundOutcomes:
    """Every sampled node's outcome in one stage of one round.

    What `MetadataStrategy.reports[round]` (train) and `.evaluations[round]`
    hold, and what a replay of the run folder's log holds, alike.

    Attributes
    ----------
    accepted : Mapping[int, Message]
        Node id to its metadata, decoded and valid (parsed when read).
    rejected : dict[int, str]
        Node id to why its metadata was refused, in one line; its model
        update still counted.
    failed : dict[int, str]
        Node id to why its reply did not count at all.
    egress : dict[int, str]
        Node id to what its egress policy withheld or reduced, in words.
    last_record : int | None
        When the round's latest record was written, ms since the Unix epoch.

    """

    accepted: Messages = field(default_factory=Messages)
    rejected: dict[NodeId, str] = field(default_factory=dict)
    """node -> the refusal in one line (`display.refusal`)."""
    failed: dict[NodeId, str] = field(default_factory=dict)
    """node -> why the reply did not count."""
    egress: dict[NodeId, str] = field(default_factory=dict)
    """node -> what its egress policy withheld or reduced, in words."""
    last_record: int | None = None
    """When the round's latest record was written, ms since the Unix epoch."""

    def counts(self) -> str:
        """Count accepted, rejected and failed replies in one phrase."""
        return (
            f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, "
            f"{len(self.failed)} failed"
        )

    def nodes(self) -> set[NodeId]:
        """Every node with an outcome in this round."""
        return set(self.accepted) | set(self.rejected) | set(self.failed)


@dataclass
class StageOutcomes:
    """One record key's outcomes, e.g. "train_metadata", round by round."""

    record_key: str
    message_type: Descriptor | None = None
    """Type of its accepted messages; None until one is seen."""
    by_round: dict[int, RoundOutcomes] = field(default_factory=dict)
    first_accepted: dict[NodeId, int] = field(default_factory=dict)
    """node -> the round of its first accepted report (its warm-up round)."""
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
        return sorted(self.by_round)

    def round(self, at: int) -> RoundOutcomes:
        """Return round `at`'s outcomes, empty when the round has none."""
        found = self.by_round.get(at)
        if found is None:
            found = self.by_round[at] = RoundOutcomes()
        return found

    def egress(self) -> dict[NodeId, str]:
        """Map each node to its egress policy in words, as its latest report said."""
        return {
            node: text
            for at in self.rounds
            for node, text in self.by_round[at].egress.items()
        }

    def replies(self, kind: str) -> int:
        """Count the replies of one kind over all rounds: accepted, rejected, failed."""
        return sum(len(getattr(found, kind)) for found in self.by_round.values())


@dataclass
class Outcomes:
    """A run's outcomes by stage, round and node, and the server's evaluations.

    Filled record by record (`add`), live by `MetadataStrategy` (its
    `outcomes`; a `MetadataRun`'s strategies share one) or by replaying a
    run folder's log; the report, the trackers and the summary line read it.

    Attributes
    ----------
    stages : dict[str, StageOutcomes]
        By record key ("train_metadata", "evaluate_metadata"), each with its
        `RoundOutcomes` by round (`by_round`).
    centralized : dict[int, dict[str, float]]
        Round to metric to value of the server's own evaluation (0: the
        initial model).
    damage : str
        Why a replayed log ended early, if its tail is damaged.
    undecodable : list[str]
        Accepted records a replayed log's schema cannot read, in words.
    run_id : int
        The Flower run id the records carry (0: none said).

    """

    stages: dict[str, StageOutcomes] = field(default_factory=dict)
    """Keyed by record key; a second type under one key by key and type."""
    centralized: dict[int, dict[str, float]] = field(default_factory=dict)
    """round -> metric -> value of the server's own evaluation (0: initial)."""
    damage: str = ""
    """Why the log ended early, if its tail is damaged."""
    undecodable: list[str] = field(default_factory=list)
    """Accepted records whose message the log's schema cannot read, in words."""
    run_id: int = 0
    """The Flower run id the records carry (0: none said)."""

    def nodes(self) -> set[NodeId]:
        """Every node with an outcome in the run."""
        return {
            node
            for stage in self.stages.values()
            for found in stage.by_round.values()
            for node in found.nodes()
        }

    def rounds(self) -> list[int]:
        """Every round any stage or a centralized evaluation after round 0 had."""
        found = {r for stage in self.stages.values() for r in stage.by_round}
        return sorted(found | {r for r in self.centralized if r > 0})

    def stage(self, key: str) -> StageOutcomes:
        """Return the stage under `key`, created when first needed."""
        found = self.stages.get(key)
        if found is None:
            found = self.stages[key] = StageOutcomes(key)
        return found

    def add(self, record: Message) -> str:
        """File one record under its stage, round and node; return the stage's key.

        `record` is a `MetadataLogRecord` of this build or of a log's own
        schema. The key (in `stages`) is "" for the server's own evaluation,
        and for an outcome newer than this build knows (skipped).
        """
        outcome = record.WhichOneof("outcome")
        at = record.server_round  # type: ignore[attr-defined]
        node = record.node_id  # type: ignore[attr-defined]
        if not self.run_id:
            self.run_id = record.run_id  # type: ignore[attr-defined]
        if outcome == "centralized":
            self.centralized[at] = dict(record.centralized.metrics)  # type: ignore[attr-defined]
            return ""
        key = stage_key(record)
        if not key:
            return ""
        if outcome == "rejected":
            rejection = record.rejected  # type: ignore[attr-defined]
            refusal = display.refusal(
                rejection.reason, rejection.detail, _field(rejection, "rule_id", "")
            )
            found = self.stage(key).round(at)
            found.rejected[node] = refusal
        elif outcome == "failed":
            found = self.stage(key).round(at)
            found.failed[node] = record.failed.reason  # type: ignore[attr-defined]
        else:
            try:
                meta = unpacked(getattr(record, outcome))
            except Undecodable as err:
                self.undecodable.append(f"round {at} node {node}: {err}")
                return ""
            key = self._typed(key, meta.DESCRIPTOR)
            stage = self.stages[key]
            found = stage.round(at)
            found.accepted.put(node, meta)
            first = stage.first_accepted
            if at < first.get(node, at + 1):
                first[node] = at
            if has_field(record.DESCRIPTOR, "egress") and record.HasField("egress"):
                note = record.egress  # type: ignore[attr-defined]
                if note.ByteSize():
                    found.egress[node] = display.egress_text(note)
        when = written_at(record)
        if when is not None and (found.last_record or 0) < when:
            found.last_record = when
        return key

    def _typed(self, record_key: str, message_type: Descriptor) -> str:
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
        if key not in self.stages:
            self.stages[key] = StageOutcomes(
                record_key, message_type, another_type=True
            )
        return key


def _field(record: Message, name: str, default: Any) -> Any:
    """Return a record's field, or `default` in a log whose schema predates it."""
    return getattr(record, name) if has_field(record.DESCRIPTOR, name) else default


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
