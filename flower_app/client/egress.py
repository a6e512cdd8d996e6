"""A node's egress policy: which metadata may leave the node, and how exactly.

The node's operator sets it in the node config (`flower-supernode
--node-config "..."`), not the server:

| key | default | meaning |
| --- | --- | --- |
| `metadata-allow` | `"*"` | fields that may leave, comma-separated; `"*"`: all |
| `metadata-series` | `"all"` | `"last"`: repeated fields leave as their last element |
| `metadata-digits` | `0` | significant digits numbers are rounded to; 0: as measured |
| `metadata-egress-log` | `""` | a folder where the node keeps a copy of all it sent |

The policy covers everything the mod sends about a call: the metadata
payload and every MetricRecord of the reply (`apply_to_metrics`). The
allow-list names metadata fields and metric names alike; a metric it does
not name stays on the node, except the aggregation weight `num-examples`
(Flower's default `weighted_by_key`), without which the server cannot
aggregate the model update at all. Numbers of both are rounded the same.
A node that keeps a metric back still has its update counted: the server
averages the metrics every reply of the round holds (`server.admission`).
The model's arrays leave as they are.

The payload says what the policy did (`EgressNote`), so the server tells
"withheld by the node" from "missing" and accepts the report.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Message as FlowerMessage
from flwr.app import MetricRecord
from google.protobuf.message import Message

from flower_app.protocol import schema
from flower_app.protocol.schema import FieldDescriptor
from flower_meta.v1.metadata_pb2 import EgressNote

WEIGHT_KEY = "num-examples"
"""The metric Flower's strategies weigh updates by: it always leaves."""


@dataclass(frozen=True)
class EgressPolicy:
    """What may leave the node; the default lets everything leave as measured."""

    allow: frozenset[str] | None = None
    """Fields that may leave; None: all."""
    last_only: bool = False
    """Repeated fields leave as their last element only."""
    digits: int = 0
    """Significant digits numbers are rounded to; 0: as measured."""
    log: Path | None = None
    """Folder of the node's own copy of everything it sent."""

    @classmethod
    def from_node_config(cls, config: Mapping[str, object]) -> "EgressPolicy":
        """Read the policy from a node config; refuse values it cannot follow."""
        allow = str(config.get("metadata-allow", "*")).strip()
        series = config.get("metadata-series", "all")
        digits = config.get("metadata-digits", 0)
        if series not in ("all", "last"):
            raise ValueError(
                f"node config metadata-series must be 'all' or 'last', got {series!r}"
            )
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
            raise ValueError(
                f"node config metadata-digits must be an integer >= 0, got {digits!r}"
            )
        log = str(config.get("metadata-egress-log", ""))
        return cls(
            allow=None
            if allow == "*"
            else frozenset(n.strip() for n in allow.split(",") if n.strip()),
            last_only=series == "last",
            digits=digits,
            log=Path(log).expanduser() if log else None,
        )

    def apply(self, meta: Message) -> EgressNote:
        """Withhold, reduce and round `meta` in place; say what was done."""
        note = EgressNote(significant_digits=self.digits)
        for field in meta.DESCRIPTOR.fields:
            if self.allow is not None and field.name not in self.allow:
                if schema.is_present(meta, field):
                    meta.ClearField(field.name)
                    note.withheld.append(field.name)
            elif self.last_only and field.is_repeated and _is_list(field):
                values = getattr(meta, field.name)
                if len(values) > 1:
                    del values[:-1]
                    note.last_only.append(field.name)
            if self.digits and schema.is_floating(field):
                _round(meta, field, self.digits)
        return note

    def apply_to_metrics(self, reply: FlowerMessage) -> None:
        """Withhold and round every MetricRecord of a reply in place.

        As `apply` does the metadata's fields: what the policy keeps back
        leaves by no path.
        """
        for metrics in reply.content.metric_records.values():
            self._filter(metrics)

    def _filter(self, metrics: MetricRecord) -> None:
        for name in list(metrics):
            if self.allow is not None and name not in self.allow | {WEIGHT_KEY}:
                del metrics[name]
            elif self.digits and name != WEIGHT_KEY:
                value = metrics[name]
                if isinstance(value, list):
                    metrics[name] = [_rounded(v, self.digits) for v in value]
                else:
                    metrics[name] = _rounded(value, self.digits)


def _rounded(value: float, digits: int) -> float:
    """`value` rounded to `digits` significant digits; an integer stays one."""
    if isinstance(value, int):
        return value
    return float(f"{value:.{digits}g}")


def _is_list(field: FieldDescriptor) -> bool:
    return field.message_type is None or not field.message_type.GetOptions().map_entry


def _round(meta: Message, field: FieldDescriptor, digits: int) -> None:
    if field.is_repeated:
        values = getattr(meta, field.name)
        values[:] = [_rounded(v, digits) for v in values]
    elif schema.is_present(meta, field):
        setattr(meta, field.name, _rounded(getattr(meta, field.name), digits))
