"""The codec: round trips, the envelope, type URLs, and clear refusals."""

import math

import pytest
from flwr.app import ConfigRecord, ConfigRecordValues, Error, Message, RecordDict
from google.protobuf import any_pb2
from hypothesis import given
from hypothesis import strategies as st

from flower_app.protocol import codec
from flower_app.protocol.rules import Limits, MetadataDecodeError
from flower_meta.v1.metadata_pb2 import Rejection, TrainProcessMetadata
from tests.helpers import reply_from, sample_metadata

TRAIN = TrainProcessMetadata
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


def _from_reply(reply: Message) -> TrainProcessMetadata:
    return codec.from_message(TRAIN, reply, codec.TRAIN_RECORD_KEY)


@given(metadata())
def test_reply_round_trip_keeps_every_field(meta: TrainProcessMetadata) -> None:
    record = codec.to_config_record(meta)
    decoded = _from_reply(reply_from(5, RecordDict({codec.TRAIN_RECORD_KEY: record})))
    assert decoded == meta
    assert decoded.HasField("converged") == meta.HasField("converged")


def test_record_is_a_flattened_any() -> None:
    record = codec.to_config_record(sample_metadata())
    assert set(record) == {"type_url", "meta"}
    type_url, value = record["type_url"], record["meta"]
    assert type_url == "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
    assert isinstance(value, bytes)
    unpacked = TrainProcessMetadata()
    assert any_pb2.Any(type_url=type_url, value=value).Unpack(unpacked)
    assert unpacked == sample_metadata()


def _content(**record: ConfigRecordValues) -> RecordDict:
    return RecordDict({"train_metadata": ConfigRecord(record)})


URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
GOOD = sample_metadata().SerializeToString()


@pytest.mark.parametrize(
    ("content", "reason", "detail"),
    [
        (RecordDict(), "missing_record", "has no ConfigRecord 'train_metadata'"),
        (_content(type_url=URL), "missing_meta", "has no 'meta'"),
        (_content(type_url=URL, meta="x"), "meta_not_bytes", "got str"),
        (_content(type_url=URL, meta=3), "meta_not_bytes", "got int"),
        (_content(meta=GOOD), "missing_type_url", "needs the payload's type URL"),
        (_content(meta=GOOD, type_url=""), "missing_type_url", "type URL"),
        (_content(meta=GOOD, type_url=7), "missing_type_url", "type URL"),
        (
            _content(type_url=URL, meta=b""),
            "missing_training_time",
            "training_time: missing; it is required",
        ),
    ],
)
def test_malformed_records_are_refused_with_reason(
    content: RecordDict, reason: str, detail: str
) -> None:
    with pytest.raises(codec.Refused, match=detail) as caught:
        _from_reply(reply_from(3, content))
    assert caught.value.reason == reason


def test_an_error_reply_has_no_record() -> None:
    instruction = Message(RecordDict(), dst_node_id=3, message_type="train")
    error = Message(Error(code=0, reason="boom"), reply_to=instruction)
    with pytest.raises(codec.Refused) as caught:
        _from_reply(error)
    assert caught.value.reason == "missing_record"


def test_a_refusal_carries_what_the_record_held() -> None:
    content = _content(type_url=URL, meta=b"\xff\xff")
    with pytest.raises(codec.Refused) as caught:
        _from_reply(reply_from(3, content))
    assert (caught.value.type_url, caught.value.payload) == (URL, b"\xff\xff")


@pytest.mark.parametrize(
    ("type_url", "reason", "detail"),
    [
        (
            "type.googleapis.com/flower_meta.v2.TrainProcessMetadata",
            "unsupported_version",
            r"major version v2\); this reader decodes flower_meta\.v1\.TrainProcess",
        ),
        (
            "type.googleapis.com/google.protobuf.Duration",
            "wrong_type",
            "is a 'google.protobuf.Duration', expected",
        ),
        (
            "type.googleapis.com/flower_meta.v1.EvaluateProcessMetadata",
            "wrong_type",
            "expected 'flower_meta.v1.TrainProcessMetadata'",
        ),
        ("flower_meta.v1.TrainProcessMetadata", "", ""),  # no host: still the type
    ],
)
def test_other_types_and_versions_are_refused_before_parsing(
    type_url: str, reason: str, detail: str
) -> None:
    if not reason:
        assert codec.decode(TRAIN, type_url, GOOD) == sample_metadata()
        return
    with pytest.raises(MetadataDecodeError, match=detail) as caught:
        codec.decode(TRAIN, type_url, b"\xff not parsed")
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "type_url",
    [
        URL + "\n2026-11-28 INFO : forged line",
        URL + "\x1b[31m",
        "\ud800",
        "type.googleapis.com/" + "x" * 237,  # 257 characters
        "type.googleapis.com/flower meta",
        "é",
    ],
    ids=["newline", "ansi", "surrogate", "257-chars", "space", "non-ascii"],
)
def test_malformed_type_urls_are_refused_escaped(type_url: str) -> None:
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(TRAIN, type_url, GOOD)
    assert caught.value.reason == "invalid_type_url"
    assert str(caught.value).isprintable()
    assert len(str(caught.value)) < 250
    str(caught.value).encode("utf-8")  # storable as a proto string


@pytest.mark.parametrize("length", [256, 257])
def test_type_urls_up_to_256_characters_are_read(length: int) -> None:
    type_url = "h" * (length - len(URL)) + URL
    if length <= 256:
        assert codec.decode(TRAIN, type_url, GOOD) == sample_metadata()
        return
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(TRAIN, type_url, GOOD)
    assert caught.value.reason == "invalid_type_url"


def test_truncated_payload_is_refused() -> None:
    payload = sample_metadata(epochs=10).SerializeToString()
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(TRAIN, URL, payload[:-3])
    assert caught.value.reason == "malformed"
    assert "are not a flower_meta.v1.TrainProcessMetadata payload" in str(caught.value)


@pytest.mark.parametrize("size", [99, 100, 101])
def test_payload_size_limit_is_inclusive(size: int) -> None:
    meta = TrainProcessMetadata(training_time=1.0)  # 9 bytes
    unknown = bytes([0xA2, 0x06, size - 12]) + b"x" * (size - 12)  # field 100
    payload = meta.SerializeToString() + unknown
    assert len(payload) == size
    limits = Limits(max_payload_bytes=100)
    if size <= 100:
        assert codec.decode(TRAIN, URL, payload, limits).training_time == 1.0
        return
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(TRAIN, URL, payload, limits)
    assert caught.value.reason == "payload_too_large"
    assert f"{size} bytes exceed the limit of 100" in caught.value.detail


def test_the_sender_refuses_what_the_server_would() -> None:
    big = TrainProcessMetadata(training_time=1.0, training_losses=[0.5] * 20)
    with pytest.raises(MetadataDecodeError) as caught:
        codec.to_config_record(big, Limits(max_payload_bytes=100))
    assert caught.value.reason == "payload_too_large"
    with pytest.raises(MetadataDecodeError) as caught:
        codec.to_config_record(TrainProcessMetadata(training_time=math.nan))
    assert caught.value.reason == "training_time_out_of_range"


REFUSAL_URL = "type.googleapis.com/flower_meta.v1.Rejection"


def _refusal(**fields: object) -> bytes:
    return Rejection(**fields).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "reason", "detail"),
    [
        (b"\xff\xff", "malformed", "2 bytes are not a node's refusal"),
        (_refusal(reason="Bad Reason"), "malformed", "with reason 'Bad Reason'"),
        (_refusal(reason=""), "malformed", "with reason ''"),
        (_refusal(reason="a" * 65), "malformed", "not 1 to 64 characters"),
        (_refusal(reason="x\n\x1b[31m"), "malformed", r"'x\\n\\x1b\[31m'"),
        (_refusal(reason="x", detail="y" * 200), "payload_too_large", "exceed"),
    ],
)
def test_a_node_refusal_that_is_not_one_is_refused(
    meta: bytes, reason: str, detail: str
) -> None:
    content = _content(type_url=REFUSAL_URL, meta=meta)
    with pytest.raises(codec.Refused, match=detail) as caught:
        codec.from_message(
            TRAIN,
            reply_from(3, content),
            "train_metadata",
            Limits(max_payload_bytes=100),
        )
    assert caught.value.reason == reason


def test_a_node_refusal_keeps_the_nodes_reason_and_bounds_the_rest() -> None:
    sent = _refusal(
        reason="loss_out_of_range",
        detail="training_losses[0]: got -1\n",
        payload=b"p" * 1000,
        payload_size=5000,
        payload_sha256=b"h" * 31,  # not a SHA-256: dropped
        type_url="type.googleapis.com/x.Y",
    )
    with pytest.raises(codec.Refused) as caught:
        _from_reply(reply_from(3, _content(type_url=REFUSAL_URL, meta=sent)))
    rejection = caught.value.rejection("train_metadata")
    assert rejection.reason == "loss_out_of_range"
    assert rejection.detail == r"refused by the node: training_losses[0]: got -1\n"
    assert rejection.payload == b"p" * 256
    assert rejection.payload_size == 5000
    assert rejection.payload_sha256 == b""  # unknown: not the first bytes' hash
    assert (rejection.type_url, rejection.record_key) == (
        "type.googleapis.com/x.Y",
        "train_metadata",
    )
