"""Fuzzing: arbitrary and mutated payloads never surface anything unexpected.

The decoder may only raise `MetadataDecodeError`; `aggregate_train` may raise
nothing at all. The regular run tries 200 examples a test; the dedicated run
`HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py` tries 10,000.
"""

import numpy as np
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import Array, ArrayRecord, ConfigRecord, ConfigRecordValues
from hypothesis import given
from hypothesis import strategies as st

from flower_app.protocol import codec
from flower_app.protocol.validation import MetadataDecodeError, validate
from flower_app.server.strategy import CustomFedAdagrad
from tests.conftest import reply_from, sample_metadata, train_content

doubles = st.floats(allow_nan=True, allow_infinity=True)
type_urls = st.sampled_from(
    [
        codec.TYPE_URL,
        "type.googleapis.com/flower_meta.v2.TrainProcessMetadata",
        "type.googleapis.com/google.protobuf.Duration",
    ]
) | st.text(max_size=80)


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


@given(type_url=type_urls, payload=payloads)
def test_decoder_raises_only_its_own_error(type_url: str, payload: bytes) -> None:
    try:
        meta = codec.decode(type_url, payload)
    except MetadataDecodeError:
        return
    validate(meta, codec.DEFAULT_LIMITS)  # what it returns obeys the rules


record_values = (
    payloads
    | st.text(max_size=40)
    | st.integers()
    | doubles
    | st.booleans()
    | st.lists(st.binary(max_size=20), max_size=3)
)


@given(
    fields=st.dictionaries(
        st.sampled_from([codec.FIELD_KEY, codec.TYPE_URL_KEY, "other"]),
        record_values,
        max_size=3,
    )
)
def test_aggregate_train_never_raises(fields: dict[str, ConfigRecordValues]) -> None:
    arrays = ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))})
    hostile = train_content(arrays, 5, None)
    hostile[codec.RECORD_KEY] = ConfigRecord(fields)
    replies = [
        reply_from(1, train_content(arrays, 5, sample_metadata())),
        reply_from(2, hostile),
    ]
    strategy = CustomFedAdagrad()
    strategy.current_arrays = {"w": np.zeros(2, dtype=np.float32)}
    aggregated, _ = strategy.aggregate_train(1, replies)

    assert aggregated is not None
    report = strategy.reports[1]
    assert 1 in report.accepted
    assert (2 in report.accepted) != (2 in report.rejected)
