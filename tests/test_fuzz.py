"""Fuzzing: arbitrary payloads and arbitrary replies never surface anything unexpected.

The decoder may only raise `MetadataDecodeError`, and what it returns obeys
the rules (restated here, not asked of the validator). `aggregate_train`
raises nothing, whatever the replies hold: every sampled node ends in
exactly one bucket, with printable, bounded reasons. The regular run tries
200 examples a test; `HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py`
tries 10,000.
"""

import math
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdagrad
from hypothesis import given
from hypothesis import strategies as st

from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.protocol.rules import MetadataDecodeError
from flower_app.server.strategy import MetadataStrategy
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import sample_metadata, train_content
from tests.testing import NodeList, answer, delivered

URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
doubles = st.floats(allow_nan=True, allow_infinity=True)
any_text = st.text(alphabet=st.characters(codec=None), max_size=60)
"""Any code points, lone surrogates, control characters and escapes included."""
type_urls = (
    st.sampled_from(
        [
            URL,
            "type.googleapis.com/flower_meta.v2.TrainProcessMetadata",
            "type.googleapis.com/google.protobuf.Duration",
        ]
    )
    | any_text
)


@st.composite
def valid_payloads(draw: st.DrawFn) -> bytes:
    meta = TrainProcessMetadata(
        training_time=draw(doubles),
        training_losses=draw(st.lists(doubles, max_size=40)),
    )
    if draw(st.booleans()):
        meta.converged = draw(st.booleans())
    return meta.SerializeToString()


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """A serialized message with bytes flipped, inserted, deleted or cut."""
    payload = bytearray(draw(valid_payloads()))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(payload)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip" and at < len(payload):
            payload[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            payload[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del payload[at : at + draw(st.integers(1, 8))]
        else:
            del payload[at:]
    return bytes(payload)


payloads = st.binary(max_size=600) | valid_payloads() | mutated_payloads()


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


@given(type_url=type_urls, payload=payloads)
def test_decoder_raises_only_its_own_error(type_url: str, payload: bytes) -> None:
    try:
        meta = codec.decode(TrainProcessMetadata, type_url, payload)
    except MetadataDecodeError as err:
        refusal = str(err)
    else:
        refusal = ""
    assert refusal.isprintable()
    if refusal:
        return
    assert meta.HasField("training_time")
    assert _finite_non_negative(meta.training_time)
    assert all(_finite_non_negative(loss) for loss in meta.training_losses)


MODEL = {"w": np.zeros(2, dtype=np.float32)}
config_values = (
    payloads
    | any_text
    | st.integers(-(2**63), 2**63 - 1)
    | doubles
    | st.booleans()
    | st.lists(st.binary(max_size=20), max_size=3)
    | st.lists(any_text, max_size=3)
)
configs = st.builds(
    ConfigRecord,
    st.dictionaries(
        st.sampled_from(["type_url", "meta"]) | any_text, config_values, max_size=3
    ),
)
metrics = st.builds(
    MetricRecord,
    st.dictionaries(
        st.sampled_from(["num-examples", "train_loss"]) | st.text(max_size=6),
        doubles | st.integers(-5, 50) | st.lists(doubles, max_size=3),
        max_size=3,
    ),
)
arrays = st.sampled_from(
    [
        ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
        ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))}),
        ArrayRecord({"v": Array(np.ones(2, dtype=np.float32))}),
        ArrayRecord({"w": Array(np.ones(2, dtype=np.float64))}),
    ]
)
junk_arrays = st.binary(max_size=40).map(
    lambda data: ArrayRecord(
        {"w": Array(dtype="float32", shape=(2,), stype="numpy.ndarray", data=data)}
    )
)
records = st.dictionaries(
    st.sampled_from(["arrays", "metrics", "train_metadata"]) | st.text(max_size=8),
    configs | metrics | arrays | junk_arrays,
    max_size=4,
).map(RecordDict)
contents = (
    records
    | st.builds(
        lambda meta: train_content(ArrayRecord(), 5, meta),
        st.just(sample_metadata()),
    ).map(lambda c: _with_model(c))
    | st.builds(Error, code=st.integers(0, 5), reason=any_text)
)


def _with_model(content: RecordDict) -> RecordDict:
    content["arrays"] = ArrayRecord({k: Array(v + 1) for k, v in MODEL.items()})
    return content


@given(
    replies=st.dictionaries(
        st.integers(1, 6), st.lists(contents, min_size=0, max_size=2), min_size=1
    )
)
def test_aggregate_train_never_raises_and_every_node_has_one_outcome(
    replies: dict[int, list[RecordDict | Error]],
) -> None:
    with TemporaryDirectory() as folder:
        strategy = MetadataStrategy(
            FedAdagrad(), metadata_log=MetadataLog(Path(folder))
        )
        strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = len(
            replies
        )
        sent = {
            m.metadata.dst_node_id: m
            for m in delivered(
                strategy.configure_train(
                    1,
                    ArrayRecord({k: Array(v) for k, v in MODEL.items()}),
                    ConfigRecord(),
                    NodeList(sorted(replies)),  # type: ignore[arg-type]
                )
            )
        }
        messages: list[Message] = [
            answer(sent[node], content)
            for node, answers in replies.items()
            for content in answers
        ]
        strategy.aggregate_train(1, messages)
        records = list(read_log(Path(folder) / BINARY_LOG))

    report = strategy.reports[1]
    buckets = [set(report.accepted), set(report.rejected), set(report.failed)]
    assert sorted(n for bucket in buckets for n in bucket) == sorted(replies)
    assert sorted(r.node_id for r in records) == sorted(replies)
    for reason in [*report.rejected.values(), *report.failed.values()]:
        assert reason.isprintable()
        assert len(reason) <= 600
