"""The metadata log keeps every record it can: full disks, crashes, second writers.

Real failures, not mocks: a 96 KiB tmpfs (or, where this process may not
mount one, a file-size limit) that fills up under a running strategy; real
processes killed with SIGKILL while they open and write a log; a second
process on the same folder. The oracles are protobuf's own length-prefixed
parser and the records the test wrote.
"""

import contextlib
import io
import logging
import os
import random
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAdagrad
from google.protobuf import proto

from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    JSON_LOG,
    LogBusyError,
    MetadataLog,
    read_log,
)
from flower_app.protocol.run_schema import record_type
from flower_app.server.strategy import MetadataStrategy
from flower_meta.v1.metadata_pb2 import MetadataLogRecord
from tests.helpers import ROOT, sample_metadata, train_content
from tests.testing import NodeList, answer, delivered

DISK = 96 * 1024


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A folder on a 96 KiB file system; or, unmountable, one whose files stop at it."""
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.getsignal(signal.SIGXFSZ)
    if not mounted:  # writes past the size fail with EFBIG instead of ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (DISK, limit[1]))
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
        else:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            signal.signal(signal.SIGXFSZ, handler)


def _record(node: int, server_round: int = 1, size: int = 40) -> MetadataLogRecord:
    record = MetadataLogRecord(
        run_id=3, server_round=server_round, node_id=node, record_key="k" * size
    )
    record.accepted.CopyFrom(sample_metadata(5))
    return record


def _protobuf_reads(path: Path) -> list[MetadataLogRecord]:
    """The records protobuf's own parser finds in a log, up to the first bad one."""
    stream, found = io.BytesIO(path.read_bytes()), []
    with contextlib.suppress(Exception):
        while (
            record := proto.parse_length_prefixed(MetadataLogRecord, stream)
        ) is not None:
            found.append(record)
    return found


def _framed(records: list[MetadataLogRecord]) -> bytes:
    """The records as protobuf's own delimited framing writes them."""
    out = io.BytesIO()
    for record in records:
        proto.serialize_length_prefixed(record, out)
    return out.getvalue()


MODEL = {"w": np.zeros(64, dtype=np.float32)}


def _train_round(
    strategy: MetadataStrategy[FedAdagrad], server_round: int, nodes: int
) -> bool:
    strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = nodes
    sent = delivered(
        strategy.configure_train(
            server_round,
            ArrayRecord({k: Array(v) for k, v in MODEL.items()}),
            ConfigRecord(),
            NodeList(list(range(1, nodes + 1))),  # type: ignore[arg-type]
        )
    )
    arrays = ArrayRecord({k: Array(np.ones_like(v)) for k, v in MODEL.items()})
    replies = [answer(m, train_content(arrays, 10, sample_metadata(5))) for m in sent]
    aggregated, _ = strategy.aggregate_train(server_round, replies)
    return aggregated is not None


def test_a_strategy_whose_disk_fills_finishes_every_round_and_names_the_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "disk") as disk, caplog.at_level(logging.INFO, "flwr"):
        metadata_log = MetadataLog(disk / "run", json_lines=False)
        strategy = MetadataStrategy(FedAdagrad(), metadata_log=metadata_log)
        finished = [_train_round(strategy, r, nodes=20) for r in range(1, 41)]
        metadata_log.close()
        kept = _protobuf_reads(disk / "run" / BINARY_LOG)

    assert all(finished)
    assert len(strategy.reports) == 40
    warnings = [m for m in caplog.messages if "cannot be written" in m]
    assert len(warnings) == 1  # once, with the cause
    assert "No space left on device" in warnings[0] or "File too large" in warnings[0]
    written = [(r.server_round, r.node_id) for r in kept]
    whole_rounds = len(written) // 20
    assert 0 < whole_rounds < 40
    assert sorted(written) == [
        (r, n) for r in range(1, whole_rounds + 1) for n in range(1, 21)
    ]  # whole rounds only: a batch that did not fit was cut off again
    lost = metadata_log.unpersisted
    assert len(lost) == (40 - whole_rounds) * 20
    assert lost[0].startswith(f"round {whole_rounds + 1} train_metadata node ")
    assert lost[-1].startswith("round 40 train_metadata node ")
    (closing,) = [m for m in caplog.messages if "were not persisted" in m]
    assert f"{len(lost)} records were not persisted: {lost[0]}" in closing


def test_records_wait_in_memory_until_the_disk_has_room_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "disk") as disk, caplog.at_level(logging.INFO, "flwr"):
        metadata_log = MetadataLog(disk / "run", json_lines=False)
        filler = disk / "filler"
        with contextlib.suppress(OSError):
            filler.write_bytes(b"x" * DISK)
        records = [_record(n) for n in range(30)]
        for record in records[:10]:
            metadata_log.append(record)
        metadata_log.flush()  # fails: no room
        filler.unlink()
        for record in records[10:]:
            metadata_log.append(record)
        metadata_log.flush()
        metadata_log.close()
        kept = _protobuf_reads(disk / "run" / BINARY_LOG)

    assert metadata_log.unpersisted == []
    assert kept == records
    assert any("writing again, nothing lost" in m for m in caplog.messages)


def _torn_log(folder: Path, whole: int) -> list[MetadataLogRecord]:
    records = [_record(n) for n in range(whole + 1)]
    metadata_log = MetadataLog(folder)
    for record in records:
        metadata_log.append(record)
    metadata_log.close()
    data = (folder / BINARY_LOG).read_bytes()
    last = records[-1].ByteSize()
    (folder / BINARY_LOG).write_bytes(data[: len(data) - last // 2])  # cut inside it
    return records[:whole]


def test_a_torn_tail_is_moved_aside_and_later_records_are_all_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _torn_log(tmp_path, whole=9)
    cut_at = len(_framed(before))
    later = [_record(n, server_round=2) for n in range(5)]
    with caplog.at_level(logging.INFO, "flwr"):
        metadata_log = MetadataLog(tmp_path)
        for record in later:
            metadata_log.append(record)
        metadata_log.close()

    assert list(read_log(tmp_path / BINARY_LOG)) == before + later
    assert _protobuf_reads(tmp_path / BINARY_LOG) == before + later
    (aside,) = tmp_path.glob(f"{BINARY_LOG}.torn-*")
    assert aside.name == f"{BINARY_LOG}.torn-{cut_at}"
    assert 0 < len(aside.read_bytes()) < _record(9).ByteSize() + 1
    (warning,) = [m for m in caplog.messages if "cut off" in m]
    assert f"cut off at byte {cut_at}" in warning
    assert "new records follow record 9" in warning
    mirror = (tmp_path / JSON_LOG).read_text().splitlines()
    assert mirror == [to_canonical_json(r) for r in before + later]


def test_two_writers_on_one_folder_the_second_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    first = MetadataLog(tmp_path)
    with pytest.raises(LogBusyError, match="being written by another process"):
        MetadataLog(tmp_path)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path\n"
            "from flower_app.protocol.metadata_log import MetadataLog, LogBusyError\n"
            "try: MetadataLog(Path(sys.argv[1]))\n"
            "except LogBusyError as err: print(err); sys.exit(3)",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": f"{ROOT}:{ROOT / 'generated' / 'python'}"},
    )
    assert other.returncode == 3, other.stderr
    assert "being written by another process" in other.stdout
    first.close()
    MetadataLog(tmp_path).close()  # free again once the first closed


def test_writers_one_after_another_mirror_every_record_exactly_once(
    tmp_path: Path,
) -> None:
    records = [_record(n, server_round=n // 3) for n in range(12)]
    for start in range(0, 12, 3):
        metadata_log = MetadataLog(tmp_path)
        for record in records[start : start + 3]:
            metadata_log.append(record)
        metadata_log.close()
    mirror = (tmp_path / JSON_LOG).read_text().splitlines()
    assert mirror == [to_canonical_json(r) for r in records]


def test_a_mirror_cut_mid_line_is_mended_from_the_binary_log(tmp_path: Path) -> None:
    records = [_record(n) for n in range(6)]
    metadata_log = MetadataLog(tmp_path)
    for record in records[:4]:
        metadata_log.append(record)
    metadata_log.close()
    text = (tmp_path / JSON_LOG).read_text()
    (tmp_path / JSON_LOG).write_text(text[: len(text) - 20])  # a crash while mirroring
    metadata_log = MetadataLog(tmp_path)
    for record in records[4:]:
        metadata_log.append(record)
    metadata_log.close()
    mirror = (tmp_path / JSON_LOG).read_text().splitlines()
    assert mirror == [to_canonical_json(r) for r in records]


WRITER = """
import sys
from pathlib import Path
from flower_app.protocol.metadata_log import MetadataLog
from flower_meta.v1.metadata_pb2 import MetadataLogRecord
folder, count = Path(sys.argv[1]), 0
print("ready", flush=True)
while True:
    log = MetadataLog(folder)
    for _ in range(50):
        count += 1
        log.append(MetadataLogRecord(node_id=count, record_key="k" * (count % 300)))
    log.flush()
    log.close()
"""


@pytest.mark.e2e
def test_sigkill_while_opening_and_writing_never_loses_a_synced_record(
    tmp_path: Path,
) -> None:
    """Kill a writer at random points, many times; reopen; check every file."""
    folder = tmp_path / "run"
    chance = random.Random(19)
    env = os.environ | {"PYTHONPATH": f"{ROOT}:{ROOT / 'generated' / 'python'}"}
    synced = 0
    for _ in range(25):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        with contextlib.suppress(subprocess.TimeoutExpired):
            writer.wait(timeout=chance.uniform(0.0, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()

        assert record_type(folder).DESCRIPTOR.full_name == (
            MetadataLogRecord.DESCRIPTOR.full_name
        )  # schema.binpb is never left empty or half-written
        reopened = MetadataLog(folder)  # repairs a torn tail, if any
        reopened.close()
        found = list(read_log(folder / BINARY_LOG))
        assert found == _protobuf_reads(folder / BINARY_LOG)
        assert len(found) >= synced
        synced = len(found)
        mirror = (folder / JSON_LOG).read_text().splitlines()
        assert mirror == [to_canonical_json(r) for r in found]
    assert not list(folder.glob(".*.tmp"))  # a reopen clears what a kill left
