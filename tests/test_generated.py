"""generated/ is what `buf generate` makes from proto/; proto/ lints clean."""

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's buf with the venv's python (grpc_tools.protoc) first on PATH."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(VENV_BIN / "buf"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "proto", tmp_path / "proto")

    result = _buf("generate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    committed, fresh = ROOT / "generated", tmp_path / "generated"
    assert _files(committed) == _files(fresh), (
        "run `buf generate` and commit generated/"
    )
    drifted = [
        name
        for name in sorted(_files(fresh))
        if not filecmp.cmp(committed / name, fresh / name, shallow=False)
    ]
    assert not drifted, (
        f"generated/ drifted from proto/ in {drifted}: run `buf generate`"
    )


def test_generated_files_are_marked_generated() -> None:
    for path in (ROOT / "generated").rglob("*_pb2.py*"):
        head = path.read_text().splitlines()[:3]
        assert any("enerated" in line and "edit" in line.lower() for line in head), path


def test_buf_lint_passes() -> None:
    result = _buf("lint", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
