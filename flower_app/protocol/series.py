"""Bounds over a long numeric series, checked on its wire bytes in two numpy calls.

Reading a repeated number from a parsed message costs a Python object per
element. A packed fixed-width series (double, float, fixed and sfixed
types) is, on the wire, its elements' little-endian bytes, so a checker
can check it without touching them one by one: a shadow message type that
declares each such field as `repeated bytes` under the same number parses
the payload again and hands back the packed chunks; numpy takes their
minimum and maximum. A rule is an interval, so every element obeys it
exactly when the minimum and the maximum do; NaN propagates through both
and fails it. When the chunks do not account for every element (a sender
may encode them unpacked), a checker answers False and the caller checks
element by element.
"""

from collections.abc import Callable
from functools import cache

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor as pb
from google.protobuf.message import DecodeError, Message

from flower_app.protocol.schema import Descriptor, FieldDescriptor

LONG = 128
"""Series at least this long are checked on their wire bytes (below, reading
the elements one by one is as fast, see benchmarks/README.md)."""
_lowest, _highest = np.minimum.reduce, np.maximum.reduce
"""NaN-propagating reductions, without ndarray.min's Python wrapper."""
_WIRE_DTYPES: dict[int, np.dtype[np.generic]] = {
    pb.TYPE_DOUBLE: np.dtype("<f8"),
    pb.TYPE_FLOAT: np.dtype("<f4"),
    pb.TYPE_FIXED64: np.dtype("<u8"),
    pb.TYPE_SFIXED64: np.dtype("<i8"),
    pb.TYPE_FIXED32: np.dtype("<u4"),
    pb.TYPE_SFIXED32: np.dtype("<i4"),
}


def packable(field: FieldDescriptor) -> bool:
    """Say whether a checker can check this field: a repeated fixed-width number."""
    return field.is_repeated and field.type in _WIRE_DTYPES


def checker(
    field: FieldDescriptor, rule: Callable[[float], bool]
) -> Callable[[bytes, int], bool]:
    """Return `within(payload, count)`, true if all `count` elements obey `rule`.

    It reads `field`'s elements from `payload`, the bytes of its message;
    it answers False also when the packed chunks do not hold all of them.
    """
    shadow, name = _shadow(field.containing_type), field.name
    dtype = _WIRE_DTYPES[field.type]
    size = dtype.itemsize
    as_python = dtype != np.float64  # a float64 is a Python float already

    def within(payload: bytes, count: int) -> bool:
        try:
            chunks = getattr(shadow.FromString(payload), name)
        except DecodeError:
            return False
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) != count * size:
            return False
        values = np.frombuffer(data, dtype)
        low, high = _lowest(values), _highest(values)
        if as_python:  # exact: NumPy would cast the rule's bounds to the array's
            # dtype (NEP 50), e.g. the largest double to float32 inf
            low, high = low.item(), high.item()
        return rule(low) and rule(high)

    return within


@cache
def _shadow(descriptor: Descriptor) -> type[Message]:
    """Return a message type with each packable field of `descriptor` as bytes."""
    name = f"wire.{descriptor.full_name}"
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{name}.proto", package=name, syntax="proto3"
    )
    shadow = file.message_type.add(name="Series")
    for field in descriptor.fields:
        if packable(field):
            shadow.field.add(
                name=field.name,
                number=field.number,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{name}.Series"))
