"""A user's own message type, from a .proto of their own, through the whole pipeline.

The type is generated at test time from tests/fixtures, registered with the
mod and the strategy, and read back by `flower-meta decode` and `report`
from the run folder's own schema.binpb.
"""

import importlib
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from flower_app.client.mod import MetadataMod, report
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.protocol.rules import MetadataDecodeError
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from tests.helpers import compile_fixture, node_context
from tests.testing import VENV_BIN, NodeList, answer, delivered

URL = "type.googleapis.com/acme.stats.v1.ClientStats"


@pytest.fixture(scope="module")
def stats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """acme.stats.v1's generated Python, importable."""
    out = tmp_path_factory.mktemp("acme")
    compile_fixture(f"--python_out={out}")
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("acme.stats.v1.stats_pb2")
    finally:
        sys.path.remove(str(out))


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def _client(stats: ModuleType, norms: list[float]) -> ClientApp:
    app = ClientApp(
        mods=[MetadataMod(train=stats.ClientStats, evaluate=None, clock=Ticks())]
    )

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        report(examples=32, grad_norms=norms, device="cpu")
        arrays = ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))})
        metrics = MetricRecord({"num-examples": 32})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    return app


def _round(
    stats: ModuleType, folder: Path, norms: list[list[float]]
) -> MetadataStrategy[FedAvg]:
    options = MetadataOptions(train_type=stats.ClientStats, evaluate_type=None)
    strategy = MetadataStrategy(
        FedAvg(min_available_nodes=len(norms), min_train_nodes=len(norms)),
        metadata=options,
        metadata_log=MetadataLog(folder, types=options.types),
    )
    sent = sorted(
        delivered(
            strategy.configure_train(
                1,
                ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
                ConfigRecord(),
                NodeList(list(range(1, len(norms) + 1))),  # type: ignore[arg-type]
            )
        ),
        key=lambda message: message.metadata.dst_node_id,
    )
    replies = [
        _client(stats, node_norms)(
            message, node_context(message.metadata.dst_node_id, 0)
        )
        for message, node_norms in zip(sent, norms, strict=True)
    ]
    strategy.aggregate_train(1, replies)
    assert strategy.metadata_log is not None
    strategy.metadata_log.close()
    return strategy


def test_the_mod_sends_it_and_the_strategy_reads_logs_and_summarises_it(
    stats: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flwr"):
        strategy = _round(stats, tmp_path, [[0.5, 0.25], [0.75, 0.5]])
    report_ = strategy.reports[1]
    assert report_.counts() == "2 accepted, 0 rejected, 0 failed"
    assert report_.accepted[1] == stats.ClientStats(
        wall_seconds=1.5, examples=32, grad_norms=[0.5, 0.25], device="cpu"
    )
    assert (
        "round 1 node 1: {'wall_seconds': 1.5, 'examples': 32, 'grad_norms': "
        "{'epoch_1': 0.5, 'epoch_2': 0.25}, 'peak_memory': None, 'device': 'cpu'}"
    ) in caplog.text
    assert "wall_seconds (s)" in caplog.text
    assert "stragglers (> 2 x median wall_seconds)" in caplog.text
    (record, _) = read_log(tmp_path / BINARY_LOG)
    assert record.accepted_other.type_url == URL
    unpacked = stats.ClientStats()
    assert record.accepted_other.Unpack(unpacked)
    assert unpacked == report_.accepted[1]


def test_its_rules_hold_on_both_sides(stats: ModuleType, tmp_path: Path) -> None:
    reply = _client(stats, [-1.0])(
        delivered([Message(RecordDict(), dst_node_id=1, message_type="train")])[0],
        node_context(1, 0),
    )
    with pytest.raises(MetadataDecodeError) as caught:
        codec.from_message(stats.ClientStats, reply, "train_metadata")
    assert str(caught.value) == (  # the rule leaves the node, not the value
        "bad_grad_norm: refused by the node: grad_norms[0]: must be finite and >= 0"
    )

    strategy = MetadataStrategy(
        FedAvg(), metadata=MetadataOptions(train_type=stats.ClientStats)
    )
    strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = 1
    (sent,) = delivered(
        strategy.configure_train(
            1,
            ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
            ConfigRecord(),
            NodeList([1]),  # type: ignore[arg-type]
        )
    )
    forged = stats.ClientStats(wall_seconds=1.0, examples=0)
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
            "metrics": MetricRecord({"num-examples": 1}),
            "train_metadata": ConfigRecord(
                {"type_url": URL, "meta": forged.SerializeToString()}
            ),
        }
    )
    strategy.aggregate_train(1, [answer(sent, content)])
    assert (
        strategy.reports[1].rejected[1]
        == "out_of_range: examples: must be >= 1, got 0 (rule uint32.gte)"
    )


def test_the_cli_reads_it_from_the_run_folder(
    stats: ModuleType, tmp_path: Path
) -> None:
    _round(stats, tmp_path, [[0.5, 0.25], [0.75, 0.5]])
    command = str(VENV_BIN / "flower-meta")
    decoded = subprocess.run(
        [command, "decode", "--log", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    first = decoded.stdout.splitlines()[0]
    assert f'"@type":"{URL}"' in first
    assert '"gradNorms":[0.5,0.25]' in first
    payload = tmp_path / "payload.binpb"
    payload.write_bytes(
        stats.ClientStats(wall_seconds=2.0, examples=3).SerializeToString()
    )
    one = subprocess.run(
        [command, "decode", str(payload), "--type-url", URL, "--schema", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert one.stdout == '{"examples":3,"wallSeconds":2}\n'
    subprocess.run([command, "report", str(tmp_path)], capture_output=True, check=True)
    plots = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert plots == ["train_grad_norms.png"]
    page = (tmp_path / "report" / "report.html").read_text()
    for same in ("wall_seconds was 1.5 s", "examples was 32"):  # both clients
        assert f"train stage: {same} for every client in every round" in page
    assert "train stage: peak_memory: no client reported it" in page
