"""The ServerApp's durable metadata log: length-delimited records + JSON lines.

A run folder holds:
- `metadata.binpb`: `MetadataLogRecord`s, each prefixed by its varint size
  (protobuf's own delimited framing), appended as replies arrive and
  synced to disk at the end of every stage of a round;
- `schema.binpb`: the `FileDescriptorSet` the log was written with (see
  `run_schema`), so a reader reads every field by name, also fields its own
  build never saw and an app's own message types;
- `metadata.jsonl`: the same records as canonical JSON, one a line, brought
  up to date from the binary log when the log closes (during a run, or
  after one that died, `flower-meta decode --log` prints the same lines);
- `metadata.lock`: held while a log is open, so a second writer is refused;
- `metadata.end`: in a log written a record at a time (`append_one`, a
  node's own copy), both files' sizes after the last record.

The log never stops a run and never drops a record it could keep: a write
that fails (a full disk, a read-only folder, a vanished mount) costs one
warning, the records stay in memory and are written at the next sync that
succeeds, and closing says which were never persisted. Reopening a log
whose last record was cut off by a crash moves the cut bytes aside and
appends after the last whole record.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from logging import WARNING
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, overload

from flwr.common import log
from google.protobuf.message import DecodeError, Message

from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.files import (
    FILE_MODE,
    UnsafePathError,
    open_append,
    output_folder,
    write_atomic,
)
from flower_app.protocol.run_schema import (
    SCHEMA,
    file_descriptor_set,
    merged,
    record_type,
)
from flower_meta.v1.metadata_pb2 import (
    MetadataLogRecord,
)

BINARY_LOG = "metadata.binpb"
JSON_LOG = "metadata.jsonl"
LOCK = "metadata.lock"
ENDS = "metadata.end"
"""The log's and the mirror's sizes after the last `append_one`."""
MAX_VARINT = 10
"""Bytes of the longest varint: a longer size prefix is damage."""
CHUNK = 1 << 20
"""Bytes a reader reads at a time."""
LOST_SHOWN = 20
"""Unpersisted records named one by one in the closing warning."""
R = TypeVar("R", bound=Message)


class RecordSink(Protocol):
    """Where records go as the server writes them: the log, a tracker."""

    def append(self, record: MetadataLogRecord) -> None:
        """Take one record."""

    def flush(self) -> None:
        """Finish a stage of a round: make what was taken durable or visible."""


class CorruptLogError(ValueError):
    """A metadata log whose tail is damaged; the records before it are intact.

    Raised by `read_log` after it has yielded every whole record, with a
    message naming the file, the record and the byte offset where the
    damage starts.
    """


class LogBusyError(OSError):
    """A run folder whose log another writer has open.

    Raised by `MetadataLog` (unless told to wait): give each run its own
    folder (run config `output-dir`).
    """


class MetadataLog:
    """Appends records to the log files in one folder; one writer at a time.

    Parameters
    ----------
    folder : Path
        The run folder; created if needed. A symlink is refused
        (`UnsafePathError`).
    json_lines : bool (default: True)
        Bring `metadata.jsonl` up to date when the log closes.
    types : Iterable[type[Message]] (default: ())
        Message types the log may hold besides the built-in ones; their
        schema goes into `schema.binpb`. `MetadataRun` passes its options'.
    wait : bool (default: False)
        Wait for another writer of the folder to finish instead of raising
        `LogBusyError`.

    """

    def __init__(
        self,
        folder: Path,
        json_lines: bool = True,
        types: Iterable[type[Message]] = (),
        wait: bool = False,
    ) -> None:
        """Open (or continue) the log; see the class for the parameters.

        A folder that cannot be written costs a warning, not the run (see
        the module).
        """
        self.folder = folder
        self.json_lines = json_lines
        self.unpersisted: list[str] = []
        """Records never written, filled in by `close`."""
        self._pending = bytearray()
        self._pending_names: list[str] = []
        self._failing = False
        self._closed = False
        self._lock: int | None = None
        self._fd: int | None = None
        self._durable = 0
        files = [MetadataLogRecord.DESCRIPTOR.file, *(t.DESCRIPTOR.file for t in types)]
        self._files = {f.name for f in file_descriptor_set(files).file}
        try:
            output_folder(folder)
            self._lock = _lock(folder, wait)
            for name in (SCHEMA, JSON_LOG, BINARY_LOG):  # what a killed writer left
                for stale in folder.glob(f".{name}*.tmp"):
                    stale.unlink()
            schema = folder / SCHEMA
            ours = file_descriptor_set(files)
            if schema.is_file() and not schema.is_symlink():
                ours = merged(ours, schema.read_bytes())
            write_atomic(folder, SCHEMA, ours.SerializeToString())
            self._fd = open_append(folder / BINARY_LOG)
            self._durable = repair_tail(folder, self._fd)
        except (LogBusyError, UnsafePathError):
            self._release()
            raise
        except OSError as err:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._warn_failed(err)

    def holds(self, kind: type[Message]) -> bool:
        """Whether the log's schema defines `kind`, so its records can say it."""
        return kind.DESCRIPTOR.file.name in self._files

    def append(self, record: MetadataLogRecord) -> None:
        """Take one record; it is written and synced at the next `flush`."""
        data = record.SerializeToString()
        self._pending += _varint(len(data)) + data
        self._pending_names.append(_name(record))

    def flush(self) -> None:
        """Write and sync what was taken; on failure keep it for the next try."""
        if not self._pending_names or self._fd is None:
            return
        try:
            data, written = bytes(self._pending), 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as err:
            _truncate(self._fd, self._durable)
            self._warn_failed(err)
            return
        self._durable += len(self._pending)
        self._pending.clear()
        self._pending_names.clear()
        if self._failing:
            self._failing = False
            log(WARNING, "metadata log %s: writing again, nothing lost", self.folder)

    def close(self) -> None:
        """Flush, say what could not be kept, bring the JSON lines up to date."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self.unpersisted = list(self._pending_names)
        if self.unpersisted:
            more = len(self.unpersisted) - LOST_SHOWN
            log(
                WARNING,
                "metadata log %s: %s records were not persisted: %s%s",
                self.folder,
                len(self.unpersisted),
                "; ".join(self.unpersisted[:LOST_SHOWN]),
                f"; and {more} more" if more > 0 else "",
            )
        if self._fd is not None and self.json_lines:
            try:
                mirror_json_lines(self.folder)
            except (OSError, ValueError) as err:
                log(
                    WARNING,
                    "metadata log %s: %s not brought up to date (%s); "
                    "`flower-meta decode --log` prints the same lines",
                    self.folder,
                    JSON_LOG,
                    err,
                )
        self._release()

    def _release(self) -> None:
        for handle in (self._fd, self._lock):
            if handle is not None:
                os.close(handle)
        self._fd = self._lock = None

    def _warn_failed(self, err: OSError) -> None:
        if not self._failing:
            log(
                WARNING,
                "metadata log %s cannot be written (%s); the run goes on, its "
                "records are kept in memory until they can be",
                self.folder,
                err,
            )
        self._failing = True


def _lock(folder: Path, wait: bool) -> int:
    """Hold the folder's lock file; refuse (or wait for) another writer."""
    handle = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError as err:
        os.close(handle)
        raise LogBusyError(
            f"{folder} is being written by another process; give each run its "
            "own folder (run config output-dir)"
        ) from err
    return handle


def append_one(
    folder: Path, record: MetadataLogRecord, types: Iterable[type[Message]] = ()
) -> None:
    """Append one record to the log in `folder`, in time flat in the log's length.

    For a writer that opens the log for a single record, as a node keeping
    its own copy does on every call: `MetadataLog` would merge the schema,
    scan the whole log for a torn tail and bring the whole JSON mirror up to
    date each time. Here, under the folder's lock (waiting for another
    writer): the schema is rewritten only when it lacks a type; the record
    is appended and synced, then its JSON line; `metadata.end` keeps both
    files' sizes after each append. A file of another size than it says
    (a crash mid-write, another writer, an unsynced mirror lost) is
    repaired as `MetadataLog` would, the only time the whole log is read.
    """
    output_folder(folder)
    lock = _lock(folder, wait=True)
    try:
        files = [MetadataLogRecord.DESCRIPTOR.file, *(t.DESCRIPTOR.file for t in types)]
        ours = file_descriptor_set(files)
        schema = folder / SCHEMA
        if schema.is_file() and not schema.is_symlink():
            kept = schema.read_bytes()
            merged_set = merged(ours, kept)
            if merged_set.SerializeToString() != kept:
                write_atomic(folder, SCHEMA, merged_set.SerializeToString())
        else:
            write_atomic(folder, SCHEMA, ours.SerializeToString())
        fd = open_append(folder / BINARY_LOG)
        try:
            size = os.fstat(fd).st_size
            if (size, _size(folder / JSON_LOG)) != _ends(folder):
                size = repair_tail(folder, fd)
                mirror_json_lines(folder)
            data = record.SerializeToString()
            framed = _varint(len(data)) + data
            written = 0
            while written < len(framed):
                written += os.write(fd, framed[written:])
            os.fsync(fd)  # the record is durable; what follows need not be
        finally:
            os.close(fd)
        line = (to_canonical_json(record) + "\n").encode()
        mirror = open_append(folder / JSON_LOG)
        try:
            os.write(mirror, line)
        finally:
            os.close(mirror)
        ends = f"{size + len(framed)} {_size(folder / JSON_LOG)}\n".encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        handle = os.open(folder / ENDS, flags, FILE_MODE)
        try:  # lost or torn in a crash: the next append checks the files
            os.write(handle, ends)
        finally:
            os.close(handle)
    finally:
        os.close(lock)


def _size(path: Path) -> int:
    """Return a regular file's size; 0 for none."""
    return path.stat().st_size if path.is_file() and not path.is_symlink() else 0


def _ends(folder: Path) -> tuple[int, int]:
    """Read the log's and mirror's sizes after the last `append_one`; (0, 0): none."""
    path = folder / ENDS
    if not path.is_file() or path.is_symlink():
        return 0, 0
    try:
        binary, mirror = path.read_text().split()
        return int(binary), int(mirror)
    except ValueError:
        return -1, -1  # unreadable: check the files


def is_locked(folder: Path) -> bool:
    """Say whether a process holds `folder`'s log open for writing now."""
    try:
        handle = os.open(folder / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: never opened by a writer, or removed
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


def _truncate(fd: int, size: int) -> None:
    """Cut a partly written batch off again, if the file system lets us."""
    with contextlib.suppress(OSError):  # the next reopen moves a torn tail aside
        os.ftruncate(fd, size)


def _name(record: MetadataLogRecord) -> str:
    """Say which record this is, for the list of unpersisted ones."""
    what = record.record_key or record.WhichOneof("outcome") or "record"
    return f"round {record.server_round} {what} node {record.node_id}"


def repair_tail(folder: Path, fd: int) -> int:
    """Move a cut-off last record aside; return the size of the whole records.

    A crash in the middle of a write leaves a record whose size prefix
    promises more bytes than follow. Appending after it would hide every
    later record from readers, so the cut bytes go to
    `metadata.binpb.torn-<offset>` and the log is truncated to its last
    whole record, with a warning; the JSON mirror keeps the lines of the
    records that remain.
    """
    path = folder / BINARY_LOG
    size = os.fstat(fd).st_size
    with path.open("rb") as stream:
        count, end, broken = _skip(stream, None, str(path))
        if not broken:
            return size
        stream.seek(end)
        cut = stream.read()
    kept = write_atomic(folder, f"{BINARY_LOG}.torn-{end}", cut)
    os.ftruncate(fd, end)
    os.fsync(fd)
    _keep_lines(folder / JSON_LOG, count)
    log(
        WARNING,
        "metadata log %s: its last record was cut off at byte %s (a crash while "
        "writing?); the %s bytes from there are kept in %s, and new records "
        "follow record %s",
        path,
        end,
        len(cut),
        kept.name,
        count,
    )
    return end


def mirror_json_lines(folder: Path) -> None:
    """Bring metadata.jsonl up to date with the binary log: one line a record.

    Each record becomes one line of canonical JSON, the same line
    `flower-meta decode --log` prints. The lines already there stand for
    the log's first records and are kept; a mirror with more lines than the
    log has records (a log that was repaired) is written anew, whole.
    """
    binary = folder / BINARY_LOG
    done = _complete_lines(folder / JSON_LOG)
    record = record_type(folder)
    with binary.open("rb") as stream:
        skipped, start, _ = _skip(stream, done, str(binary))
        if skipped < done:
            start = 0
        stream.seek(start)
        lines = (to_canonical_json(r) + "\n" for r in read_records(stream, record))
        if skipped < done:
            write_atomic(folder, JSON_LOG, "".join(lines).encode())
            return
        with os.fdopen(open_append(folder / JSON_LOG), "w", encoding="utf-8") as out:
            out.writelines(lines)


def _skip(stream: BinaryIO, limit: int | None, name: str) -> tuple[int, int, bool]:
    """Pass over up to `limit` records (None: all), unparsed.

    Returns how many, the offset just past them, and whether the framing
    broke before `limit` was reached.
    """
    count, end = 0, stream.tell()
    try:
        for offset, _ in frames(stream, name) if limit != 0 else ():
            count, end = count + 1, offset
            if count == limit:
                break
    except CorruptLogError:
        return count, end, True
    return count, end, False


def _keep_lines(path: Path, count: int) -> None:
    """Cut the mirror after its first `count` lines, if it has more."""
    if not path.is_file() or path.is_symlink():
        return
    with path.open("r+b") as stream:
        for _ in range(count):
            if not stream.readline():
                return
        stream.truncate(stream.tell())


def _complete_lines(path: Path) -> int:
    """Count the whole lines of the mirror; cut off a half-written last one."""
    if not path.is_file() or path.is_symlink():
        return 0
    count, size, last = 0, 0, -1
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            count += chunk.count(b"\n")
            if (at := chunk.rfind(b"\n")) >= 0:
                last = size + at
            size += len(chunk)
    if last + 1 != size:
        with path.open("r+b") as stream:
            stream.truncate(last + 1)
    return count


def _varint(value: int) -> bytes:
    """Encode a size as protobuf's delimited framing prefixes a record."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@overload
def read_log(path: Path) -> Iterator[MetadataLogRecord]: ...


@overload
def read_log(path: Path, record: type[R]) -> Iterator[R]: ...


def read_log(
    path: Path, record: type[Message] = MetadataLogRecord
) -> Iterator[Message]:
    """Yield the records of a binary log; raise `CorruptLogError` at a bad tail.

    Parameters
    ----------
    path : Path
        The log file, `<run folder>/metadata.binpb`.
    record : type[Message] (default: MetadataLogRecord)
        The record type to parse them as: this build's, or the log's own
        (`run_schema.record_type(folder)`, which reads an app's own types).

    Yields
    ------
    Message
        Each whole record, in the order written.

    Raises
    ------
    CorruptLogError
        At a damaged tail, after yielding every record before it.

    """
    with path.open("rb") as stream:
        yield from read_records(stream, record, str(path))


def read_records(
    stream: BinaryIO, record: type[Message] = MetadataLogRecord, name: str = "log"
) -> Iterator[Message]:
    """Yield the records from `stream`'s position on (see `read_log`)."""
    for count, (end, data) in enumerate(frames(stream, name)):
        try:
            found = record.FromString(data)
        except (DecodeError, RecursionError) as err:
            raise CorruptLogError(
                f"{name}: record {count + 1} at byte {end - len(data)} does not "
                f"parse ({err}); the {count} records before it are intact"
            ) from err
        yield found


def frames(stream: BinaryIO, name: str = "log") -> Iterator[tuple[int, bytes]]:
    """Yield each record's bytes, with the offset just past it, from `stream` on.

    A size prefix is checked against the bytes that remain before anything
    is read, so a damaged or hostile size costs nothing: `CorruptLogError`
    names the record and its offset.
    """
    offset = stream.tell()
    size = os.fstat(stream.fileno()).st_size
    buffer, at, count = b"", 0, 0
    while True:
        if len(buffer) - at < MAX_VARINT and offset + len(buffer) - at < size:
            buffer = buffer[at:] + stream.read(CHUNK)
            at = 0
        if at == len(buffer):
            return
        length, used = buffer[at], 0
        if length >= 0x80:  # not the one-byte size of a record under 128 bytes
            length = 0
            for used in range(min(MAX_VARINT, len(buffer) - at)):
                byte = buffer[at + used]
                length |= (byte & 0x7F) << (7 * used)
                if byte < 0x80:
                    break
            else:
                problem = "its size prefix is cut off or longer than 10 bytes"
                raise _damaged(name, count, offset, problem)
        start = offset + used + 1
        if length > size - start:
            problem = f"it declares {length} bytes, {max(size - start, 0)} follow"
            raise _damaged(name, count, offset, problem)
        at += used + 1
        if len(buffer) - at < length:
            buffer = buffer[at:] + stream.read(length - (len(buffer) - at))
            at = 0
        data = buffer[at : at + length]
        if len(data) != length:
            raise _damaged(name, count, offset, "the file shrank while it was read")
        at += length
        offset = start + length
        count += 1
        yield offset, data


def _damaged(name: str, count: int, offset: int, problem: str) -> CorruptLogError:
    return CorruptLogError(
        f"{name}: record {count + 1} at byte {offset} is damaged ({problem}); "
        f"the {count} records before it are intact"
    )
