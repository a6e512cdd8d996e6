"""`CustomFedAdagrad`: FedAdagrad that decodes and logs every client's metadata."""

from collections.abc import Iterable
from logging import INFO, WARNING
from typing import Any

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.common import log
from flwr.serverapp.strategy import FedAdagrad

from flower_app import codec
from flower_app.validation import MetadataDecodeError
from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

NodeId = int


class CustomFedAdagrad(FedAdagrad):
    """FedAdagrad whose `aggregate_train` reads `TrainProcessMetadata` first.

    Decoded metadata is kept per round in `metadata`, refusals in `rejected`
    (node id -> reason); a refused reply still takes part in model aggregation.
    """

    metadata: dict[int, dict[NodeId, TrainProcessMetadata]]
    rejected: dict[int, dict[NodeId, str]]

    def __init__(self, **kwargs: Any) -> None:
        """Take FedAdagrad's keyword arguments."""
        super().__init__(**kwargs)
        self.metadata = {}
        self.rejected = {}

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Decode and log each reply's metadata, then aggregate as usual."""
        replies = list(replies)
        accepted = self.metadata.setdefault(server_round, {})
        rejected = self.rejected.setdefault(server_round, {})
        for reply in replies:
            if not reply.has_content():
                continue  # a failed node: FedAdagrad reports it
            node = reply.metadata.src_node_id
            try:
                accepted[node] = codec.from_reply(reply)
            except MetadataDecodeError as err:
                rejected[node] = str(err)
                log(
                    WARNING,
                    "round %s node %s: metadata skipped: %s",
                    server_round,
                    node,
                    err,
                )
                continue
            log(
                INFO,
                "round %s node %s: %s",
                server_round,
                node,
                codec.to_tutorial_dict(accepted[node]),
            )
        return super().aggregate_train(server_round, replies)
