"""The ServerApp's durable metadata log: length-delimited records + JSON lines.

`metadata.binpb` holds `MetadataLogRecord`s, each prefixed by its varint
size (protobuf's own delimited framing); `metadata.jsonl` holds the same
records as canonical JSON, one a line. Both are appended as replies arrive
and flushed to disk at the end of every round.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from flower_meta.v1.metadata_pb2 import MetadataLogRecord
from google.protobuf import proto
from google.protobuf.message import DecodeError

from flower_app.protocol.canonical_json import to_canonical_json

BINARY_LOG = "metadata.binpb"
JSON_LOG = "metadata.jsonl"


class CorruptLogError(ValueError):
    """A metadata log whose tail is damaged; the records before it are intact."""


class MetadataLog:
    """Appends records to the two log files in one folder."""

    def __init__(self, folder: Path, json_lines: bool = True) -> None:
        """Open (or continue) the log in `folder`, creating it if needed.

        Without `json_lines`, only the binary log is written: the JSON mirror
        costs about twice as much as everything else per record.
        """
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._files: list[IO[Any]] = [(folder / BINARY_LOG).open("ab")]
        if json_lines:
            self._files.append((folder / JSON_LOG).open("a", encoding="utf-8"))

    def append(self, record: MetadataLogRecord) -> None:
        """Write one record to the files (buffered until `flush`)."""
        binary, *json = self._files
        proto.serialize_length_prefixed(record, binary)  # type: ignore[arg-type]
        for lines in json:
            lines.write(to_canonical_json(record) + "\n")

    def flush(self) -> None:
        """Push everything written so far to disk."""
        for file in self._files:
            file.flush()
            os.fsync(file.fileno())

    def close(self) -> None:
        """Flush and close the files."""
        self.flush()
        for file in self._files:
            file.close()


def read_log(path: Path) -> Iterator[MetadataLogRecord]:
    """Yield the records of a binary log; raise `CorruptLogError` at a bad tail."""
    with path.open("rb") as stream:
        count = 0
        while True:
            offset = stream.tell()
            try:
                record = proto.parse_length_prefixed(MetadataLogRecord, stream)  # type: ignore[arg-type]
            except (DecodeError, ValueError) as err:
                raise CorruptLogError(
                    f"{path}: record {count + 1} at byte {offset} is damaged ({err}); "
                    f"the {count} records before it are intact"
                ) from err
            if record is None:
                return
            count += 1
            yield record
