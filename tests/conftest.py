"""Shared helpers: Flower reply Messages built the way a SuperLink delivers them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.app import ArrayRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from flower_app import codec
from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

ROOT = Path(__file__).resolve().parent.parent
TYPESCRIPT = ROOT / "examples" / "typescript"
VECTORS = ROOT / "examples" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())["vectors"]
VALID = [vector for vector in MANIFEST if vector["expect"] == "valid"]
INVALID = [vector for vector in MANIFEST if vector["expect"] != "valid"]


VENV_BIN = Path(sys.executable).parent


def buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's buf with the venv's python (grpc_tools.protoc) first on PATH."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(VENV_BIN / "buf"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def require(tool: str, install: str) -> str:
    """Path of `tool`; without it skip (fail in CI) naming what to install."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: install {install}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The TypeScript consumer's npm packages, installed from its lock file."""
    npm = require("npm", "Node.js 20+ and npm (Debian: nodejs npm)")
    if not (TYPESCRIPT / "node_modules" / ".bin" / "protoc-gen-es").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT, check=True
        )
    return TYPESCRIPT / "node_modules"


@pytest.fixture(autouse=True)
def task_identity() -> None:
    """Messages need a run and task identity, as inside a real ServerApp."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1


def reply_from(node_id: int, content: RecordDict) -> Message:
    """A train reply from `node_id` carrying `content`."""
    instruction = Message(
        RecordDict(), dst_node_id=node_id, message_type=MessageType.TRAIN
    )
    return Message(content, reply_to=instruction)


def sample_metadata(epochs: int = 2) -> TrainProcessMetadata:
    """A valid report with `epochs` decreasing losses."""
    return TrainProcessMetadata(
        training_time=12.5,
        converged=True,
        training_losses=[1.0 / (epoch + 1) for epoch in range(epochs)],
    )


def train_content(
    arrays: ArrayRecord, num_examples: int, meta: TrainProcessMetadata | None
) -> RecordDict:
    """What the ClientApp's train function replies, optionally without metadata."""
    content = RecordDict(
        {
            "arrays": arrays,
            "metrics": MetricRecord({"train_loss": 0.5, "num-examples": num_examples}),
        }
    )
    if meta is not None:
        content[codec.RECORD_KEY] = codec.to_config_record(meta)
    return content
