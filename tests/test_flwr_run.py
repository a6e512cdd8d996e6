"""End to end: `flwr run` on a managed local SuperLink, with only the FAB importable.

The run uses its own FLWR_HOME and its own free ports, so it never talks to a
SuperLink somebody else started, and it stops every process it started (found
by the FLWR_HOME in their environment, stopped by pid), also when it fails.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flwr.cli.build import build_fab_from_disk

from tests.conftest import ROOT, VENV_BIN

FAB_SUFFIXES = {".py", ".toml", ".md", ".yaml", ".yml", ".json", ".jsonl"}


def test_fab_holds_the_app_and_generated_code_only() -> None:
    with zipfile.ZipFile(BytesIO(build_fab_from_disk(ROOT))) as fab:
        names = set(fab.namelist())
    app_files = {n for n in names if not n.startswith(".info/")}
    assert {Path(n).suffix for n in app_files} <= FAB_SUFFIXES
    assert "generated/python/flower_meta/v1/metadata_pb2.py" in app_files
    assert "flower_app/codec.py" in app_files
    assert not any(n.startswith(("tests/", ".venv/")) for n in app_files)


@pytest.fixture
def fab_only_bin(tmp_path: Path) -> Path:
    """A venv that sees every installed dependency but not this project.

    Its one .pth file points at our site-packages without running the .pth
    files there, so the editable install of this project is invisible; the
    Flower entry points are copied with their shebang pointed at it.
    """
    venv = tmp_path / "fab-only-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for script in VENV_BIN.glob("fl*"):
        lines = script.read_text().splitlines(keepends=True)
        target = venv / "bin" / script.name
        target.write_text(f"#!{venv / 'bin' / 'python'}\n" + "".join(lines[1:]))
        target.chmod(0o755)
    probe = subprocess.run(
        [venv / "bin" / "python", "-c", "import flower_app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "No module named 'flower_app'" in probe.stderr, "project must not import"
    return venv / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pids_with(flwr_home: Path) -> list[int]:
    """Pids of live processes whose environment names this FLWR_HOME."""
    marker = f"FLWR_HOME={flwr_home}\0".encode()
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in pids if pid != os.getpid()]


def _stop(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            Path(f"/proc/{p}").exists() for p in pids
        ):
            time.sleep(0.2)


@pytest.fixture
def flwr_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "flwr-home"
    home.mkdir()
    yield home
    _stop(_pids_with(home))
    assert not _pids_with(home), "processes of this run survived"


def test_flwr_run_streams_metadata_and_reaches_90_percent(
    flwr_home: Path, fab_only_bin: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    env |= {
        "PATH": f"{fab_only_bin}{os.pathsep}{env['PATH']}",
        "FLWR_HOME": str(flwr_home),
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(_free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(_free_port()),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    command = [
        "flwr",
        "run",
        ".",
        "--stream",
        "--federation-config",
        "num-supernodes=10",
    ]
    result = subprocess.run(
        [shutil.which("flwr", path=env["PATH"]) or "flwr", *command[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log

    for server_round in (1, 2, 3):
        nodes = set(
            re.findall(rf"round {server_round} node (\d+): \{{'training_time'", log)
        )
        assert len(nodes) == 10, (
            f"round {server_round}: metadata from {len(nodes)} nodes"
        )
    assert "metadata skipped" not in log
    accuracy = re.search(r"final centralized accuracy (\d\.\d+)", log)
    assert accuracy, log
    assert float(accuracy.group(1)) >= 0.90
    installed = flwr_home / "apps"
    assert any(installed.glob("*/generated/python/flower_meta/v1/metadata_pb2.py"))
