"""`CustomFedAdagrad`: FedAdagrad that reads, logs, keeps and uses client metadata.

Train and evaluate replies are read the same way: every sampled node lands in
its round's `RoundReport` (accepted, rejected or failed), every accepted or
rejected payload goes to the metadata log, and nothing about metadata can
stop a round. The train metadata then chooses, by the aggregation policy,
which replies the global model is built from.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Any, Generic, TypeVar

from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdagrad
from google.protobuf.message import Message as ProtoMessage

from flower_app.protocol import codec
from flower_app.protocol.metadata_log import MetadataLog
from flower_app.protocol.validation import Limits, MetadataDecodeError
from flower_app.server.aggregation import Policy, choose
from flower_app.server.round_report import NodeId, RoundReport, summary_table

M = TypeVar("M", bound=ProtoMessage)


def _fields(message: ProtoMessage) -> dict[str, object]:
    """Map a message's set fields by name, for a log line."""
    return {field.name: value for field, value in message.ListFields()}


@dataclass(frozen=True)
class Stage(Generic[M]):
    """Where one kind of metadata travels, and how it is logged."""

    name: str
    schema: type[M]
    record_key: str
    log_field: str
    verb: str
    show: Callable[[M], object]


TRAIN = Stage(
    "train",
    TrainProcessMetadata,
    codec.RECORD_KEY,
    "accepted",
    "",
    codec.to_tutorial_dict,
)
EVALUATE = Stage(
    "evaluate",
    EvaluateProcessMetadata,
    codec.EVALUATE_RECORD_KEY,
    "evaluated",
    " evaluated",
    _fields,
)


@dataclass(frozen=True)
class MetadataPolicy:
    """How the strategy uses and shows metadata (run config, see README)."""

    aggregation: Policy = Policy.ALL
    downweight_factor: float = 0.5
    straggler_factor: float = 2.0
    client_log_cap: int = 10


class CustomFedAdagrad(FedAdagrad):
    """FedAdagrad whose aggregation reads the clients' metadata first."""

    def __init__(
        self,
        *,
        limits: Limits = codec.DEFAULT_LIMITS,
        policy: MetadataPolicy = MetadataPolicy(),
        metadata_log: MetadataLog | None = None,
        run_id: int = 0,
        **fedadagrad_kwargs: Any,
    ) -> None:
        """Take FedAdagrad's keyword arguments, the limits, policy and log."""
        super().__init__(**fedadagrad_kwargs)
        if not 0 < policy.downweight_factor <= 1:
            raise ValueError("downweight-factor must be in (0, 1]")
        self.limits = limits
        self.policy = policy
        self.metadata_log = metadata_log
        self.run_id = run_id
        self.reports: dict[int, RoundReport[TrainProcessMetadata]] = {}
        self.evaluations: dict[int, RoundReport[EvaluateProcessMetadata]] = {}
        self._instructions: dict[tuple[str, int], list[Message]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure training as FedAdagrad does; remember who was asked."""
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._instructions[TRAIN.name, server_round] = messages
        return messages

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure evaluation as FedAdagrad does; remember who was asked."""
        messages = list(super().configure_evaluate(server_round, arrays, config, grid))
        self._instructions[EVALUATE.name, server_round] = messages
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Read every reply's metadata, then aggregate the chosen replies."""
        chosen = self.read_train_metadata(server_round, list(replies))
        return super().aggregate_train(server_round, chosen)

    def read_train_metadata(
        self, server_round: int, replies: list[Message]
    ) -> list[Message]:
        """Decode, validate, log, persist and summarise one round's train metadata.

        Returns the replies the aggregation policy chose. This is all the
        metadata handling `aggregate_train` adds to FedAdagrad.
        """
        report: RoundReport[TrainProcessMetadata] = RoundReport()
        self.reports[server_round] = report
        by_node = self._collect(TRAIN, server_round, replies, report)
        log(
            INFO,
            "%s",
            summary_table(
                server_round,
                report,
                self.policy.straggler_factor,
                self.policy.client_log_cap,
            ),
        )
        log(INFO, "round %s metadata: %s", server_round, report.counts())
        chosen, note = choose(
            self.policy.aggregation,
            by_node,
            report,
            self.policy.downweight_factor,
            self.weighted_by_key,
        )
        log(INFO, "round %s aggregation: %s", server_round, note)
        return chosen

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Read every evaluate reply's metadata, then aggregate as usual."""
        report: RoundReport[EvaluateProcessMetadata] = RoundReport()
        self.evaluations[server_round] = report
        replies = list(replies)
        self._collect(EVALUATE, server_round, replies, report)
        log(INFO, "round %s evaluation metadata: %s", server_round, report.counts())
        return super().aggregate_evaluate(server_round, replies)

    def _collect(
        self,
        stage: Stage[M],
        server_round: int,
        replies: list[Message],
        report: RoundReport[M],
    ) -> list[tuple[NodeId, Message]]:
        """Sort each reply into `report`; return the replies by node."""
        instructions = self._instructions.pop((stage.name, server_round), [])
        # The SuperLink signs error replies for unreachable nodes as itself:
        # the instruction a reply answers names the node it was meant for.
        to_node = {
            m.metadata.message_id: m.metadata.dst_node_id
            for m in instructions
            if m.metadata.message_id
        }
        by_node = [
            (to_node.get(r.metadata.reply_to_message_id, r.metadata.src_node_id), r)
            for r in replies
        ]
        shown = 0
        for node, reply in by_node:
            outcome = self._read(stage, server_round, node, reply, report)
            if outcome is not None and shown < self.policy.client_log_cap:
                log(*_line(stage, server_round, node, outcome))
                shown += 1
        if (hidden := len(report.accepted) + len(report.rejected) - shown) > 0:
            log(
                INFO,
                "round %s %s: %s more clients not shown",
                server_round,
                stage.name,
                hidden,
            )
        answered = {node for node, _ in by_node}
        for node in sorted({m.metadata.dst_node_id for m in instructions} - answered):
            report.failed[node] = "no reply before the round's timeout"
        if self.metadata_log is not None:
            self.metadata_log.flush()
        return by_node

    def _read(
        self,
        stage: Stage[M],
        server_round: int,
        node: NodeId,
        reply: Message,
        report: RoundReport[M],
    ) -> M | MetadataDecodeError | None:
        """Sort `node`'s reply into `report` and the log; return what it held."""
        if not reply.has_content():
            report.failed[node] = f"error reply: {reply.error.reason}"
            return None
        type_url, payload = "", b""
        try:
            type_url, payload = codec.payload_of(reply, stage.record_key)
            message = codec.decode_as(stage.schema, type_url, payload, self.limits)
        except MetadataDecodeError as err:
            report.rejected[node] = str(err)
            kept = payload if len(payload) <= self.limits.max_payload_bytes else b""
            rejection = Rejection(
                reason=err.reason,
                detail=err.detail,
                payload=kept,
                type_url=type_url,
                record_key=stage.record_key,
            )
            self._append(server_round, node, "rejected", rejection)
            return err
        report.accepted[node] = message
        self._append(server_round, node, stage.log_field, message)
        return message

    def _append(
        self, server_round: int, node: NodeId, outcome: str, message: ProtoMessage
    ) -> None:
        """Append one outcome to the metadata log, stamped with when and who."""
        if self.metadata_log is None:
            return
        record = MetadataLogRecord(
            run_id=self.run_id, server_round=server_round, node_id=node
        )
        getattr(record, outcome).CopyFrom(message)
        record.received_at.GetCurrentTime()
        self.metadata_log.append(record)


def _line(
    stage: Stage[M], server_round: int, node: NodeId, outcome: M | MetadataDecodeError
) -> tuple[int, str]:
    """Write the per-client log line for one reply's outcome."""
    if isinstance(outcome, MetadataDecodeError):
        return WARNING, f"round {server_round} node {node}: metadata skipped: {outcome}"
    return INFO, f"round {server_round} node {node}{stage.verb}: {stage.show(outcome)}"
