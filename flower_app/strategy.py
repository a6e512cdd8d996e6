"""`CustomFedAdagrad`: FedAdagrad that reads, logs and keeps every client's metadata.

Each round, every sampled node ends up in exactly one bucket of its
`RoundReport`: accepted (metadata decoded and valid), rejected (metadata
refused; its model update still counts) or failed (error reply or no reply).
Nothing about metadata can stop the round or change the model aggregation.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdagrad

from flower_app import codec
from flower_app.metadata_log import MetadataLog
from flower_app.validation import Limits, MetadataDecodeError
from generated.python.flower_meta.v1.metadata_pb2 import (
    MetadataLogRecord,
    Rejection,
    TrainProcessMetadata,
)

NodeId = int


@dataclass
class RoundReport:
    """What each sampled node's train reply came to in one round."""

    accepted: dict[NodeId, TrainProcessMetadata] = field(default_factory=dict)
    rejected: dict[NodeId, str] = field(default_factory=dict)
    failed: dict[NodeId, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts, then who was rejected or failed and why."""
        parts = [
            f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, "
            f"{len(self.failed)} failed"
        ]
        for label, nodes in (("rejected", self.rejected), ("failed", self.failed)):
            if nodes:
                reasons = "; ".join(f"node {n}: {why}" for n, why in nodes.items())
                parts.append(f"{label}: {reasons}")
        return " | ".join(parts)


class CustomFedAdagrad(FedAdagrad):
    """FedAdagrad whose `aggregate_train` reads `TrainProcessMetadata` first."""

    def __init__(
        self,
        *,
        limits: Limits = codec.DEFAULT_LIMITS,
        metadata_log: MetadataLog | None = None,
        run_id: int = 0,
        **fedadagrad_kwargs: Any,
    ) -> None:
        """Take FedAdagrad's keyword arguments, the limits and where to log."""
        super().__init__(**fedadagrad_kwargs)
        self.limits = limits
        self.metadata_log = metadata_log
        self.run_id = run_id
        self.reports: dict[int, RoundReport] = {}
        self._instructions: dict[int, list[Message]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure training as FedAdagrad does; remember who was asked."""
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._instructions[server_round] = messages
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Read, log and keep each reply's metadata, then aggregate as usual."""
        replies = list(replies)
        report = self.reports.setdefault(server_round, RoundReport())
        instructions = self._instructions.pop(server_round, [])
        # The SuperLink signs error replies for unreachable nodes as itself:
        # the instruction a reply answers names the node it was meant for.
        to_node = {
            m.metadata.message_id: m.metadata.dst_node_id
            for m in instructions
            if m.metadata.message_id
        }
        answered = set()
        for reply in replies:
            node = to_node.get(
                reply.metadata.reply_to_message_id, reply.metadata.src_node_id
            )
            answered.add(node)
            self._read(server_round, node, reply, report)
        for node in sorted({m.metadata.dst_node_id for m in instructions} - answered):
            report.failed[node] = "no reply before the round's timeout"
        log(INFO, "round %s metadata: %s", server_round, report.summary())
        if self.metadata_log is not None:
            self.metadata_log.flush()
        return super().aggregate_train(server_round, replies)

    def _read(
        self, server_round: int, node: NodeId, reply: Message, report: RoundReport
    ) -> None:
        """Sort `node`'s reply into `report`, log it and append it to the log."""
        if not reply.has_content():
            report.failed[node] = f"error reply: {reply.error.reason}"
            return
        type_url, payload = "", b""
        try:
            type_url, payload = codec.payload_of(reply)
            meta = codec.decode(type_url, payload, self.limits)
        except MetadataDecodeError as err:
            report.rejected[node] = str(err)
            log(
                WARNING,
                "round %s node %s: metadata skipped: %s",
                server_round,
                node,
                err,
            )
            kept = payload if len(payload) <= self.limits.max_payload_bytes else b""
            rejection = Rejection(
                reason=err.reason, detail=err.detail, payload=kept, type_url=type_url
            )
            self._append(server_round, node, rejected=rejection)
            return
        report.accepted[node] = meta
        log(
            INFO,
            "round %s node %s: %s",
            server_round,
            node,
            codec.to_tutorial_dict(meta),
        )
        self._append(server_round, node, accepted=meta)

    def _append(
        self,
        server_round: int,
        node: NodeId,
        accepted: TrainProcessMetadata | None = None,
        rejected: Rejection | None = None,
    ) -> None:
        """Append one outcome to the metadata log, stamped with when and who."""
        if self.metadata_log is None:
            return
        record = MetadataLogRecord(
            run_id=self.run_id,
            server_round=server_round,
            node_id=node,
            accepted=accepted,
            rejected=rejected,
        )
        record.received_at.GetCurrentTime()
        self.metadata_log.append(record)
