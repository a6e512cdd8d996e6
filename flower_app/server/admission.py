"""Which replies the aggregation can take, checked one reply at a time.

FedAvg and the strategies built on it refuse a whole round when one reply is
out of shape (`InconsistentMessageReplies`, `AggregationError`), and divide
by the total weight. Here each reply is checked on its own against the
shape the round expects; a reply out of shape fails alone, with a reason,
and the rest go on to the aggregation.

The expected shape: train replies hold exactly one ArrayRecord, under the
key the server sent the model under, with the same array names and shapes,
loadable as NumPy; every reply holds exactly one MetricRecord with the
weight key as a finite number >= 0, and each of its metrics has the list
length (or none) that most replies give that metric. Replies may hold
different metric names (a node's egress policy may keep some back): the
aggregation then averages only the metrics every admitted reply holds,
and the others are dropped from the replies it is given, so FedAvg's
average never mixes replies that lack a metric with replies that have it.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar, cast

from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.common.constant import SType

from flower_app.protocol.text import error_text, printable

NodeId = int
T = TypeVar("T")
ArrayShape = tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]
"""An ArrayRecord's shape: its key, then (array name, array shape) pairs."""
MetricShape = tuple[tuple[str, int | None], ...]
"""A MetricRecord's shape: (metric name, list length or None) pairs."""


@dataclass(frozen=True)
class NpyHeader:
    """What a sent array's bytes start with, and how long they are."""

    header: bytes
    size: int
    shape: tuple[int, ...]

    @classmethod
    def of(cls, array: Array) -> "NpyHeader | None":
        """Read the .npy header of `array`'s bytes; None if they are no .npy."""
        data = array.data
        if array.stype != SType.NUMPY or not data.startswith(b"\x93NUMPY"):
            return None
        length = 10 + int.from_bytes(data[8:10], "little")
        if data[6] > 1:  # format 2.0 and later: a 4-byte header length
            length = 12 + int.from_bytes(data[8:12], "little")
        return cls(data[:length], len(data), tuple(array.shape))


@dataclass(frozen=True)
class Expected:
    """What every reply of a round must hold."""

    weight_key: str
    with_arrays: bool
    """Train replies carry arrays; evaluate replies do not."""
    arrays: ArrayShape | None = None
    """The arrays the server sent; None: most replies' arrays."""
    headers: Mapping[str, NpyHeader | None] = field(default_factory=dict)
    """The .npy headers of the arrays the server sent, by name: a reply's
    array whose bytes start with the same header and are as long loads as
    the same shape, unread."""

    @classmethod
    def sent(cls, weight_key: str, arrays: ArrayRecord, record_key: str) -> "Expected":
        """Expect train replies shaped like `arrays`, sent under `record_key`."""
        headers = {name: NpyHeader.of(array) for name, array in arrays.items()}
        return cls(weight_key, True, array_shape(arrays, record_key), headers)


class OutOfShape(ValueError):
    """A reply the aggregation would refuse."""


_Shape = tuple[ArrayShape | None, MetricShape, float]
"""A reply's arrays, metrics and weight (a plain tuple: one is made a reply)."""


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
    arrays = expected.arrays or _most_common([s[0] for _, _, s in shaped])
    lengths: dict[str, Counter[int | None]] = {}
    for _, _, (_, its_metrics, _) in shaped:
        for name, length in its_metrics:
            lengths.setdefault(name, Counter())[length] += 1
    usual = {name: counts.most_common(1)[0][0] for name, counts in lengths.items()}
    admitted, weight, names = [], 0.0, []
    for node, reply, (its_arrays, its_metrics, its_weight) in shaped:
        odd = [(n, length) for n, length in its_metrics if length != usual[n]]
        if its_arrays != arrays:
            failed[node] = "arrays differ in names or shapes from the global model's"
        elif odd:
            name, length = odd[0]
            failed[node] = (
                f"metric {printable(name, 80)!r} holds {_count(length)}, most "
                f"replies {_count(usual[name])}"
            )
        else:
            admitted.append((node, reply))
            names.append({name for name, _ in its_metrics})
            weight += its_weight
    if admitted and not weight:
        reason = f"every admitted reply weighs 0 ({expected.weight_key!r})"
        failed |= dict.fromkeys((node for node, _ in admitted), reason)
        admitted, names = [], []
    shared = set.intersection(*names) if names else set()
    for (_, reply), its_names in zip(admitted, names, strict=True):
        if its_names != shared:
            _keep_metrics(reply, shared)
    return admitted, failed


def _count(length: int | None) -> str:
    return "a number" if length is None else f"a list of {length}"


def _keep_metrics(reply: Message, names: set[str]) -> None:
    """Keep only the metrics `names` in the reply's MetricRecord."""
    for key, record in list(reply.content.items()):
        if _kind(type(record)) is MetricRecord:
            kept = {k: v for k, v in cast(MetricRecord, record).items() if k in names}
            reply.content[key] = MetricRecord(kept)


def array_shape(arrays: ArrayRecord, record_key: str) -> ArrayShape:
    """Return the shape of `arrays` sent under `record_key`."""
    return record_key, tuple((name, tuple(a.shape)) for name, a in arrays.items())


def _shape(reply: Message, expected: Expected) -> _Shape:
    """Return the reply's shape; raise `OutOfShape` if it cannot be aggregated."""
    if not reply.has_content():
        raise OutOfShape(f"error reply: {error_text(reply.error.reason or '')}")
    array_records: list[tuple[str, ArrayRecord]] = []
    metric_records: list[MetricRecord] = []
    for key, record in reply.content.items():
        kind = _kind(type(record))
        if kind is ArrayRecord:
            array_records.append((key, cast(ArrayRecord, record)))
        elif kind is MetricRecord:
            metric_records.append(cast(MetricRecord, record))
    arrays = _arrays(array_records, expected.headers) if expected.with_arrays else None
    if len(metric_records) != 1:
        raise OutOfShape(f"needs exactly one MetricRecord, has {len(metric_records)}")
    metrics = dict(metric_records[0].items())  # one pass: a record's lookups are slow
    weight = metrics.get(expected.weight_key)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise OutOfShape(f"needs a number under {expected.weight_key!r}")
    if not (math.isfinite(weight) and weight >= 0):
        raise OutOfShape(f"{expected.weight_key!r} must be finite and >= 0")
    return arrays, _metric_shape(metrics), weight


@cache
def _kind(record_type: type) -> type | None:
    """Return ArrayRecord or MetricRecord if `record_type` is one, else None."""
    kinds = (ArrayRecord, MetricRecord)
    return next((kind for kind in kinds if issubclass(record_type, kind)), None)


def _arrays(
    records: list[tuple[str, ArrayRecord]], headers: Mapping[str, NpyHeader | None]
) -> ArrayShape:
    if len(records) != 1:
        raise OutOfShape(f"needs exactly one ArrayRecord, has {len(records)}")
    ((key, arrays),) = records
    shapes = [
        (name, _loaded_shape(name, array, headers.get(name)))
        for name, array in arrays.items()
    ]
    return key, tuple(shapes)


def _loaded_shape(name: str, array: Array, sent: NpyHeader | None) -> tuple[int, ...]:
    """Return the shape the array's bytes load as; raise `OutOfShape` if they do not."""
    if sent is not None and array.stype == SType.NUMPY:
        data = array.data
        if len(data) == sent.size and data.startswith(sent.header):
            return sent.shape
    try:
        return tuple(array.numpy().shape)
    except Exception as err:  # any bytes a client sent: np.load says why
        raise OutOfShape(
            f"array {printable(name, 80)!r} does not load: {type(err).__name__}"
        ) from err


def _metric_shape(metrics: Mapping[str, object]) -> MetricShape:
    shape = [
        (name, len(value) if isinstance(value, list) else None)
        for name, value in metrics.items()
    ]
    shape.sort()
    return tuple(shape)


def _most_common(shapes: list[T]) -> T | None:
    return Counter(shapes).most_common(1)[0][0] if shapes else None
