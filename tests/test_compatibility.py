"""Old and new revisions of flower_meta.v1 read each other's bytes.

tests/compat holds two frozen revisions: rev0 (before `converged`) and rev2
(two fields added after today's). Each has its .proto and bytes its writer
produced; readers are built from the .proto at test time.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from flower_app.protocol import codec, display
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import sample_metadata

COMPAT = Path(__file__).resolve().parent / "compat"
TRAIN = TrainProcessMetadata
URL = codec.TRAIN_TYPE_URL


def _reader(revision: str, tmp_path: Path) -> type[Message]:
    """The TrainProcessMetadata class of a frozen revision, in its own pool."""
    descriptor_set = tmp_path / f"{revision}.binpb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{COMPAT / revision}",
            f"--descriptor_set_out={descriptor_set}",
            "flower_meta/v1/metadata.proto",
        ],
        check=True,
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    descriptor = pool.FindMessageTypeByName(TRAIN.DESCRIPTOR.full_name)
    return message_factory.GetMessageClass(descriptor)


@pytest.fixture
def rev0(tmp_path: Path) -> type[Message]:
    return _reader("rev0", tmp_path)


@pytest.fixture
def rev2(tmp_path: Path) -> type[Message]:
    return _reader("rev2", tmp_path)


def _shown(meta: Message, names: set[str]) -> dict[str, object]:
    """The fields `names` as shown; fields added to the schema since stay aside."""
    return {k: v for k, v in display.shown(meta).items() if k in names}


V1_0 = {"training_time", "converged", "training_losses"}
"""The fields of TrainProcessMetadata when the frozen revisions were written."""


def test_new_reader_reads_old_writer() -> None:
    meta = codec.decode(TRAIN, URL, (COMPAT / "rev0.binpb").read_bytes())
    assert _shown(meta, V1_0) == {
        "training_time": 42.0,
        "converged": None,  # absent: "convergence could not be assessed"
        "training_losses": {"epoch_1": 0.9, "epoch_2": 0.7, "epoch_3": 0.6},
    }


def test_new_reader_keeps_newer_fields_through_re_encode(rev2: type[Message]) -> None:
    payload = (COMPAT / "rev2.binpb").read_bytes()
    meta = codec.decode(TRAIN, URL, payload)
    assert _shown(meta, V1_0) == {
        "training_time": 7.25,
        "converged": False,
        "training_losses": {"epoch_1": 1.2, "epoch_2": 1.1},
    }
    re_encoded = meta.SerializeToString()
    assert re_encoded == payload
    newer = rev2.FromString(re_encoded)
    assert (newer.num_examples, newer.device) == (144, "cpu")  # type: ignore[attr-defined]


def test_old_reader_reads_new_writer_and_keeps_converged(rev0: type[Message]) -> None:
    written = sample_metadata(epochs=3)
    older = rev0.FromString(written.SerializeToString())
    assert older.training_time == written.training_time  # type: ignore[attr-defined]
    assert list(older.training_losses) == list(written.training_losses)  # type: ignore[attr-defined]
    round_trip = codec.decode(TRAIN, URL, older.SerializeToString())
    assert round_trip == written
    assert round_trip.HasField("converged")


def test_frozen_bytes_are_what_their_revision_writes(
    rev0: type[Message], rev2: type[Message]
) -> None:
    for revision, reader in (("rev0", rev0), ("rev2", rev2)):
        payload = (COMPAT / f"{revision}.binpb").read_bytes()
        assert reader.FromString(payload).SerializeToString() == payload
