"""The codec: round trips, the tutorial's dict form, and clear refusals."""

import math

import pytest
from flwr.app import ConfigRecord, RecordDict
from hypothesis import given
from hypothesis import strategies as st

from flower_app import codec
from generated.flower_meta.v1.metadata_pb2 import TrainProcessMetadata
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
    decoded = codec.decode(meta.SerializeToString())
    assert codec.to_tutorial_dict(decoded)["converged"] is None


def _reply_with(record: ConfigRecord | None) -> RecordDict:
    return RecordDict({} if record is None else {codec.RECORD_KEY: record})


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (_reply_with(None), "has no ConfigRecord 'train_metadata'"),
        (
            _reply_with(ConfigRecord({"other": b""})),
            "needs bytes under 'meta', got NoneType",
        ),
        (
            _reply_with(ConfigRecord({"meta": "text"})),
            "needs bytes under 'meta', got str",
        ),
        (_reply_with(ConfigRecord({"meta": 3})), "needs bytes under 'meta', got int"),
        (_reply_with(ConfigRecord({"meta": b""})), "training_time is missing"),
    ],
)
def test_malformed_records_are_refused_with_reason(
    content: RecordDict, reason: str
) -> None:
    with pytest.raises(codec.MetadataDecodeError, match=reason):
        codec.from_reply(reply_from(3, content))


def test_truncated_payload_is_refused() -> None:
    payload = sample_metadata(epochs=10).SerializeToString()
    with pytest.raises(
        codec.MetadataDecodeError,
        match=r"are not a flower_meta\.v1\.TrainProcessMetadata",
    ):
        codec.decode(payload[:-3])


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (TrainProcessMetadata(training_time=math.nan), "training_time must be finite"),
        (
            TrainProcessMetadata(training_time=-1.0),
            "training_time must be finite and >= 0",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[0.1, math.inf]),
            r"training_losses\[epoch_2\] must be finite",
        ),
        (
            TrainProcessMetadata(training_time=1.0, training_losses=[-0.1]),
            r"training_losses\[epoch_1\] must be finite and >= 0",
        ),
    ],
)
def test_semantic_rules_are_enforced_on_both_sides(
    meta: TrainProcessMetadata, reason: str
) -> None:
    with pytest.raises(codec.MetadataDecodeError, match=reason):
        codec.decode(meta.SerializeToString())
    with pytest.raises(codec.MetadataDecodeError, match=reason):
        codec.to_config_record(meta)
