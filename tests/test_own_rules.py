"""A user's own type with protovalidate's common rules, through the whole pipeline.

`acme.fleet.v1.ClientReport` (tests/fixtures) has string lengths and a
pattern, an enum with `defined_only`, a bounded list, a map with rules on
its keys and values, a required oneof and a CEL rule across two fields.
Generated as a user generates it (`flower-meta generate`), it goes through
the mod on a node, the strategy, the metadata log, `flower-meta decode` and
`report`, and the TypeScript and C++ readers (with the run folder's own
schema.binpb). A report that breaks each rule is refused on the node before
it is sent and, forged past the mod, by the server, both with
protovalidate's rule id and field path.
"""

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

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
from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.protocol.rules import MetadataDecodeError
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from flower_meta.v1.metadata_pb2 import Rejection
from tests.helpers import FIXTURES, node_context, require
from tests.testing import (
    VENV_BIN,
    NodeList,
    answer,
    as_in_a_server_app,
    delivered,
)

FLEET = "acme/fleet/v1/fleet.proto"
URL = "type.googleapis.com/acme.fleet.v1.ClientReport"
FLOWER_META = [str(VENV_BIN / "flower-meta")]
GOOD: dict[str, Any] = {
    "device": "cpu-0",
    "accelerator": 1,
    "grad_norms": [0.5, 0.25],
    "layer_seconds": {"conv": 0.125, "head": 0.0625},
    "dataset": "digits",
    "peak_memory": 50.0,
    "memory_budget": 100.0,
}
"""A report that keeps every rule."""
BROKEN: list[tuple[dict[str, Any], tuple[str, str, str]]] = [
    # (what is changed, the refusal: reason, field path, rule id)
    ({"device": "d" * 17}, ("out_of_range", "device", "string.max_len")),
    ({"device": "CPU-0"}, ("out_of_range", "device", "string.pattern")),
    ({"accelerator": 7}, ("out_of_range", "accelerator", "enum.defined_only")),
    ({"grad_norms": [0.5] * 65}, ("bad_grad_norm", "grad_norms", "repeated.max_items")),
    ({"grad_norms": [0.5, -1.0]}, ("bad_grad_norm", "grad_norms[1]", "double.gte")),
    (
        {"layer_seconds": {"conv": -0.5}},
        ("out_of_range", 'layer_seconds["conv"]', "double.gte"),
    ),
    (
        {"layer_seconds": {"": 0.5}},
        ("out_of_range", 'layer_seconds[""]', "string.min_len"),
    ),
    ({"dataset": None}, ("missing_field", "data_source", "required")),
    ({"peak_memory": 200.0}, ("out_of_range", "", "peak_within_budget")),
]
WORDS = {
    "string.max_len": "device: must be at most 16 characters",
    "string.pattern": "device: does not match regex pattern `^[a-z0-9][a-z0-9-]*$`",
    "enum.defined_only": "accelerator: value must be one of the defined enum values",
    "repeated.max_items": "grad_norms: must contain no more than 64 item(s)",
    "double.gte": None,  # two fields: checked in place
    "string.min_len": 'layer_seconds[""]: key must be at least 1 characters',
    "required": "data_source: exactly one field is required in oneof",
    "peak_within_budget": "peak_memory must not exceed memory_budget",
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """acme.fleet.v1's Python, generated as a user generates it."""
    out = tmp_path_factory.mktemp("fleet")
    done = subprocess.run(
        [str(VENV_BIN / "flower-meta"), "generate", "-I", str(FIXTURES), FLEET],
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("acme.fleet.v1.fleet_pb2")
    finally:
        sys.path.remove(str(out))


def _fields(change: dict[str, Any]) -> dict[str, Any]:
    fields = GOOD | change
    if fields.get("dataset") is None:
        fields.pop("dataset", None)
    return fields


def _client(fleet: ModuleType, fields: dict[str, Any]) -> ClientApp:
    app = ClientApp(mods=[MetadataMod(train=fleet.ClientReport, evaluate=None)])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        report(**fields)
        arrays = ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))})
        metrics = MetricRecord({"num-examples": 8})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    return app


def _strategy(fleet: ModuleType, folder: Path, nodes: int) -> MetadataStrategy[FedAvg]:
    options = MetadataOptions(train_type=fleet.ClientReport, evaluate_type=None)
    return MetadataStrategy(
        FedAvg(min_available_nodes=nodes, min_train_nodes=nodes),
        metadata=options,
        metadata_log=MetadataLog(folder, types=options.types),
    )


def _instructions(strategy: MetadataStrategy[FedAvg], nodes: int) -> list[Message]:
    return sorted(
        delivered(
            strategy.configure_train(
                1,
                ArrayRecord({"w": Array(np.zeros(2, dtype=np.float32))}),
                ConfigRecord(),
                NodeList(list(range(1, nodes + 1))),  # type: ignore[arg-type]
            )
        ),
        key=lambda message: message.metadata.dst_node_id,
    )


@pytest.fixture(scope="module")
def run_folder(fleet: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A round of two good reports, one node-refused and one server-refused."""
    as_in_a_server_app()  # before the function-scoped autouse fixture does
    folder = tmp_path_factory.mktemp("fleet-run")
    strategy = _strategy(fleet, folder, 4)
    sent = _instructions(strategy, 4)
    replies = [
        _client(fleet, _fields({}))(sent[0], node_context(1, 0)),
        _client(fleet, _fields({"device": "other-1"}))(sent[1], node_context(2, 1)),
        _client(fleet, _fields({"accelerator": 7}))(sent[2], node_context(3, 2)),
        answer(
            sent[3],
            _content(
                fleet.ClientReport(wall_seconds=2.0, **_fields({"device": "UPPER"}))
            ),
        ),
    ]
    strategy.aggregate_train(1, replies)
    assert strategy.metadata_log is not None
    strategy.metadata_log.close()
    return folder


def _content(meta: Any) -> RecordDict:
    """A train reply that skips the mod: its metadata as the node wrote it."""
    return RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.ones(2, dtype=np.float32))}),
            "metrics": MetricRecord({"num-examples": 8}),
            "train_metadata": ConfigRecord(
                {"type_url": URL, "meta": meta.SerializeToString()}
            ),
        }
    )


@pytest.mark.parametrize(("change", "expected"), BROKEN, ids=lambda v: str(v)[:40])
def test_a_broken_rule_is_refused_on_the_node_before_sending(
    fleet: ModuleType, change: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    instruction = delivered(
        [Message(RecordDict(), dst_node_id=1, message_type="train")]
    )
    reply = _client(fleet, _fields(change))(instruction[0], node_context(1, 0))
    record = reply.content["train_metadata"]
    assert record["type_url"] == codec.REFUSAL_TYPE_URL  # the payload stayed home
    with pytest.raises(MetadataDecodeError) as refused:
        codec.from_message(fleet.ClientReport, reply, "train_metadata")
    got = refused.value
    assert (got.reason, got.field_path, got.rule_id) == expected
    assert got.detail.startswith("refused by the node: ")
    if WORDS[expected[2]] is not None:
        assert got.detail == f"refused by the node: {WORDS[expected[2]]}"


@pytest.mark.parametrize(("change", "expected"), BROKEN, ids=lambda v: str(v)[:40])
def test_a_broken_rule_is_refused_by_the_server_too(
    fleet: ModuleType,
    change: dict[str, Any],
    expected: tuple[str, str, str],
    tmp_path: Path,
) -> None:
    strategy = _strategy(fleet, tmp_path, 1)
    (sent,) = _instructions(strategy, 1)
    forged = fleet.ClientReport(wall_seconds=1.0, **_fields(change))
    strategy.aggregate_train(1, [answer(sent, _content(forged))])
    assert strategy.metadata_log is not None
    strategy.metadata_log.close()
    (record,) = read_log(tmp_path / BINARY_LOG)
    rejection = record.rejected
    assert (rejection.reason, rejection.field_path, rejection.rule_id) == expected
    assert rejection.payload_size == forged.ByteSize()


def test_good_reports_are_accepted_logged_and_read_back(
    fleet: ModuleType, run_folder: Path
) -> None:
    records = list(read_log(run_folder / BINARY_LOG))
    outcomes = {r.node_id: r.WhichOneof("outcome") for r in records}
    assert outcomes == {
        1: "accepted_other",
        2: "accepted_other",
        3: "rejected",
        4: "rejected",
    }
    first = fleet.ClientReport()
    assert records[0].accepted_other.Unpack(first)
    assert first.layer_seconds["conv"] == 0.125
    assert first.WhichOneof("data_source") == "dataset"
    by_node = {r.node_id: r.rejected for r in records if r.HasField("rejected")}
    assert by_node[3].rule_id == "enum.defined_only"  # refused by the node
    assert by_node[3].detail.startswith("refused by the node: ")
    assert (by_node[4].field_path, by_node[4].rule_id) == ("device", "string.pattern")

    command = str(VENV_BIN / "flower-meta")
    decoded = subprocess.run(
        [command, "decode", "--log", str(run_folder)], capture_output=True, text=True
    )
    assert decoded.returncode == 0, decoded.stderr
    line = decoded.stdout.splitlines()[0]
    assert f'"@type":"{URL}"' in line
    assert '"layerSeconds":{"conv":0.125,"head":0.0625}' in line
    assert '"accelerator":"ACCELERATOR_CPU"' in line
    reported = subprocess.run(
        [command, "report", str(run_folder)], capture_output=True, text=True
    )
    assert reported.returncode == 0, reported.stderr
    assert (run_folder / "report" / "report.html").is_file()


def _payloads(fleet: ModuleType, folder: Path) -> list[tuple[Path, str]]:
    """The good report and each broken one as payload files, with Python's verdict."""
    found = []
    changes = [{}, *(change for change, _ in BROKEN)]
    for index, change in enumerate(changes):
        message = fleet.ClientReport(wall_seconds=1.5, **_fields(change))
        path = folder / f"case{index}.binpb"
        path.write_bytes(message.SerializeToString())
        try:
            codec.decode(fleet.ClientReport, URL, path.read_bytes())
        except MetadataDecodeError as err:
            found.append((path, f"rejected {err}\n"))
        else:
            found.append((path, to_canonical_json(message) + "\n"))
    return found


@pytest.fixture(params=["typescript", "cpp"])
def reader(
    request: pytest.FixtureRequest, typescript_build: Path, cpp_build: Path
) -> list[str]:
    if request.param == "cpp":
        return [str(cpp_build / "consumer")]
    node = require("node", "Node.js 20+ (Debian: nodejs)")
    return [node, str(typescript_build / "consumer.js")]


def test_the_other_readers_read_it_as_python_does(
    fleet: ModuleType, run_folder: Path, reader: list[str], tmp_path: Path
) -> None:
    """With the run folder's schema.binpb: the same JSON, the same refusals
    (the C++ reader's own subset of protovalidate's rules and of CEL)."""
    schema = str(run_folder / "schema.binpb")
    for path, expected in _payloads(fleet, tmp_path):
        done = subprocess.run(
            [*reader, "--schema", schema, URL, str(path)],
            capture_output=True,
            text=True,
        )
        assert done.stdout == expected, done.stderr
        assert done.returncode == (0 if expected.startswith("{") else 1)


def test_what_leaves_a_node_that_refuses_its_report_holds_no_data_of_it(
    fleet: ModuleType,
) -> None:
    """The reply carries the rule, never a value: not the device's name."""
    secret = "Secret-Host-7"  # breaks the pattern: capitals
    instruction = delivered(
        [Message(RecordDict(), dst_node_id=1, message_type="train")]
    )
    reply = _client(fleet, _fields({"device": secret, "layer_seconds": {"x": -2.5}}))(
        instruction[0], node_context(1, 0)
    )
    record = reply.content["train_metadata"]
    sent = b"".join(
        value if isinstance(value, bytes) else str(value).encode()
        for value in record.values()
    )
    assert secret.encode() not in sent
    assert b"-2.5" not in sent
    rejection = Rejection.FromString(record["meta"])  # type: ignore[arg-type]
    assert rejection.detail == (
        "device: does not match regex pattern `^[a-z0-9][a-z0-9-]*$`"
    )
    assert rejection.payload == b""
    assert rejection.payload_size > 0
    assert len(rejection.payload_sha256) == 32


def test_a_runs_payloads_taken_out_read_alike_in_every_reader(
    run_folder: Path, reader: list[str], tmp_path: Path
) -> None:
    """`flower-meta decode --log RUN --payloads OUT`, then each reader on each
    file with its type URL: the message the log holds, as Python prints it."""
    out = tmp_path / "payloads"
    taken = subprocess.run(
        [*FLOWER_META, "decode", "--log", str(run_folder), "--payloads", str(out)],
        capture_output=True,
        text=True,
    )
    assert (taken.returncode, taken.stderr) == (0, "")
    logged = subprocess.run(
        [*FLOWER_META, "decode", "--log", str(run_folder)],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    accepted = {
        (record["serverRound"], record["nodeId"]): record["acceptedOther"]
        for record in map(json.loads, logged)
        if "acceptedOther" in record
    }
    listed = [line.split(" ") for line in taken.stdout.splitlines()]
    assert len(listed) == len(accepted) == 2
    for type_url, path in listed:
        at, node, stage = Path(path).stem.split("-")
        assert (type_url, stage) == (URL, "train")
        assert Path(path).with_suffix(".type_url").read_text() == f"{URL}\n"
        expected = dict(accepted[int(at), node])
        assert expected.pop("@type") == URL
        done = subprocess.run(
            [*reader, "--schema", str(run_folder / "schema.binpb"), type_url, path],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == expected
        python = subprocess.run(
            [
                *FLOWER_META,
                "decode",
                "--schema",
                str(run_folder),
                "--type-url",
                URL,
                *[path],
            ],
            capture_output=True,
            text=True,
        )
        assert done.stdout == python.stdout  # byte for byte
