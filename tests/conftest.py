"""Shared helpers: Flower reply Messages built the way a SuperLink delivers them."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import (
    ArrayRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.simulation import run_simulation
from flwr.supercore.task_identity import TaskIdentity
from hypothesis import settings
from PIL import Image

from flower_app.app import server_app
from flower_app.protocol import codec
from flower_app.reporting import report
from flower_app.server.strategy import CustomFedAdagrad

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
"""`HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py` runs 10,000 examples a test."""

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


def node_context(node_id: int, partition_id: int) -> Context:
    """A SuperNode's context in a 10-partition simulation, run config empty."""
    return Context(
        run_id=1,
        node_id=node_id,
        node_config={"partition-id": partition_id, "num-partitions": 10},
        state=RecordDict(),
        run_config={},
    )


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


Simulate = Callable[[ClientApp, int], CustomFedAdagrad]


@pytest.fixture
def simulate(monkeypatch: pytest.MonkeyPatch) -> Simulate:
    """Run the real ServerApp in-process against `client` on `nodes` SuperNodes.

    Returns the strategy the ServerApp used, to inspect its round reports.
    """

    def run(client: ClientApp, nodes: int) -> CustomFedAdagrad:
        strategies: list[CustomFedAdagrad] = []

        class Recorded(CustomFedAdagrad):
            def __init__(self, **kwargs: object) -> None:
                super().__init__(**kwargs)  # type: ignore[arg-type]
                strategies.append(self)

        monkeypatch.setattr(server_app, "CustomFedAdagrad", Recorded)
        run_simulation(
            server_app=server_app.app,
            client_app=client,
            num_supernodes=nodes,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
        )
        (strategy,) = strategies
        return strategy

    return run


def assert_report_plots(run_dir: Path) -> None:
    """The four plots exist as 800 x 450 PNG images."""
    for name in report.PLOTS:
        with Image.open(run_dir / report.REPORT_FOLDER / name) as image:
            assert (image.format, image.size) == ("PNG", (800, 450)), name
