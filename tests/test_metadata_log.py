"""The metadata log's framing, folder, stamps and schema, against protobuf's own."""

import io
import time
from pathlib import Path

import pytest
from google.protobuf import proto

from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    ENDS,
    JSON_LOG,
    MetadataLog,
    append_one,
    read_log,
)
from flower_app.protocol.records import new_record
from flower_app.protocol.run_schema import SCHEMA, record_type
from flower_meta.v1.metadata_pb2 import MetadataLogRecord


def _record_of_size(size: int) -> MetadataLogRecord:
    """A record whose serialized form is exactly `size` bytes."""
    for node in (0, 1):  # node_id 1 adds 2 bytes, where a key length cannot
        for length in range(size):
            record = MetadataLogRecord(run_id=1, node_id=node, record_key="k" * length)
            if record.ByteSize() == size:
                return record
    raise AssertionError(f"no record of {size} bytes")


@pytest.mark.parametrize("size", [5, 127, 128, 300, 16_383, 16_384])
def test_records_are_framed_as_protobuf_frames_them(tmp_path: Path, size: int) -> None:
    record = _record_of_size(size)
    log = MetadataLog(tmp_path / "runs" / "7", json_lines=False)
    log.append(record)
    log.close()
    expected = io.BytesIO()
    proto.serialize_length_prefixed(record, expected)
    assert (tmp_path / "runs" / "7" / BINARY_LOG).read_bytes() == expected.getvalue()
    assert list(read_log(tmp_path / "runs" / "7" / BINARY_LOG)) == [record]


def test_a_record_is_stamped_with_the_time_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_123_456_789)
    record = new_record(run_id=3, server_round=2, node_id=9, record_key="k")
    assert (record.received_at.seconds, record.received_at.nanos) == (
        1_700_000_000,
        123_456_789,
    )
    assert (record.run_id, record.server_round, record.node_id) == (3, 2, 9)


def test_a_log_without_a_schema_file_is_read_with_this_build(tmp_path: Path) -> None:
    assert record_type(tmp_path) is MetadataLogRecord
    MetadataLog(tmp_path).close()
    assert (tmp_path / SCHEMA).is_file()
    found = record_type(tmp_path)
    assert found is not MetadataLogRecord
    assert found.DESCRIPTOR.full_name == MetadataLogRecord.DESCRIPTOR.full_name


def _decoded(folder: Path) -> list[str]:
    """Every record of a log as `flower-meta decode --log` prints it."""
    from flower_app.protocol.canonical_json import to_canonical_json

    return [
        to_canonical_json(r) for r in read_log(folder / BINARY_LOG, record_type(folder))
    ]


def test_a_log_written_a_record_at_a_time_is_one_a_whole_log_would_write(
    tmp_path: Path,
) -> None:
    from google.protobuf.wrappers_pb2 import DoubleValue

    one_by_one, whole = tmp_path / "one", tmp_path / "whole"
    records = []
    for node in range(5):
        record = _record_of_size(40 + node)
        if node == 3:  # an own type, packed: its schema joins schema.binpb
            record.accepted_other.Pack(DoubleValue(value=0.5))
        records.append(record)
        append_one(one_by_one, record, [DoubleValue])
    log = MetadataLog(whole, types=[DoubleValue])
    for record in records:
        log.append(record)
    log.close()
    for name in (BINARY_LOG, JSON_LOG, SCHEMA):
        assert (one_by_one / name).read_bytes() == (whole / name).read_bytes(), name
    assert (one_by_one / JSON_LOG).read_text().splitlines() == _decoded(one_by_one)
    assert (one_by_one / ENDS).read_text() == (
        f"{(one_by_one / BINARY_LOG).stat().st_size} "
        f"{(one_by_one / JSON_LOG).stat().st_size}\n"
    )


@pytest.mark.parametrize(
    "damage", ["torn record", "mirror behind", "written by another writer"]
)
def test_a_record_appended_after_damage_repairs_the_log_first(
    tmp_path: Path, damage: str
) -> None:
    for node in range(3):
        append_one(tmp_path, _record_of_size(30 + node))
    if damage == "torn record":
        with (tmp_path / BINARY_LOG).open("ab") as tail:
            tail.write(b"\x40\x0a\x03")  # claims 64 bytes, has 2
    elif damage == "mirror behind":
        lines = (tmp_path / JSON_LOG).read_text().splitlines(keepends=True)
        (tmp_path / JSON_LOG).write_text("".join(lines[:1]))
    else:
        log = MetadataLog(tmp_path, json_lines=False)
        log.append(_record_of_size(50))
        log.close()
    append_one(tmp_path, _record_of_size(60))
    records = list(read_log(tmp_path / BINARY_LOG))
    count = 5 if damage == "written by another writer" else 4
    assert [r.ByteSize() for r in records][-1] == 60
    assert len(records) == count
    assert (tmp_path / JSON_LOG).read_text().splitlines() == _decoded(tmp_path)
    if damage == "torn record":
        assert (tmp_path / f"{BINARY_LOG}.torn-{sum_sizes(records[:3])}").is_file()


def sum_sizes(records: list[MetadataLogRecord]) -> int:
    """The bytes `records` take in a log: each with its one-byte size prefix."""
    return sum(1 + r.ByteSize() for r in records)
