"""The README's worked example, performed in a copy of the project.

proto/README.md walks one edit: add `num_examples` to TrainProcessMetadata
(its text is taken from there), regenerate, and nothing else by hand. As a
user would take the steps:

1. the README's edit as written (at the next free field number) and the one
   ClientApp line that fills the field, regenerated: lint, the
   breaking-change gate and the whole fast suite pass;
2. Python, TypeScript and C++ refuse 0 naming the field and the rule, and
   accept a report without the field (an older ClientApp's); the log line,
   metadata.jsonl, `flower-meta decode`, the reference page and the JSON
   Schema show the field, `flower-meta report` plots it; and this
   checkout's older build reads the newer log by name;
3. the README's later step, `required` added: every reader refuses a
   report without the field.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import ROOT, TYPESCRIPT, buf, require
from tests.test_breaking import next_free_number
from tests.testing import VENV_BIN

pytestmark = pytest.mark.e2e
README = (ROOT / "proto" / "README.md").read_text()
SCHEMA = Path("proto/flower_meta/v1/metadata.proto")
CLIENT = Path("flower_app/app/client_app.py")
URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
FREE = next_free_number(TrainProcessMetadata.DESCRIPTOR)


def _readme_block(language: str, indent: str, second: bool = False) -> str:
    """The worked example's (first or second) block in `language`, indented."""
    section = README.split("## Evolving the schema", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)\n *```", section, flags=re.DOTALL)
    return textwrap.indent(textwrap.dedent(blocks[int(second)]), indent) + "\n"


def _run(
    copy: Path, *command: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command in the copy, with the copy first on the import path."""
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{copy}{os.pathsep}{copy / 'generated' / 'python'}",
    }
    result = subprocess.run(
        command, cwd=copy, env=env, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def _python(copy: Path, code: str) -> str:
    return _run(copy, sys.executable, "-c", code).stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory, node_modules: Path) -> Path:
    """The committed project, copied (without .venv), npm packages linked."""
    folder = tmp_path_factory.mktemp("evolution") / "project"
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    (folder / node_modules.relative_to(ROOT)).symlink_to(node_modules)
    found = _python(
        folder, "import flower_app, flower_meta; print(flower_meta.__path__[0])"
    )
    assert found.strip().startswith(str(folder)), found
    return folder


def _edit_schema(copy: Path, field: str) -> None:
    """Add `field` after training_losses in the committed schema, in the copy."""
    edited, count = re.subn(
        r"(  repeated double training_losses = 3 \[.*?\n  \];\n)",
        lambda m: m.group(1) + "\n" + field,
        (ROOT / SCHEMA).read_text(),
        count=1,
        flags=re.DOTALL,
    )
    assert count == 1
    (copy / SCHEMA).write_text(edited)


def _regenerate(copy: Path) -> None:
    for args in (
        ["generate"],
        ["generate", "--template", "examples/typescript/buf.gen.yaml"],
    ):
        result = buf(*args, cwd=copy)
        assert result.returncode == 0, result.stderr
    for args in (["lint"], ["breaking", "--against", "proto/released.binpb"]):
        result = buf(*args, cwd=copy)
        assert result.returncode == 0, result.stdout + result.stderr


FIELD = _readme_block("proto", "  ").replace(" = 4 ", f" = {FREE} ")
REQUIRED = _readme_block("proto", "", second=True)


def test_1_the_readme_steps_pass_lint_the_gate_and_the_fast_suite(
    copy: Path,
) -> None:
    assert "required" not in FIELD  # old nodes may omit it
    _edit_schema(copy, FIELD)
    client = copy / CLIENT
    line = _readme_block("python", "    ")
    source = client.read_text()
    anchor = '    metrics = MetricRecord({"train_loss"'
    assert source.count(anchor) == 1
    client.write_text(source.replace(anchor, line + anchor))
    _regenerate(copy)
    result = _run(
        copy,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-m",
        "not e2e",
        "-p",
        "no:cacheprovider",
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert (
        "num_examples"
        in (copy / "generated/python/flower_meta/v1/metadata_pb2.pyi").read_text()
    )


CHECK = """
from flower_app.protocol import codec
from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.rules import MetadataDecodeError
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata as T
url = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
for fields in ({"num_examples": 0}, {}):
    try:
        meta = codec.decode(T, url, T(training_time=1.0, **fields).SerializeToString())
    except MetadataDecodeError as err:
        print(err)
    else:
        print(to_canonical_json(meta))
"""


def _readers(copy: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Build the TypeScript and C++ readers of the copy."""
    require("cmake", "cmake (Debian: cmake)")
    require("protoc", "Debian's protobuf-compiler and libprotobuf-dev")
    typescript = copy / "examples" / "typescript"
    _run(copy, str(TYPESCRIPT / "node_modules" / ".bin" / "tsc"), "-p", str(typescript))
    build = tmp_path / "cpp"
    python = f"-DFLOWER_META_PYTHON={sys.executable}"
    _run(copy, "cmake", "-S", "examples/cpp", "-B", str(build), python)
    _run(copy, "cmake", "--build", str(build), "-j2")
    return {
        "typescript": [
            "node",
            str(typescript / "dist/examples/typescript/src/consumer.js"),
        ],
        "cpp": [str(build / "consumer")],
    }


def _verdicts(copy: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Each reader's output on a count of 0 and on no count: Python first."""
    found = {"python": _python(copy, CHECK).splitlines()}
    for language, command in _readers(copy, tmp_path).items():
        found[language] = []
        for fields in ({"num_examples": 0}, {}):
            payload = tmp_path / "payload.binpb"
            _python(copy, WRITE_PAYLOAD % (str(payload), fields))
            result = _run(copy, *command, URL, str(payload), check=False)
            found[language].append(result.stdout.strip().removeprefix("rejected "))
    return found


def test_2_the_field_is_enforced_and_shown_everywhere(
    copy: Path, tmp_path: Path
) -> None:
    refused = "out_of_range: num_examples: must be >= 1, got 0"
    absent = '{"trainingTime":1}'  # an older ClientApp's report: accepted
    assert _verdicts(copy, tmp_path) == {
        "python": [refused, absent],
        "typescript": [refused, absent],
        "cpp": [refused, absent],
    }

    docs = (copy / "generated/docs/flower_meta/v1/metadata.md").read_text()
    assert f"| `num_examples` | {FREE} | `optional uint32` | examples | >= 1 |" in docs
    json_schema = json.loads(
        (
            copy
            / "generated/jsonschema/flower_meta.v1.TrainProcessMetadata.schema.json"
        ).read_text()
    )
    assert json_schema["properties"]["numExamples"]["minimum"] == 1
    assert "numExamples" not in json_schema.get("required", [])

    run = tmp_path / "run"
    log_line = _python(copy, WRITE_RUN % str(run))
    assert "'num_examples': 115" in log_line
    assert '"numExamples":115' in (run / "metadata.jsonl").read_text()
    decoded = _run(
        copy,
        sys.executable,
        "-m",
        "flower_app.cli",
        "decode",
        "--log",
        str(run),
    )
    assert '"numExamples":115' in decoded.stdout
    _run(copy, sys.executable, "-m", "flower_app.cli", "report", str(run))
    assert SHOWN in (run / "report" / "report.html").read_text()

    # This checkout's build predates the field: it reads it from schema.binpb.
    older = subprocess.run(
        [str(VENV_BIN / "flower-meta"), "decode", "--log", str(run)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"numExamples":115' in older.stdout
    shutil.rmtree(run / "report")
    subprocess.run(
        [str(VENV_BIN / "flower-meta"), "report", str(run)],
        check=True,
        capture_output=True,
    )
    assert SHOWN in (run / "report" / "report.html").read_text()


def test_3_required_added_later_refuses_a_report_without_it(
    copy: Path, tmp_path: Path
) -> None:
    opening = f"  optional uint32 num_examples = {FREE} [\n"
    assert FIELD.count(opening) == 1
    _edit_schema(copy, FIELD.replace(opening, opening + "  " + REQUIRED))
    _regenerate(copy)
    refused = "out_of_range: num_examples: must be >= 1, got 0"
    missing = "missing_field: num_examples: missing; it is required"
    assert _verdicts(copy, tmp_path) == {
        "python": [refused, missing],
        "typescript": [refused, missing],
        "cpp": [refused, missing],
    }


SHOWN = "train stage: num_examples was 115 examples for every client in every round"
"""How report.html shows the new field of the one reply WRITE_RUN logs."""


WRITE_PAYLOAD = """
from pathlib import Path
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata as T
Path(%r).write_bytes(T(training_time=1.0, **%r).SerializeToString())
"""
WRITE_RUN = """
import logging
import sys
import textwrap
from pathlib import Path
from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp.strategy import FedAdagrad
from flower_app.app import client_app, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import MetadataLog
from flower_app.server.strategy import MetadataStrategy
from tests.testing import NodeList, as_in_a_server_app, delivered
from tests.helpers import node_context

as_in_a_server_app()
logging.getLogger("flwr").handlers = [logging.StreamHandler(sys.stdout)]
settings = Settings.from_run_config(pyproject_run_config())
strategy = MetadataStrategy(FedAdagrad(), metadata_log=MetadataLog(Path(%r)))
strategy.strategy.min_available_nodes = strategy.strategy.min_train_nodes = 1
(sent,) = delivered(strategy.configure_train(
    1, __import__("flwr.app").app.ArrayRecord(task.Net(64, 10).state_dict()),
    codec.to_config_record(settings.train_instructions), NodeList([3])))
reply = client_app.app(sent, node_context(3, partition_id=1))
strategy.aggregate_train(1, [reply])
strategy.metadata_log.close()
"""
