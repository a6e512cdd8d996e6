"""The metadata log's framing, folder, stamps and schema, against protobuf's own."""

import io
import time
from pathlib import Path

import pytest
from google.protobuf import proto

from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    MetadataLog,
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
