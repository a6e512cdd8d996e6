"""`MetadataStrategy`: a wrapper that reads, checks, logs and uses metadata.

Put it in front of any Flower strategy, as Flower's own DP wrappers are:

    strategy = MetadataStrategy(FedAdagrad(fraction_train=0.5))

Every sampled node ends each stage of each round in one bucket: accepted
(metadata decoded and valid), rejected (metadata refused; the model update
still counts) or failed (error reply, no reply, or a reply the aggregation
cannot take, see `admission`). Nothing a reply holds can stop the round.
Every outcome goes to the metadata log; accepted train metadata then
chooses, by the aggregation policy, what the global model is built from.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Generic, TypeVar

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from google.protobuf.message import Message as ProtoMessage

from flower_app.outcomes.model import NodeId, Outcomes, RoundOutcomes
from flower_app.outcomes.stragglers import STRAGGLER_FACTOR
from flower_app.protocol import codec, display, validation
from flower_app.protocol.metadata_log import MetadataLog, RecordSink
from flower_app.protocol.records import file_accepted, new_record
from flower_app.protocol.rules import DEFAULT_LIMITS, Limits
from flower_app.server.admission import Expected, admit
from flower_app.server.aggregation import Policy, choose
from flower_app.server.round_log import round_table
from flower_meta.v1.metadata_pb2 import (
    CentralizedEvaluation,
    EgressNote,
    EvaluateProcessMetadata,
    Failure,
    MetadataLogRecord,
    TrainProcessMetadata,
)


@dataclass(frozen=True)
class MetadataOptions:
    """What metadata the strategy reads, and how it uses and shows it.

    Parameters
    ----------
    train_type : type[Message] | None (default: TrainProcessMetadata)
        Message type of the train replies' metadata; None: none expected.
    evaluate_type : type[Message] | None (default: EvaluateProcessMetadata)
        Message type of the evaluate replies' metadata; None: none expected.
    limits : Limits (default: Limits())
        Payload size and epoch limits on top of the schema's rules.
    aggregation : Policy (default: Policy.ALL)
        Which admitted replies the wrapped strategy aggregates: all, only
        converged ones, or all with non-converged ones down-weighted.
    downweight_factor : float (default: 0.5)
        With `Policy.DOWNWEIGHT`, the weight factor of a non-converged
        reply, in (0, 1].
    straggler_factor : float (default: 2.0)
        A client whose duration exceeds this times the round's median is a
        straggler.
    client_log_cap : int (default: 10)
        Per-client log lines per round and stage; the rest are counted.

    """

    train_type: type[ProtoMessage] | None = TrainProcessMetadata
    """Message type of the train replies' metadata; None: none expected."""
    evaluate_type: type[ProtoMessage] | None = EvaluateProcessMetadata
    """Message type of the evaluate replies' metadata; None: none expected."""
    limits: Limits = DEFAULT_LIMITS
    aggregation: Policy = Policy.ALL
    downweight_factor: float = 0.5
    straggler_factor: float = STRAGGLER_FACTOR
    client_log_cap: int = 10
    """Per-client log lines per round and stage; the rest are counted."""

    def __post_init__(self) -> None:
        """Refuse, now, a type whose rules cannot be applied (`RuleError`)."""
        for kind in self.types:
            validation.validator(kind.DESCRIPTOR)

    @property
    def types(self) -> list[type[ProtoMessage]]:
        """The metadata types this strategy reads."""
        return [t for t in (self.train_type, self.evaluate_type) if t is not None]


@dataclass(frozen=True)
class _Stage:
    name: str
    record_key: str
    with_arrays: bool
    verb: str
    """How a client's log line says what it reports."""


TRAIN = _Stage("train", codec.TRAIN_RECORD_KEY, with_arrays=True, verb="")
EVALUATE = _Stage(
    "evaluate", codec.EVALUATE_RECORD_KEY, with_arrays=False, verb=" evaluated"
)


@dataclass
class _Round:
    """One stage of one round, as it is read."""

    stage: _Stage
    number: int
    shown: int = 0
    replies: int = 0
    """Nodes that answered (their first replies)."""
    duplicates: int = 0
    """Replies after a node's first, which were ignored (and not logged)."""


S = TypeVar("S", bound=Strategy)


class MetadataStrategy(Strategy, Generic[S]):
    """Read every reply's metadata, then let the wrapped strategy aggregate.

    Parameters
    ----------
    strategy : Strategy
        The strategy that samples nodes and aggregates: any strategy of
        `flwr.serverapp.strategy` (DP wrappers included, on either side) or
        your own. It sees the admitted replies the aggregation policy chose.
    metadata : MetadataOptions (default: MetadataOptions())
        The metadata types read from train and evaluate replies, the
        server's limits, the aggregation policy and what is logged.
    metadata_log : MetadataLog | None (default: None)
        Where every outcome is kept (durable, flushed every stage); None
        keeps none.
    trackers : Sequence[RecordSink] (default: ())
        Where every outcome goes besides (e.g. `reporting.trackers`); a
        tracker must not raise.
    run_id : int (default: 0)
        The Flower run id the records are filed under.
    outcomes : Outcomes | None (default: None)
        Where every outcome is filed as it is logged (a run's strategies
        may share one); None: a new one, `self.outcomes`.

    """

    def __init__(
        self,
        strategy: S,
        *,
        metadata: MetadataOptions = MetadataOptions(),
        metadata_log: MetadataLog | None = None,
        trackers: Sequence[RecordSink] = (),
        run_id: int = 0,
        outcomes: Outcomes | None = None,
    ) -> None:
        """Wrap `strategy`; see the class for the parameters."""
        if not 0 < metadata.downweight_factor <= 1:
            raise ValueError("downweight-factor must be in (0, 1]")
        unknown = [
            t.DESCRIPTOR.full_name
            for t in metadata.types
            if metadata_log is not None and not metadata_log.holds(t)
        ]
        if unknown:
            raise ValueError(
                f"the metadata log was opened without {', '.join(unknown)}: open "
                "it with the same types (MetadataLog(folder, types=...)), or let "
                "MetadataRun open it"
            )
        self.strategy = strategy
        self.metadata = metadata
        self.metadata_log = metadata_log
        self.sinks: list[RecordSink] = [
            *([metadata_log] if metadata_log else []),
            *trackers,
        ]
        self.run_id = run_id
        self.outcomes = Outcomes() if outcomes is None else outcomes
        """Every outcome this strategy logged, as a replay of its log reads them."""
        self._sent: dict[str, list[Message]] = {}

    @property
    def reports(self) -> dict[int, RoundOutcomes]:
        """Train outcomes by round."""
        return self._rounds_of(TRAIN)

    @property
    def evaluations(self) -> dict[int, RoundOutcomes]:
        """Evaluate outcomes by round."""
        return self._rounds_of(EVALUATE)

    @property
    def centralized(self) -> dict[int, dict[str, float]]:
        """The server's own evaluation by round (round 0: the initial model)."""
        return self.outcomes.centralized

    def _rounds_of(self, stage: _Stage) -> dict[int, RoundOutcomes]:
        found = self.outcomes.stages.get(stage.record_key)
        return {} if found is None else dict(sorted(found.by_round.items()))

    @property
    def weighted_by_key(self) -> str:
        """The MetricRecord key replies are weighted by, as the wrapped one reads it."""
        return str(_wrapped(self.strategy, "weighted_by_key", "num-examples"))

    @property
    def arrayrecord_key(self) -> str:
        """The key of the model's ArrayRecord, as the wrapped strategy sends it."""
        return str(_wrapped(self.strategy, "arrayrecord_key", "arrays"))

    def summary(self) -> None:
        """Log the wrapped strategy's summary, then what this wrapper does."""
        self.strategy.summary()
        log(INFO, "\t└──> Metadata: %s", _options_text(self.metadata))

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Run the rounds as `Strategy.start` does; log centralized evaluations too."""
        configs = (train_config, evaluate_config)
        if evaluate_fn is None:
            return super().start(grid, initial_arrays, num_rounds, timeout, *configs)

        def logged(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            metrics = evaluate_fn(server_round, arrays)
            if metrics is not None:
                numbers = {
                    k: float(v) for k, v in metrics.items() if not isinstance(v, list)
                }
                record = new_record(self.run_id, server_round, 0, "")
                record.centralized.CopyFrom(CentralizedEvaluation(metrics=numbers))
                self._append(record, flush=True)
            return metrics

        return super().start(
            grid, initial_arrays, num_rounds, timeout, *configs, evaluate_fn=logged
        )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure training as the wrapped strategy does; remember who was asked."""
        messages = list(
            self.strategy.configure_train(server_round, arrays, config, grid)
        )
        self._sent[TRAIN.name] = messages
        return messages

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure evaluation as the wrapped strategy does; remember who was asked."""
        messages = list(
            self.strategy.configure_evaluate(server_round, arrays, config, grid)
        )
        self._sent[EVALUATE.name] = messages
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Read every reply's metadata; the wrapped strategy aggregates the chosen."""
        found, admitted = self._read(
            TRAIN, self.metadata.train_type, server_round, replies
        )
        chosen, note = choose(
            self.metadata.aggregation,
            admitted,
            found,
            self.metadata.downweight_factor,
            self.weighted_by_key,
        )
        log(INFO, "round %s aggregation: %s", server_round, note)
        return self.strategy.aggregate_train(server_round, chosen)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Read every evaluate reply's metadata, then aggregate as usual."""
        _, admitted = self._read(
            EVALUATE, self.metadata.evaluate_type, server_round, replies
        )
        return self.strategy.aggregate_evaluate(server_round, [r for _, r in admitted])

    def _read(
        self,
        stage: _Stage,
        message_type: type[ProtoMessage] | None,
        server_round: int,
        replies: Iterable[Message],
    ) -> tuple[RoundOutcomes, list[tuple[NodeId, Message]]]:
        """Sort one stage's replies into outcomes; return them and the admitted."""
        start = time.perf_counter()
        current = _Round(stage, server_round)
        sent = self._sent.pop(stage.name, [])
        asked = [(m.metadata.message_id, m.metadata.dst_node_id) for m in sent]
        to_node = {message_id: node for message_id, node in asked if message_id}
        firsts = _first_replies(current, to_node, replies)
        current.replies = len(firsts)
        admitted, failed = admit(firsts, self._expected(stage, sent))
        for node, reply in firsts:
            if node in failed:
                self._fail(current, node, failed[node])
            elif message_type is not None:
                self._read_metadata(current, message_type, node, reply)
        answered = {node for node, _ in firsts}
        for node in sorted({node for _, node in asked} - answered):
            self._fail(current, node, "no reply before the round's timeout")
        self._summarise(current, message_type, start)
        return self.outcomes.stage(stage.record_key).round(server_round), admitted

    def _expected(self, stage: _Stage, sent: list[Message]) -> Expected:
        model = None
        if stage.with_arrays and sent:
            model = sent[0].content.array_records.get(self.arrayrecord_key)
        if model is None:
            return Expected(self.weighted_by_key, stage.with_arrays)
        return Expected.sent(self.weighted_by_key, model, self.arrayrecord_key)

    def _read_metadata(
        self,
        current: _Round,
        message_type: type[ProtoMessage],
        node: NodeId,
        reply: Message,
    ) -> None:
        key = current.stage.record_key
        record = new_record(self.run_id, current.number, node, key)
        limits = self._limits(current.stage)
        try:
            meta, note = codec.read(message_type, reply, key, limits)
        except codec.Refused as err:
            rejected = err.rejection(key)  # its text escaped and bounded
            record.rejected.CopyFrom(rejected)
            reason = display.refusal(rejected.reason, rejected.detail, rejected.rule_id)
            if self._shown(current):
                self._line(current, WARNING, f"node {node}: metadata skipped: {reason}")
        else:
            file_accepted(record, meta)
            if note is not None:
                record.egress.CopyFrom(note)
            if self._shown(current):
                self._line(current, INFO, _accepted_line(node, current, meta, note))
        self._append(record)

    def _fail(self, current: _Round, node: NodeId, reason: str) -> None:
        key = current.stage.record_key
        record = new_record(self.run_id, current.number, node, key)
        record.failed.CopyFrom(Failure(reason=reason))
        self._append(record)
        if self._shown(current):
            self._line(current, WARNING, f"node {node}: reply failed: {reason}")

    def _shown(self, current: _Round) -> bool:
        """Count one per-client line; say whether it is under the cap, to be shown."""
        current.shown += 1
        return current.shown <= self.metadata.client_log_cap

    def _line(self, current: _Round, level: int, text: str) -> None:
        log(level, "round %s %s", current.number, text)

    def _summarise(
        self, current: _Round, message_type: type[ProtoMessage] | None, start: float
    ) -> None:
        """Log the stage's table and counts: time to read since `start`, to sync."""
        stage, number = current.stage, current.number
        found = self.outcomes.stage(stage.record_key).round(number)
        if (hidden := current.shown - self.metadata.client_log_cap) > 0:
            log(
                INFO,
                "round %s %s: %s more clients not shown",
                number,
                stage.name,
                hidden,
            )
        read = time.perf_counter()
        for sink in self.sinks:
            sink.flush()
        synced = time.perf_counter()
        if message_type is not None:
            name = message_type.DESCRIPTOR.name
            table = round_table(
                f"Round {number}: {stage.name} metadata ({name})",
                self.outcomes.stage(stage.record_key),
                number,
                self.metadata.straggler_factor,
                self.metadata.client_log_cap,
                current.duplicates,
            )
            log(INFO, "%s", table)
        label = "metadata" if stage is TRAIN else "evaluation metadata"
        if message_type is None:  # replies came, no metadata was read
            log(
                INFO,
                "round %s %s: %s replies, %s failed; no metadata read "
                "(MetadataOptions %s_type is None)",
                number,
                stage.name,
                current.replies,
                len(found.failed),
                stage.name,
            )
            return
        counts = found.counts()
        if current.duplicates:
            counts += f" ({current.duplicates} duplicate replies ignored)"
        log(
            INFO,
            "round %s %s: %s (read in %.3g ms, log synced in %.3g ms)",
            number,
            label,
            counts,
            (read - start) * 1e3,
            (synced - read) * 1e3,
        )

    def _limits(self, stage: _Stage) -> Limits:
        """Return the policy for this stage: epoch expectations are for training."""
        limits = self.metadata.limits
        if stage is TRAIN:
            return limits
        return Limits(limits.max_payload_bytes, limits.max_epochs)

    def _append(self, record: MetadataLogRecord, flush: bool = False) -> None:
        self.outcomes.add(record)
        for sink in self.sinks:
            sink.append(record)
            if flush:
                sink.flush()


def _first_replies(
    current: _Round, to_node: dict[str, NodeId], replies: Iterable[Message]
) -> list[tuple[NodeId, Message]]:
    """Each node's first reply, attributed by the instruction it answers.

    `to_node` maps each instruction's message ID to the node it was sent to.
    The SuperLink signs error replies for unreachable nodes as itself: the
    instruction a reply answers names the node it was meant for.
    """
    firsts: dict[NodeId, Message] = {}
    for reply in replies:
        meta = reply.metadata
        node = to_node.get(meta.reply_to_message_id)
        if node is None:
            node = meta.src_node_id
        if node in firsts:
            current.duplicates += 1
        else:
            firsts[node] = reply
    return list(firsts.items())


def _accepted_line(
    node: NodeId, current: _Round, meta: ProtoMessage, note: EgressNote | None
) -> str:
    text = f"node {node}{current.stage.verb}: {display.shown(meta, 4, note)}"
    if note is not None:
        text += f" (node policy: {display.egress_text(note)})"
    return text


def _wrapped(strategy: Strategy, name: str, default: object) -> object:
    """Find `name` on `strategy` or on the strategies it wraps, in turn."""
    seen: Strategy | None = strategy
    while seen is not None:
        if hasattr(seen, name):
            return getattr(seen, name)
        seen = getattr(seen, "strategy", None)
    return default


def _options_text(options: MetadataOptions) -> str:
    """Say in one line what the wrapper reads and how it uses it."""
    names = [
        t.DESCRIPTOR.name if t else "none"
        for t in (options.train_type, options.evaluate_type)
    ]
    return (
        f"train {names[0]}, evaluate {names[1]}, aggregation "
        f"{options.aggregation.value}, max payload {options.limits.max_payload_bytes} B"
    )
