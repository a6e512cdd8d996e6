"""The ServerApp's durable metadata log: length-delimited records + JSON lines.

A run folder holds:
- `metadata.binpb`: `MetadataLogRecord`s, each prefixed by its varint size
  (protobuf's own delimited framing), appended as replies arrive and
  flushed to disk at the end of every round;
- `schema.binpb`: the `FileDescriptorSet` the log was written with, so a
  reader reads every field by name, also fields its own build never saw and
  an app's own message types;
- `metadata.jsonl`: the same records as canonical JSON, one a line, written
  when the log closes, at the end of the run (off the rounds' path; during
  a run, or after one that died, `flower-meta decode --log` prints them).
"""

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, overload

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, proto
from google.protobuf.message import DecodeError, Message

from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.schema import FileDescriptor
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)

BINARY_LOG = "metadata.binpb"
JSON_LOG = "metadata.jsonl"
SCHEMA = "schema.binpb"
R = TypeVar("R", bound=Message)


class RecordSink(Protocol):
    """Where records go as the server writes them: the log, a tracker."""

    def append(self, record: MetadataLogRecord) -> None:
        """Take one record."""

    def flush(self) -> None:
        """Finish a stage of a round: make what was taken durable or visible."""


class CorruptLogError(ValueError):
    """A metadata log whose tail is damaged; the records before it are intact."""


class MetadataLog:
    """Appends records to the log files in one folder."""

    def __init__(
        self,
        folder: Path,
        json_lines: bool = True,
        types: Iterable[type[Message]] = (),
    ) -> None:
        """Open (or continue) the log in `folder`, creating it if needed.

        `types` are the message types the log may hold besides the built-in
        ones; their schema goes into schema.binpb. With `json_lines`, closing
        the log mirrors what it took into metadata.jsonl.
        """
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        files = [MetadataLogRecord.DESCRIPTOR.file, *(t.DESCRIPTOR.file for t in types)]
        (folder / SCHEMA).write_bytes(file_descriptor_set(files).SerializeToString())
        self._binary = (folder / BINARY_LOG).open("ab")
        self._start = self._binary.tell() if json_lines else None

    def append(self, record: MetadataLogRecord) -> None:
        """Write one record to the binary log (buffered until `flush`)."""
        data = record.SerializeToString()
        self._binary.write(_varint(len(data)) + data)

    def flush(self) -> None:
        """Push the binary log to disk."""
        self._binary.flush()
        os.fsync(self._binary.fileno())

    def close(self) -> None:
        """Flush and close the binary log; mirror its new records as JSON lines."""
        self.flush()
        self._binary.close()
        if self._start is not None:
            mirror_json_lines(self.folder, self._start)


def mirror_json_lines(folder: Path, start: int) -> None:
    """Append the binary log's records from byte `start` on to metadata.jsonl.

    Each record becomes one line of canonical JSON, the same line
    `flower-meta decode --log` prints.
    """
    with (folder / BINARY_LOG).open("rb") as stream:
        stream.seek(start)
        records = read_records(stream)
        with (folder / JSON_LOG).open("a", encoding="utf-8") as lines:
            lines.writelines(to_canonical_json(record) + "\n" for record in records)


def _varint(value: int) -> bytes:
    """Encode a size as protobuf's delimited framing prefixes a record."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def new_record(
    run_id: int, server_round: int, node_id: int, record_key: str
) -> MetadataLogRecord:
    """Start a record of one outcome, stamped with the time it is written."""
    record = MetadataLogRecord(
        run_id=run_id, server_round=server_round, node_id=node_id, record_key=record_key
    )
    stamp = record.received_at
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
    return record


def file_accepted(record: MetadataLogRecord, meta: Message) -> None:
    """File accepted metadata under its own field, or packed as an Any."""
    if isinstance(meta, TrainProcessMetadata):
        record.accepted.CopyFrom(meta)
    elif isinstance(meta, EvaluateProcessMetadata):
        record.evaluated.CopyFrom(meta)
    else:
        record.accepted_other.Pack(meta)


def file_descriptor_set(
    files: Iterable[FileDescriptor],
) -> descriptor_pb2.FileDescriptorSet:
    """`files` and everything they import, each once, imports first."""
    done: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def add(file: FileDescriptor) -> None:
        if file.name in done:
            return
        for dependency in file.dependencies:
            add(dependency)
        done[file.name] = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(done[file.name])

    for file in files:
        add(file)
    return descriptor_pb2.FileDescriptorSet(file=done.values())


def schema_pool(path: Path) -> descriptor_pool.DescriptorPool:
    """Load a `FileDescriptorSet` file, such as a run's schema.binpb, as a pool."""
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def record_type(folder: Path) -> type[Message]:
    """Build the log record type of a run folder from its schema.binpb.

    A log written before schema.binpb existed is read with this build's
    `MetadataLogRecord`.
    """
    path = folder / SCHEMA
    if not path.is_file():
        return MetadataLogRecord
    name = MetadataLogRecord.DESCRIPTOR.full_name
    return message_factory.GetMessageClass(
        schema_pool(path).FindMessageTypeByName(name)
    )


@overload
def read_log(path: Path) -> Iterator[MetadataLogRecord]: ...


@overload
def read_log(path: Path, record: type[R]) -> Iterator[R]: ...


def read_log(
    path: Path, record: type[Message] = MetadataLogRecord
) -> Iterator[Message]:
    """Yield the records of a binary log; raise `CorruptLogError` at a bad tail.

    `record` is the record type to parse them as: this build's by default, or
    the log's own (`record_type`).
    """
    with path.open("rb") as stream:
        yield from read_records(stream, record, str(path))


def read_records(
    stream: BinaryIO, record: type[Message] = MetadataLogRecord, name: str = "log"
) -> Iterator[Message]:
    """Yield the records from `stream`'s position on (see `read_log`)."""
    count = 0
    while True:
        offset = stream.tell()
        try:
            found = proto.parse_length_prefixed(record, stream)  # type: ignore[arg-type]
        except (DecodeError, ValueError) as err:
            raise CorruptLogError(
                f"{name}: record {count + 1} at byte {offset} is damaged ({err}); "
                f"the {count} records before it are intact"
            ) from err
        if found is None:
            return
        count += 1
        yield found
