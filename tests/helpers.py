"""What many tests build: replies as a SuperLink delivers them, sample metadata,
node contexts, and the paths and tools of this checkout."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from flwr.app import (
    ArrayRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message as ProtoMessage
from PIL import Image

from flower_app.protocol import codec
from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    JSON_LOG,
    MetadataLog,
    read_log,
)
from flower_meta.v1 import metadata_pb2
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    Failure,
    MetadataLogRecord,
    TrainProcessMetadata,
)
from tests.testing import VENV_BIN

ROOT = Path(__file__).resolve().parent.parent
TYPESCRIPT = ROOT / "examples" / "typescript"
VECTORS = ROOT / "examples" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())["vectors"]
VALID = [vector for vector in MANIFEST if vector["expect"] == "valid"]
INVALID = [vector for vector in MANIFEST if vector["expect"] != "valid"]
RUNS_FOLDER = "flower-meta-runs"


def buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run buf on the image of `cwd`'s proto/, as the README does it.

    That is `python -m flower_app.codegen.image`: protoc builds proto/ with
    validate.proto's descriptor from the protovalidate wheel, buf reads the
    image, with the venv's python (grpc_tools.protoc) first on PATH.
    """
    command = [str(VENV_BIN / "python"), "-m", "flower_app.codegen.image", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE = "acme/stats/v1/stats.proto"
"""A user's own message type, outside proto/ (tests/fixtures)."""


def compile_fixture(*outputs: str) -> None:
    """Run protoc on the fixture's .proto, proto/ importable, with `outputs`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{FIXTURES}",
            f"-I{ROOT / 'proto'}",
            *outputs,
            FIXTURE,
        ],
        check=True,
    )


def require(tool: str, install: str) -> str:
    """Path of `tool`; without it skip (fail in CI) naming what to install."""
    path = shutil.which(tool)
    if path is None:
        _missing(f"{tool} not found: install {install}")
    return str(path)


def require_file(path: Path, install: str) -> None:
    """Skip (fail in CI) naming what to install, unless `path` exists."""
    if not path.is_file():
        _missing(f"{path} not found: install {install}")


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def reply_from(
    node_id: int, content: RecordDict, kind: str = MessageType.TRAIN
) -> Message:
    """A reply from `node_id` carrying `content`, to an instruction of `kind`."""
    instruction = Message(RecordDict(), dst_node_id=node_id, message_type=kind)
    return Message(content, reply_to=instruction)


def node_context(node_id: int, partition_id: int, partitions: int = 10) -> Context:
    """A SuperNode's context in a simulation, run config empty."""
    return Context(
        run_id=1,
        node_id=node_id,
        node_config={"partition-id": partition_id, "num-partitions": partitions},
        state=RecordDict(),
        run_config={},
    )


def sample_metadata(epochs: int = 2) -> TrainProcessMetadata:
    """A valid report with `epochs` decreasing losses: 1, 1/2, 1/3, ..."""
    return TrainProcessMetadata(
        training_time=12.5,
        converged=True,
        training_losses=[1.0 / (epoch + 1) for epoch in range(epochs)],
    )


def train_content(
    arrays: ArrayRecord, num_examples: int, meta: TrainProcessMetadata | None
) -> RecordDict:
    """What a ClientApp's train function replies, optionally without metadata."""
    content = RecordDict(
        {
            "arrays": arrays,
            "metrics": MetricRecord({"train_loss": 0.5, "num-examples": num_examples}),
        }
    )
    if meta is not None:
        content[codec.TRAIN_RECORD_KEY] = codec.to_config_record(meta)
    return content


def expected_plots(run_dir: Path) -> list[str]:
    """The plots a run's report should hold, worked out from its metadata.jsonl.

    One per field of a stage whose value is not the same in every reply
    (a reply without the field differs from one with it), named
    `<stage>_<field>.png`: the stage is the record key without `_metadata`
    (in logs from before records named it, train or evaluate).
    """
    values: dict[str, list[dict[str, Any]]] = {}
    for line in (run_dir / JSON_LOG).read_text().splitlines():
        record = json.loads(line)
        for outcome, older in (("accepted", "train"), ("evaluated", "evaluate")):
            if outcome in record:  # a record without a key: the log's old default
                stage = record.get("recordKey", older).removesuffix("_metadata")
                values.setdefault(stage, []).append(record[outcome])
    names = []
    for stage, replies in values.items():
        for key in sorted({key for reply in replies for key in reply}):
            seen = {json.dumps(reply.get(key)) for reply in replies}
            if len(seen) > 1:
                snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
                names.append(f"{stage}_{snake}.png")
    return sorted(names)


def assert_report_plots(run_dir: Path) -> None:
    """The report folder holds the run's plots, as 800 x 450 PNG images.

    Times and losses differ from client to client in any real run: they are
    among them.
    """
    folder = run_dir / "report"
    names = expected_plots(run_dir)
    assert {
        "train_training_time.png",
        "train_training_losses.png",
        "evaluate_loss.png",
    } <= set(names)
    assert sorted(p.name for p in folder.glob("*.png")) == names
    for name in names:
        with Image.open(folder / name) as image:
            assert (image.format, image.size) == ("PNG", (800, 450)), name


def run_records(flwr_home: Path, run_id: str) -> list[MetadataLogRecord]:
    """The metadata log the example app wrote for `run_id` under FLWR_HOME."""
    return list(read_log(flwr_home / RUNS_FOLDER / run_id / BINARY_LOG))


def message_type(type_url: str) -> type[ProtoMessage]:
    """The flower_meta.v1 class a type URL names; TrainProcessMetadata otherwise.

    For an unknown name the decoder then refuses the type URL itself.
    """
    found = metadata_pb2.DESCRIPTOR.message_types_by_name.get(
        type_url.rsplit(".", 1)[-1]
    )
    if found is None or not type_url.endswith(found.full_name):
        return metadata_pb2.TrainProcessMetadata
    return message_factory.GetMessageClass(found)


def vector_type(vector: dict[str, Any]) -> type[ProtoMessage]:
    """The class a golden vector is of: of its own schema, else of flower_meta.v1."""
    if "schema" not in vector:
        return message_type(vector["type_url"])
    return _schema_classes(vector["schema"])[vector["type_url"].rsplit("/", 1)[-1]]


@functools.cache
def _schema_classes(name: str) -> dict[str, type[ProtoMessage]]:
    """Every message class of a FileDescriptorSet in examples/vectors."""
    files = descriptor_pb2.FileDescriptorSet.FromString((VECTORS / name).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return {
        message.full_name: message_factory.GetMessageClass(message)
        for file in files.file
        for message in pool.FindFileByName(file.name).message_types_by_name.values()
    }


def vector_reader_args(vector: dict[str, Any]) -> list[str]:
    """A reader's arguments for a vector: its schema first, if it has its own."""
    return ["--schema", str(VECTORS / vector["schema"])] if "schema" in vector else []


def build_wheel(folder: Path) -> Path:
    """Build this project's wheel from the checkout into `folder`; return it."""
    command = ["wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)]
    subprocess.run([sys.executable, "-m", "pip", *command], check=True)
    (wheel,) = folder.glob("flower_meta_protocol-*.whl")
    return wheel


def dependencies_only_venv(folder: Path) -> Path:
    """A venv that sees every installed dependency, but not this project.

    Its one .pth file points at our site-packages without running the .pth
    files there, so the editable install of this project is invisible; the
    Flower entry points are copied with their shebang pointed at it. Returns
    its bin folder (with pip, to install a wheel of the project into it).
    """
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    site = next(folder.glob("lib/python*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for script in VENV_BIN.glob("fl*"):
        lines = script.read_text().splitlines(keepends=True)
        target = folder / "bin" / script.name
        target.write_text(f"#!{folder / 'bin' / 'python'}\n" + "".join(lines[1:]))
        target.chmod(0o755)
    probe = subprocess.run(
        [folder / "bin" / "python", "-c", "import flower_app"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert "No module named 'flower_app'" in probe.stderr, (
        f"project must not import here: {probe.stderr[-400:]!r}"
    )
    return folder / "bin"


def write_run(
    folder: Path, rounds: int = 2, record_key: str = "train_metadata"
) -> Path:
    """Write a small run folder: per round 2 accepted, 1 evaluated, 1 failed.

    `record_key` names the stage of the accepted and failed train records.
    Every field's value differs between clients or rounds, so each gets a plot.
    """
    metadata_log = MetadataLog(folder)
    for server_round in range(1, rounds + 1):
        for node in (4, 5):
            record = MetadataLogRecord(
                run_id=9,
                server_round=server_round,
                node_id=node,
                record_key=record_key,
            )
            meta = sample_metadata(3)
            meta.training_time += node + server_round
            meta.converged = node == 4
            meta.training_losses[:] = [loss * node / 4 for loss in meta.training_losses]
            record.accepted.CopyFrom(meta)
            metadata_log.append(record)
        record = MetadataLogRecord(run_id=9, server_round=server_round, node_id=4)
        record.evaluated.CopyFrom(
            EvaluateProcessMetadata(
                evaluation_time=0.1 * server_round,
                num_examples=10 + server_round,
                loss=0.3 / server_round,
                accuracy=0.9 - 0.5 / (server_round + 1),
            )
        )
        metadata_log.append(record)
        failed = MetadataLogRecord(
            run_id=9, server_round=server_round, node_id=6, record_key=record_key
        )
        failed.failed.CopyFrom(Failure(reason="error reply: boom"))
        metadata_log.append(failed)
    metadata_log.close()
    return folder
