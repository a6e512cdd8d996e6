"""Long series are checked on their wire bytes, with the same verdicts as one by one.

A message type with four repeated fixed-width fields and a rule each is
encoded the ways a sender may: packed in one chunk, packed in several,
unpacked, or mixed. The decoder's verdict must be the first element that
breaks its field's rule, by the rules restated here.
"""

import itertools
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from flower_app.protocol import codec, series
from flower_app.protocol.plan import rule_test
from flower_app.protocol.rules import MetadataDecodeError
from flower_meta.v1 import options_pb2
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata

_F = descriptor_pb2.FieldDescriptorProto


@dataclass(frozen=True)
class Field:
    """A repeated field of the test type: its wire form and its rule, twice."""

    number: int
    kind: int
    fmt: str
    """Its element's `struct` format."""
    spec: options_pb2.FieldSpec
    valid: Callable[[float], bool]
    """The rule, restated independently."""
    elements: st.SearchStrategy[float]


FIELDS = {
    "d": Field(
        1,
        _F.TYPE_DOUBLE,
        "d",
        options_pb2.FieldSpec(gt=-1.0, lte=2.0),
        lambda v: -1 < v <= 2,
        st.floats(),
    ),
    "f": Field(
        2,
        _F.TYPE_FLOAT,
        "f",
        options_pb2.FieldSpec(finite=True),
        math.isfinite,
        st.floats(width=32),
    ),
    "s": Field(
        3,
        _F.TYPE_SFIXED32,
        "i",
        options_pb2.FieldSpec(gte=-5, lt=5),
        lambda v: -5 <= v < 5,
        st.integers(-(2**31), 2**31 - 1),
    ),
    "u": Field(
        4,
        _F.TYPE_FIXED64,
        "Q",
        options_pb2.FieldSpec(lte=10),
        lambda v: v <= 10,
        st.integers(0, 2**64 - 1),
    ),
}


def _series_type() -> type[Message]:
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/series.proto",
        package="series_test",
        syntax="proto3",
        dependency=["flower_meta/v1/options.proto"],
    )
    message = file.message_type.add(name="Series")
    for name, spec in FIELDS.items():
        field = message.field.add(
            name=name, number=spec.number, label=_F.LABEL_REPEATED, type=spec.kind
        )
        field.options.Extensions[options_pb2.field].CopyFrom(spec.spec)
    pool = descriptor_pool.Default()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("series_test.Series")
    )


Series = _series_type()
URL = codec.type_url_of(Series)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode(name: str, values: list[float], chunks: list[int], packed: bool) -> bytes:
    """Encode a field's values, packed in chunks cut at `chunks`, or unpacked."""
    number, fmt = FIELDS[name].number, FIELDS[name].fmt
    if not packed:
        wire_type = 1 if fmt in "dQ" else 5
        return b"".join(
            _varint(number << 3 | wire_type) + struct.pack("<" + fmt, v) for v in values
        )
    cuts = sorted({0, len(values), *(c % (len(values) + 1) for c in chunks)})
    out = b""
    for start, end in itertools.pairwise(cuts):
        data = struct.pack(f"<{end - start}{fmt}", *values[start:end])
        out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return out


@st.composite
def payloads(draw: st.DrawFn) -> tuple[bytes, dict[str, list[float]]]:
    """A payload in any encoding, and the values it holds, field by field."""
    parts: list[bytes] = []
    values: dict[str, list[float]] = {}
    for name in FIELDS:
        length = draw(st.sampled_from([0, 3, series.LONG - 1, series.LONG, 300]))
        element = FIELDS[name].elements
        if draw(st.booleans()):  # all valid: the fast path's case
            element = element.filter(FIELDS[name].valid)
        field = draw(st.lists(element, min_size=length, max_size=length))
        if len(field) > 0 and draw(st.booleans()):  # but perhaps one
            field[draw(st.integers(0, len(field) - 1))] = draw(FIELDS[name].elements)
        values[name] = field
        cuts = draw(st.lists(st.integers(0, 400), max_size=3))
        parts.append(_encode(name, field, cuts, packed=draw(st.integers(0, 3)) > 0))
    order = draw(st.permutations(range(len(parts))))
    return b"".join(parts[i] for i in order), values


def _first_broken(values: dict[str, list[float]]) -> str | None:
    for name, spec in FIELDS.items():
        for index, value in enumerate(values[name]):
            if not spec.valid(value):
                return f"{name}[{index}]:"
    return None


@settings(max_examples=300, deadline=None)
@given(payloads())
def test_the_verdict_is_the_first_broken_element(
    case: tuple[bytes, dict[str, list[float]]],
) -> None:
    payload, values = case
    expected = _first_broken(values)
    if expected is None:
        message = codec.decode(Series, URL, payload)
        assert {n: list(getattr(message, n)) for n in FIELDS} == values
    else:
        with pytest.raises(MetadataDecodeError, match=re.escape(expected)) as err:
            codec.decode(Series, URL, payload)
        assert err.value.reason == "out_of_range"
        assert err.value.detail.startswith(expected)


def test_a_packed_series_is_read_from_its_bytes_and_unpacked_one_is_not() -> None:
    field = Series.DESCRIPTOR.fields_by_name["d"]
    within = series.checker(field, rule_test(field))
    good, bad = [0.5] * 200, [0.5] * 199 + [2.5]
    assert within(_encode("d", good, [], packed=True), 200)
    assert within(_encode("d", good, [50, 120], packed=True), 200)
    assert not within(_encode("d", bad, [], packed=True), 200)
    assert not within(_encode("d", [math.nan, *good[1:]], [], packed=True), 200)
    assert not within(_encode("d", good, [], packed=False), 200)
    mixed = _encode("d", good[:100], [], packed=True) + _encode(
        "d", good[100:], [], packed=False
    )
    assert not within(mixed, 200)
    assert not within(b"\xff", 200)


def test_a_float32_series_meets_a_bound_as_its_values_read_exactly() -> None:
    """0.1 as a float32 is 0.10000000149...: above a bound of 0.1 (a double)."""
    field = Series.DESCRIPTOR.fields_by_name["f"]
    within = series.checker(field, lambda v: v <= 0.1)
    tenth = struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert tenth > 0.1  # what the exact path reads
    assert not within(_encode("f", [tenth] * 200, [], packed=True), 200)
    below = struct.unpack("<f", struct.pack("<f", 0.0999999))[0]
    assert within(_encode("f", [below] * 200, [], packed=True), 200)


def test_only_repeated_fixed_width_numbers_are_packable() -> None:
    fields = TrainProcessMetadata.DESCRIPTOR.fields_by_name
    assert series.packable(fields["training_losses"])
    assert not series.packable(fields["training_time"])  # a double, but singular
    assert not series.packable(fields["converged"])
    assert all(series.packable(f) for f in Series.DESCRIPTOR.fields)
