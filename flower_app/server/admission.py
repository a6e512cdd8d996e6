"""Which replies the aggregation can take, checked one reply at a time.

FedAvg and the strategies built on it refuse a whole round when one reply is
out of shape (`InconsistentMessageReplies`, `AggregationError`), and divide
by the total weight. Here each reply is checked on its own against the
shape the round expects; a reply out of shape fails alone, with a reason,
and the rest go on to the aggregation.

The expected shape: train replies hold exactly one ArrayRecord, under the
key the server sent the model under, with the same array names and shapes,
loadable as NumPy; every
reply holds exactly one MetricRecord with the weight key as a finite number
>= 0 and the same metric names (and list lengths) as most replies.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from flwr.app import ArrayRecord, Message, MetricRecord

from flower_app.protocol.text import printable

NodeId = int
T = TypeVar("T")
ArrayShape = tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]
"""An ArrayRecord's shape: its key, then (array name, array shape) pairs."""
MetricShape = tuple[tuple[str, int | None], ...]
"""A MetricRecord's shape: (metric name, list length or None) pairs."""


@dataclass(frozen=True)
class Expected:
    """What every reply of a round must hold."""

    weight_key: str
    with_arrays: bool
    """Train replies carry arrays; evaluate replies do not."""
    arrays: ArrayShape | None = None
    """The arrays the server sent; None: most replies' arrays."""


class OutOfShape(ValueError):
    """A reply the aggregation would refuse."""


@dataclass(frozen=True)
class _Shape:
    arrays: ArrayShape | None
    metrics: MetricShape


def admit(
    replies: Sequence[tuple[NodeId, Message]], expected: Expected
) -> tuple[list[tuple[NodeId, Message]], dict[NodeId, str]]:
    """Split replies into those the aggregation can take and failures with reasons."""
    shaped: list[tuple[NodeId, Message, _Shape]] = []
    failed: dict[NodeId, str] = {}
    for node, reply in replies:
        try:
            shaped.append((node, reply, _shape(reply, expected)))
        except OutOfShape as err:
            failed[node] = str(err)
    arrays = expected.arrays or _most_common([s.arrays for _, _, s in shaped])
    metrics = _most_common([s.metrics for _, _, s in shaped])
    admitted = []
    for node, reply, shape in shaped:
        if shape.arrays != arrays:
            failed[node] = "arrays differ in names or shapes from the global model's"
        elif shape.metrics != metrics:
            failed[node] = (
                f"metric names {_names(shape.metrics)} differ from the round's "
                f"usual {_names(metrics)}"
            )
        else:
            admitted.append((node, reply))
    if admitted and not sum(_weight(r, expected.weight_key) for _, r in admitted):
        reason = f"every admitted reply weighs 0 ({expected.weight_key!r})"
        failed |= dict.fromkeys((node for node, _ in admitted), reason)
        admitted = []
    return admitted, failed


def array_shape(arrays: ArrayRecord, record_key: str) -> ArrayShape:
    """Return the shape of `arrays` sent under `record_key`."""
    return record_key, tuple((name, tuple(a.shape)) for name, a in arrays.items())


def _shape(reply: Message, expected: Expected) -> _Shape:
    """Return the reply's shape; raise `OutOfShape` if it cannot be aggregated."""
    if not reply.has_content():
        raise OutOfShape(f"error reply: {printable(reply.error.reason or '')}")
    content = reply.content
    arrays = _loaded_arrays(content.array_records) if expected.with_arrays else None
    if len(content.metric_records) != 1:
        raise OutOfShape(
            f"needs exactly one MetricRecord, has {len(content.metric_records)}"
        )
    (metrics,) = content.metric_records.values()
    weight = metrics.get(expected.weight_key)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise OutOfShape(f"needs a number under {expected.weight_key!r}")
    if not (math.isfinite(weight) and weight >= 0):
        raise OutOfShape(f"{expected.weight_key!r} must be finite and >= 0")
    return _Shape(arrays, _metric_shape(metrics))


def _loaded_arrays(records: Mapping[str, ArrayRecord]) -> ArrayShape:
    if len(records) != 1:
        raise OutOfShape(f"needs exactly one ArrayRecord, has {len(records)}")
    ((key, arrays),) = records.items()
    shapes = []
    for name, array in arrays.items():
        try:
            shapes.append((name, tuple(array.numpy().shape)))
        except Exception as err:  # any bytes a client sent: np.load says why
            raise OutOfShape(
                f"array {printable(name, 80)!r} does not load: {type(err).__name__}"
            ) from err
    return key, tuple(shapes)


def _metric_shape(metrics: MetricRecord) -> MetricShape:
    return tuple(
        sorted(
            (name, len(value) if isinstance(value, list) else None)
            for name, value in metrics.items()
        )
    )


def _most_common(shapes: list[T]) -> T | None:
    return Counter(shapes).most_common(1)[0][0] if shapes else None


def _weight(reply: Message, weight_key: str) -> float:
    (metrics,) = reply.content.metric_records.values()
    weight = metrics[weight_key]
    assert isinstance(weight, int | float)
    return float(weight)


def _names(shape: MetricShape | None) -> str:
    return printable(repr([name for name, _ in shape or ()]), 200)
