"""TypeScript and C++ readers agree with Python on every vector and a live payload.

Each reader is built from examples/ with its real toolchain and prints either
canonical JSON, byte-identical to Python's, or "rejected <reason>: ...".
"""

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, Message, MessageType, RecordDict

from flower_app.app import client_app, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.rules import MetadataDecodeError
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import (
    INVALID,
    VALID,
    VECTORS,
    node_context,
    require,
    vector_reader_args,
    vector_type,
)

Vector = dict[str, Any]
Reader = tuple[str, list[str]]


@pytest.fixture(scope="session")
def typescript_reader(typescript_build: Path) -> list[str]:
    node = require("node", "Node.js 20+ (Debian: nodejs)")
    return [node, str(typescript_build / "consumer.js")]


@pytest.fixture(scope="session")
def cpp_reader(cpp_build: Path) -> list[str]:
    return [str(cpp_build / "consumer")]


@pytest.fixture(params=["typescript", "cpp"])
def reader(request: pytest.FixtureRequest) -> Reader:
    return request.param, request.getfixturevalue(f"{request.param}_reader")


def _read(
    reader: Reader, type_url: str, payload: Path, schema: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    _, command = reader
    return subprocess.run(
        [*command, *(schema or []), type_url, str(payload)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vector_prints_pythons_canonical_json(
    reader: Reader, vector: Vector
) -> None:
    result = _read(
        reader,
        vector["type_url"],
        VECTORS / f"{vector['name']}.binpb",
        vector_reader_args(vector),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (VECTORS / f"{vector['name']}.json").read_text()


ENVELOPE = {"invalid_type_url", "wrong_type", "unsupported_version", "malformed"}
"""Refusals before the rules: same code everywhere, each runtime's own words."""


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_as_python_rejects_it(
    reader: Reader, vector: Vector
) -> None:
    language, _ = reader
    expected = vector.get("expect_by_reader", {}).get(language, vector["expect"])
    result = _read(
        reader,
        vector["type_url"],
        VECTORS / f"{vector['name']}.binpb",
        vector_reader_args(vector),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"rejected {expected}: "), result.stdout
    if expected in ENVELOPE or "expect_by_reader" in vector:
        return
    payload = (VECTORS / f"{vector['name']}.binpb").read_bytes()
    type_url = vector["type_url"]
    with pytest.raises(MetadataDecodeError) as caught:
        codec.decode(vector_type(vector), type_url, payload)
    assert result.stdout == f"rejected {caught.value}\n"


@pytest.fixture(scope="module")
def live_reply() -> Message:
    """A train reply from the real ClientApp code path: real training on digits."""
    net = task.Net(num_features=64, num_classes=10)
    settings = Settings.from_run_config(pyproject_run_config())
    instruction = Message(
        RecordDict(
            {
                "arrays": ArrayRecord(net.state_dict()),
                codec.INSTRUCTIONS_KEY: codec.to_config_record(
                    settings.train_instructions
                ),
            }
        ),
        dst_node_id=3,
        message_type=MessageType.TRAIN,
    )
    return client_app.app(instruction, node_context(3, partition_id=3))


def test_live_payload_reads_the_same_everywhere(
    reader: Reader, live_reply: Message, tmp_path: Path
) -> None:
    record = live_reply.content[codec.TRAIN_RECORD_KEY]
    payload, type_url = record[codec.META_KEY], record[codec.TYPE_URL_KEY]
    assert isinstance(payload, bytes)
    assert isinstance(type_url, str)
    (tmp_path / "live.binpb").write_bytes(payload)
    meta = codec.from_message(TrainProcessMetadata, live_reply, codec.TRAIN_RECORD_KEY)
    assert len(meta.training_losses) == 5
    assert np.isfinite(meta.training_time)

    result = _read(reader, type_url, tmp_path / "live.binpb")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == to_canonical_json(meta) + "\n"
