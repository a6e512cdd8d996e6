"""The library as an adopter installs it: the wheel alone, no ML stack.

A fresh venv (not seeing this checkout or its venv) gets the built wheel
with its `codegen` extra and Flower's simulation, nothing else: no torch,
no scikit-learn, no matplotlib. In it, examples/numpy-metadata compiles
its own schema with `flower-meta generate` (importing the wheel's
options.proto), runs in a real simulation behind `MetadataRun`, and its run
folder decodes with the wheel's `flower-meta`.
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, build_wheel
from tests.testing import VENV_BIN, Flower, flower_env

EXAMPLE = ROOT / "examples" / "numpy-metadata"
NODES = 3
ROUNDS = 3
EPOCHS = 4
LEARNING_RATE = 0.1
ABSENT = ("torch", "sklearn", "matplotlib", "mlflow")
pytestmark = pytest.mark.e2e


def _first_round_mse(partition_id: int) -> list[float]:
    """Gradient descent from zero weights on a node's data, recomputed here."""
    rng = np.random.default_rng(partition_id)
    x = rng.normal(size=(64, 4))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=64)
    w, found = np.zeros(4), []
    for _ in range(EPOCHS):
        w = w - LEARNING_RATE * 2 * x.T @ (x @ w - y) / 64
        found.append(float(np.mean((x @ w - y) ** 2)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    return build_wheel(folder)


def test_the_wheel_holds_the_library_and_the_schema_not_the_example(
    wheel: Path,
) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "flower_meta/v1/options.proto" in names
    assert "flower_meta/v1/metadata.proto" in names
    assert "flower_meta/v1/metadata_pb2.pyi" in names
    assert {"flower_app/py.typed", "flower_meta/py.typed"} <= set(names)
    assert "flower_app/run.py" in names
    assert not [n for n in names if n.startswith("flower_app/app/")]
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    core = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    extras = {
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" in line
    }
    assert {  # one tracker, or both
        "mlflow>=3.5; extra == 'mlflow'",
        "tensorboard>=2.16; extra == 'tensorboard'",
        "mlflow>=3.5; extra == 'trackers'",
        "tensorboard>=2.16; extra == 'trackers'",
    } <= {e.replace('"', "'") for e in extras}
    assert not [e for e in extras if "mlflow" in e and "'tensorboard'" in e]
    assert sorted(core) == [
        "flwr<2,>=1.42",
        "numpy>=1.26",
        "orjson>=3.10",
        "protobuf<7,>=6.33.5",
        "protovalidate<3,>=2.1",
        "rich>=13",
    ]


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    bin_dir = folder / "bin"
    subprocess.run(
        [
            str(bin_dir / "pip"),
            "install",
            "-q",
            f"{wheel}[codegen]",
            # The simulation runtime; the example's only other dependency.
            "flwr[simulation]==1.42.0",
        ],
        check=True,
    )
    return bin_dir


def _python(bin_dir: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "python"), "-c", code], cwd=cwd, capture_output=True, text=True
    )


def test_no_ml_stack_is_installed_and_the_library_imports(
    venv_bin: Path, tmp_path: Path
) -> None:
    for module in ABSENT:
        probe = _python(venv_bin, f"import {module}", tmp_path)
        assert f"No module named '{module}'" in probe.stderr, module
    loaded = _python(
        venv_bin,
        "import sys; before = list(sys.path); import flower_app; "
        "flower_app.MetadataRun; assert sys.path == before, sys.path; "
        "print(flower_app.__file__)",
        tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "site-packages/flower_app/__init__.py" in loaded.stdout


def test_a_numpy_app_with_its_own_type_runs_and_its_run_folder_decodes(
    venv_bin: Path, tmp_path: Path
) -> None:
    app = tmp_path / "numpy-metadata"
    shutil.copytree(EXAMPLE, app)
    client = app / "numpy_metadata" / "client_app.py"
    anchor = "    meta.solver = SOLVER\n"
    assert anchor in client.read_text()
    client.write_text(  # one node breaks a rule (max_len 32) in round 2
        client.read_text().replace(anchor, anchor + BREAK_A_RULE)
    )
    generate = subprocess.run(
        [
            str(venv_bin / "flower-meta"),
            "generate",
            "-I",
            "proto",
            "--docs-out",
            "docs",
            "proto/linreg/v1/linreg.proto",
        ],
        cwd=app,
        capture_output=True,
        text=True,
    )
    assert generate.returncode == 0, generate.stderr
    assert (app / "linreg" / "v1" / "linreg_pb2.py").is_file()
    assert (app / "linreg" / "v1" / "linreg_pb2.pyi").is_file()
    assert (app / "buf" / "validate" / "validate_pb2.py").is_file()  # it imports
    assert "squared target units" in (app / "docs/linreg/v1/linreg.md").read_text()

    home = tmp_path / "flwr-home"
    home.mkdir()
    flower = Flower(home, flower_env(home, venv_bin))
    try:
        process = flower.run_streaming(
            app, "--federation-config", f"num-supernodes={NODES}"
        )
        log, _ = process.communicate(timeout=900)
    finally:
        assert not flower.stop_all(), "processes of this run survived"
    assert process.returncode == 0, log
    for server_round in range(1, ROUNDS + 1):
        refused = int(server_round == 2)
        summary = (
            f"round {server_round} metadata: {NODES - refused} accepted, "
            f"{refused} rejected, 0 failed"
        )
        assert summary in log, log[-3000:]
    assert "report not written: matplotlib is not installed: pip install " in log
    assert "'flower-meta-protocol[report]'" in log

    (run_dir,) = (home / "flower-meta-runs").iterdir()
    decode = subprocess.run(
        [str(venv_bin / "flower-meta"), "decode", "--log", str(run_dir)],
        capture_output=True,
        text=True,
    )
    assert decode.returncode == 0, decode.stderr
    lines = [json.loads(line) for line in decode.stdout.splitlines()]
    assert len(lines) == NODES * ROUNDS
    assert {line["serverRound"] for line in lines} == set(range(1, ROUNDS + 1))
    (refusal,) = [line["rejected"] for line in lines if "rejected" in line]
    assert set(refusal) == {
        "reason",
        "detail",
        "typeUrl",
        "recordKey",
        "payloadSize",
        "payloadSha256",
        "fieldPath",
        "ruleId",
    }  # no payload bytes
    assert (refusal["fieldPath"], refusal["ruleId"]) == ("solver", "string.max_len")
    assert TOO_LONG not in decode.stdout  # nor the value, anywhere
    lines = [line for line in lines if "rejected" not in line]
    for line in lines:
        meta = line["acceptedOther"]
        assert meta["@type"] == "type.googleapis.com/linreg.v1.RegressionTrainMetadata"
        assert len(meta["mse"]) == EPOCHS
        assert meta["examples"] == 64
        assert meta["trainingTime"] > 0
        assert meta["weightNorm"] > 0
        assert meta["solver"] == "gradient-descent"
    assert (run_dir / "metadata.jsonl").read_text() == decode.stdout
    executable = [
        p for p in run_dir.rglob("*") if p.is_file() and p.stat().st_mode & 0o111
    ]
    assert not executable
    first = sorted(line["acceptedOther"]["mse"] for line in lines[:NODES])
    expected = sorted(_first_round_mse(p) for p in range(NODES))
    for got, want in zip(first, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12)

    report = subprocess.run(
        [str(venv_bin / "flower-meta"), "report", str(run_dir)],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 1
    assert report.stderr.strip().splitlines() == [
        "flower-meta: plots and report.html not written: matplotlib is not "
        "installed: pip install 'flower-meta-protocol[report]'"
    ]
    assert "train: RegressionTrainMetadata, by round" in report.stdout
    assert '"gradient-descent"' in report.stdout  # the same everywhere
    # With the report extra (this checkout's venv), the page shows it too.
    subprocess.run(
        [str(VENV_BIN / "flower-meta"), "report", str(run_dir)],
        check=True,
        capture_output=True,
    )
    page = (run_dir / "report" / "report.html").read_text()
    assert (
        "train stage: solver was &quot;gradient-descent&quot; for every client "
        "in every round" in page
    )
    assert "string.max_len" in page  # the refusal, by its rule


TOO_LONG = "a-solver-name-far-too-long-to-be-allowed"
BREAK_A_RULE = f"""\
    if (
        int(context.node_config["partition-id"]) == 1
        and int(msg.content["config"]["server-round"]) == 2
    ):
        meta.solver = "{TOO_LONG}"  # max_len 32: refused on the node
"""


ADOPTER = """
from flower_app import MetadataOptions, reply_metadata
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata


def train() -> MetadataOptions:
    meta = reply_metadata(TrainProcessMetadata)
    meta.training_time = 1.5
    meta.{field}.append(0.25)
    return MetadataOptions(train_type=TrainProcessMetadata)
"""


@pytest.mark.parametrize(
    ("field", "checks"), [("training_losses", True), ("training_lossez", False)]
)
def test_mypy_checks_an_adopters_fields_against_the_wheels_types(
    venv_bin: Path, tmp_path: Path, field: str, checks: bool
) -> None:
    """The wheel is typed (py.typed): a misspelled field fails mypy --strict."""
    source = tmp_path / "adopter.py"
    source.write_text(ADOPTER.format(field=field))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(venv_bin / "python"),
            str(source),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if checks:
        assert done.returncode == 0, done.stdout
    else:
        assert done.returncode == 1, done.stdout
        assert (
            '"TrainProcessMetadata" has no attribute "training_lossez"' in done.stdout
        )
