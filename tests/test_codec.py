"""The codec: round trips, the tutorial's dict form, and clear refusals."""

import math

import pytest
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import ConfigRecord, ConfigRecordValues, RecordDict
from google.protobuf import any_pb2
from hypothesis import given
from hypothesis import strategies as st

from flower_app.protocol import codec
from flower_app.protocol.validation import MetadataDecodeError, Reason
from tests.conftest import reply_from, sample_metadata

finite_non_negative = st.floats(min_value=0, allow_nan=False, allow_infinity=False)


@st.composite
def metadata(draw: st.DrawFn) -> TrainProcessMetadata:
    meta = TrainProcessMetadata(
        training_time=draw(finite_non_negative),
        training_losses=draw(st.lists(finite_non_negative, max_size=200)),
    )
    converged = draw(st.none() | st.booleans())
    if converged is not None:
        meta.converged = converged
    return meta


@given(metadata())
def test_reply_round_trip_keeps_every_field(meta: TrainProcessMetadata) -> None:
    reply = reply_from(5, RecordDict({codec.RECORD_KEY: codec.to_config_record(meta)}))
    decoded = codec.from_reply(reply)
    assert decoded == meta
    assert decoded.HasField("converged") == meta.HasField("converged")


@given(metadata())
def test_tutorial_dict_numbers_epochs_from_one(meta: TrainProcessMetadata) -> None:
    shown = codec.to_tutorial_dict(meta)
    losses = shown["training_losses"]
    assert isinstance(losses, dict)
    assert list(losses) == [
        f"epoch_{i}" for i in range(1, len(meta.training_losses) + 1)
    ]
    assert list(losses.values()) == list(meta.training_losses)
    assert shown["training_time"] == meta.training_time
    assert shown["converged"] == (
        meta.converged if meta.HasField("converged") else None
    )


def test_tutorial_dict_matches_the_tutorial_example() -> None:
    meta = TrainProcessMetadata(
        training_time=123.45, converged=True, training_losses=[0.56, 0.34]
    )
    assert codec.to_tutorial_dict(meta) == {
        "training_time": 123.45,
        "converged": True,
        "training_losses": {"epoch_1": 0.56, "epoch_2": 0.34},
    }


def test_unassessed_convergence_is_none_not_false() -> None:
    meta = TrainProcessMetadata(training_time=1.0, training_losses=[0.5])
    decoded = codec.decode(codec.TYPE_URL, meta.SerializeToString())
    assert codec.to_tutorial_dict(decoded)["converged"] is None


def test_record_is_a_flattened_any() -> None:
    record = codec.to_config_record(sample_metadata())
    type_url, value = record[codec.TYPE_URL_KEY], record[codec.FIELD_KEY]
    assert isinstance(type_url, str)
    assert isinstance(value, bytes)
    wrapped = any_pb2.Any(type_url=type_url, value=value)
    unpacked = TrainProcessMetadata()
    assert wrapped.Unpack(unpacked)
    assert unpacked == sample_metadata()


def _content(**record: ConfigRecordValues) -> RecordDict:
    return RecordDict({codec.RECORD_KEY: ConfigRecord(record)})


GOOD = sample_metadata().SerializeToString()


@pytest.mark.parametrize(
    ("content", "reason", "detail"),
    [
        (RecordDict(), Reason.MISSING_RECORD, "has no ConfigRecord 'train_metadata'"),
        (_content(type_url=codec.TYPE_URL), Reason.MISSING_META, "has no 'meta'"),
        (_content(type_url=codec.TYPE_URL, meta="x"), Reason.META_NOT_BYTES, "got str"),
        (_content(type_url=codec.TYPE_URL, meta=3), Reason.META_NOT_BYTES, "got int"),
        (_content(meta=GOOD), Reason.MISSING_TYPE_URL, "needs the payload's type URL"),
        (
            _content(type_url=codec.TYPE_URL, meta=b""),
            Reason.MISSING_TRAINING_TIME,
            "training_time is missing",
        ),
    ],
)
def test_malformed_records_are_refused_with_reason(
    content: RecordDict, reason: Reason, detail: str
) -> None:
    with pytest.raises(MetadataDecodeError, match=detail) as caught:
        codec.from_reply(reply_from(3, content))
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("type_url", "reason", "detail"),
    [
        (
            "type.googleapis.com/flower_meta.v2.TrainProcessMetadata",
            Reason.UNSUPPORTED_VERSION,
            r"major version v2\); this reader decodes flower_meta\.v1\.TrainProcess",
        ),
        (
            "type.googleapis.com/google.protobuf.Duration",
            Reason.WRONG_TYPE,
            "is a 'google.protobuf.Duration', expected",
        ),
        (
            "type.googleapis.com/flower_meta.v1.EvaluateProcessMetadata",
            Reason.WRONG_TYPE,
            "expected 'flower_meta.v1.TrainProcessMetadata'",
        ),
    ],
)
def test_other_types_and_versions_are_refused_before_parsing(
    type_url: str, reason: Reason, detail: str
) -> None:
    with pytest.raises(MetadataDecodeError, match=detail) as caught:
        codec.decode(type_url, GOOD)
    assert caught.value.reason is reason


def test_truncated_payload_is_refused() -> None:
    payload = sample_metadata(epochs=10).SerializeToString()
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(codec.TYPE_URL, payload[:-3])
    assert caught.value.reason is Reason.MALFORMED
    assert "are not a flower_meta.v1.TrainProcessMetadata payload" in str(caught.value)


@pytest.mark.parametrize(
    ("meta", "reason", "detail"),
    [
        (
            TrainProcessMetadata(training_time=math.nan),
            Reason.TRAINING_TIME_OUT_OF_RANGE,
            "training_time must be finite",
        ),
        (
            TrainProcessMetadata(training_time=-1.0),
            Reason.TRAINING_TIME_OUT_OF_RANGE,
            "training_time must be finite and >= 0",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.1, math.inf]),
            Reason.LOSS_OUT_OF_RANGE,
            r"training_losses\[epoch_2\] must be finite",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[-0.1]),
            Reason.LOSS_OUT_OF_RANGE,
            r"training_losses\[epoch_1\] must be finite and >= 0",
        ),
    ],
)
def test_semantic_rules_are_enforced_on_both_sides(
    meta: TrainProcessMetadata, reason: Reason, detail: str
) -> None:
    with pytest.raises(MetadataDecodeError, match=detail) as decoding:
        codec.decode(codec.TYPE_URL, meta.SerializeToString())
    with pytest.raises(MetadataDecodeError, match=detail) as encoding:
        codec.to_config_record(meta)
    assert decoding.value.reason is encoding.value.reason is reason
