"""Canonical JSON: numbers print as ECMAScript's String(number) does, on both
sides of each form; the fast writer prints what protobuf's json_format does.

The expected texts are what a JavaScript engine prints (ECMA-262,
Number::toString): positional from 1e-6 up to below 1e21, exponential
outside; Python's repr differs at 1e16 and above and below 1e-4.
"""

import math
import re
from typing import Any

import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from flower_app.protocol import canonical_json
from flower_app.protocol.canonical_json import (
    format_number,
    number_text,
    slow_canonical_json,
    to_canonical_json,
)
from flower_meta.v1 import metadata_pb2, options_pb2
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata

ECMASCRIPT = [
    (0.0, "0"),
    (-0.0, "0"),
    (1.0, "1"),
    (-1.5, "-1.5"),
    (0.0001, "0.0001"),
    (0.00001, "0.00001"),
    (0.000001, "0.000001"),
    (1e-7, "1e-7"),
    (-1.5e-7, "-1.5e-7"),
    (123e-20, "1.23e-18"),
    (9999999999999998.0, "9999999999999998"),
    (1e16, "10000000000000000"),
    (-1e16, "-10000000000000000"),
    (12345678901234567.0, "12345678901234568"),
    (1e20, "100000000000000000000"),
    (1.5e20, "150000000000000000000"),
    (1e21, "1e+21"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (5e-324, "5e-324"),
    (0.1, "0.1"),
    (-0.05, "-0.05"),
    (1.05, "1.05"),
    (100.0, "100"),
    (9.99e-5, "0.0000999"),
    (1e15, "1000000000000000"),
    (0.16666666666666666, "0.16666666666666666"),
]
"""Doubles and the text ECMAScript prints for each, from either side of each form."""


@pytest.mark.parametrize(("number", "text"), ECMASCRIPT)
def test_a_number_prints_as_ecmascript_prints_it(number: float, text: str) -> None:
    assert format_number(number) == text
    assert number_text(number) == text


def test_nan_and_the_infinities_have_names_but_no_json() -> None:
    assert number_text(math.nan) == "NaN"
    assert number_text(math.inf) == "Infinity"
    assert number_text(-math.inf) == "-Infinity"
    with pytest.raises(ValueError, match="JSON has no"):
        format_number(math.inf)


# The fast writer against protobuf's own proto3 JSON mapping, on any message.

_LIMITS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
MESSAGES = [
    *metadata_pb2.DESCRIPTOR.message_types_by_name.values(),
    *options_pb2.DESCRIPTOR.message_types_by_name.values(),
    Timestamp.DESCRIPTOR,
]


def _scalar(field: Any, data: st.DataObject, depth: int) -> Any:
    kind = field.type
    if kind in _LIMITS:
        return data.draw(st.integers(*_LIMITS[kind]))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return data.draw(st.floats(allow_nan=True, allow_infinity=True))
    if kind == FieldDescriptor.TYPE_FLOAT:
        return data.draw(st.floats(width=32, allow_nan=False))
    if kind == FieldDescriptor.TYPE_BOOL:
        return data.draw(st.booleans())
    if kind == FieldDescriptor.TYPE_STRING:
        return data.draw(st.text(max_size=8))
    if kind == FieldDescriptor.TYPE_BYTES:
        return data.draw(st.binary(max_size=8))
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return data.draw(st.sampled_from(known) | st.integers(-5, 50))
    raise AssertionError(kind)


def _fill(message: Any, data: st.DataObject, depth: int = 0) -> None:
    """Set an arbitrary choice of `message`'s fields to arbitrary values."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds = data.draw(st.integers(-(10**11), 253_402_300_799))
        message.nanos = data.draw(st.sampled_from([0, 1, 10**3, 10**6, 999_999_999]))
        return
    if descriptor.full_name == "google.protobuf.Any":
        inner = TrainProcessMetadata(training_time=data.draw(st.floats(0, 10)))
        message.Pack(inner)
        return
    for field in descriptor.fields:
        if depth > 2 or not data.draw(st.booleans()):
            continue
        target = field.message_type
        if target is not None and target.GetOptions().map_entry:
            entries = getattr(message, field.name)
            key_field, value_field = target.fields_by_name.values()
            for _ in range(data.draw(st.integers(0, 3))):
                key = _scalar(key_field, data, depth)
                if value_field.message_type is None:
                    entries[key] = _scalar(value_field, data, depth)
                else:
                    _fill(entries[key], data, depth + 1)
        elif field.is_repeated:
            values = getattr(message, field.name)
            for _ in range(data.draw(st.integers(0, 3))):
                if target is None:
                    values.append(_scalar(field, data, depth))
                else:
                    _fill(values.add(), data, depth + 1)
        elif target is not None:
            _fill(getattr(message, field.name), data, depth + 1)
            getattr(message, field.name).SetInParent()
        else:
            setattr(message, field.name, _scalar(field, data, depth))


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda d: d.name)
@given(data=st.data())
def test_the_fast_writer_prints_what_json_format_prints(
    descriptor: Any, data: st.DataObject
) -> None:
    message = message_factory.GetMessageClass(descriptor)()
    _fill(message, data)
    try:
        expected = slow_canonical_json(message)
    except (ValueError, json_format.Error) as refused:  # a Timestamp before 0001
        with pytest.raises(type(refused), match=re.escape(str(refused))):
            to_canonical_json(message)
        return
    assert to_canonical_json(message) == expected


def test_a_log_record_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above would pass if everything fell back to json_format."""
    record = metadata_pb2.MetadataLogRecord(
        run_id=7, server_round=3, node_id=2**63 + 1, record_key="train_metadata"
    )
    record.received_at.seconds, record.received_at.nanos = 1_700_000_000, 5_000_000
    record.accepted.CopyFrom(
        TrainProcessMetadata(training_time=0.5, training_losses=[1.0, float("nan")])
    )
    expected = slow_canonical_json(record)
    _refuse_json_format(monkeypatch)
    assert to_canonical_json(record) == expected
    assert expected == (
        '{"accepted":{"trainingLosses":[1,"NaN"],"trainingTime":0.5},'
        '"nodeId":"9223372036854775809","receivedAt":"2023-11-14T22:13:20.005Z",'
        '"recordKey":"train_metadata","runId":"7","serverRound":3}'
    )


@pytest.mark.parametrize(("number", "text"), ECMASCRIPT)
def test_the_fast_writer_prints_each_double_as_ecmascript(
    number: float, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double alone and among others in a series, json_format never asked."""
    _refuse_json_format(monkeypatch)
    message = TrainProcessMetadata(
        training_time=number, training_losses=[number, 0.5, number]
    )
    assert to_canonical_json(message) == (
        f'{{"trainingLosses":[{text},0.5,{text}],"trainingTime":{text}}}'
    )


def test_a_series_prints_each_of_its_doubles_as_ecmascript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every form in one series; then the ones Python's shortest form also
    prints positionally (1e-5 <= |n| < 1e16), in one call, none a double alone."""
    numbers, texts = zip(*ECMASCRIPT, strict=True)
    message = TrainProcessMetadata(training_losses=numbers)
    assert to_canonical_json(message) == '{"trainingLosses":[' + ",".join(texts) + "]}"

    monkeypatch.setattr(canonical_json, "number_json", _refuse)
    positional = [(n, t) for n, t in ECMASCRIPT if 1e-5 <= abs(n) < 1e16]
    numbers, texts = zip(*positional, strict=True)
    message = TrainProcessMetadata(training_losses=numbers)
    assert to_canonical_json(message) == '{"trainingLosses":[' + ",".join(texts) + "]}"


def _refuse(*_: object, **__: object) -> None:
    raise AssertionError("called")


def _refuse_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_format, "MessageToDict", _refuse)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (253_402_300_800, 0),
        (0, 10**9),
        (0, -1),
        (-1, 0),
        (253_402_300_799, 999_999_999),
    ],
)
def test_a_timestamp_at_each_bound_prints_or_fails_as_json_format(
    seconds: int, nanos: int
) -> None:
    """Past 9999-12-31T23:59:59Z or a whole second of nanos: json_format's refusal."""
    stamp = Timestamp(seconds=seconds, nanos=nanos)
    try:
        expected = slow_canonical_json(stamp)
    except ValueError as refused:
        with pytest.raises(ValueError, match=re.escape(str(refused))):
            to_canonical_json(stamp)
        return
    assert to_canonical_json(stamp) == expected


def test_float_and_enum_fields_print_as_json_format() -> None:
    """Types no message of proto/ holds: a float (left to json_format), an enum."""
    pool = descriptor_pool.DescriptorPool()
    file = descriptor_pb2.FileDescriptorProto(
        name="kinds.proto", package="kinds", syntax="proto3"
    )
    file.enum_type.add(name="Color").value.add(name="COLOR_UNSET", number=0)
    file.enum_type[0].value.add(name="COLOR_RED", number=1)
    kinds = file.message_type.add(name="Kinds")
    float_type = descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT
    enum_type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
    kinds.field.add(name="ratio", number=1, type=float_type, label=1)
    kinds.field.add(name="color", number=2, type=enum_type, type_name=".kinds.Color")
    kinds.field.add(name="other", number=3, type=enum_type, type_name=".kinds.Color")
    pool.Add(file)
    message_type: Any = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("kinds.Kinds")
    )
    for message in (message_type(color=1, other=7), message_type(ratio=0.1, color=1)):
        assert to_canonical_json(message) == slow_canonical_json(message)
    assert to_canonical_json(message_type(color=1, other=7)) == (
        '{"color":"COLOR_RED","other":7}'
    )
