"""examples/quickstart-metadata: a quickstart-shaped app adopting the protocol.

Its README's diff is exactly what separates it from the plain quickstart,
and it runs end to end with `flwr run` against this project installed from
its wheel, in an environment that cannot see the checkout.
"""

import re
import subprocess
from pathlib import Path

import pytest

from flower_app.protocol.metadata_log import BINARY_LOG, JSON_LOG, read_log
from tests.helpers import ROOT, build_wheel, dependencies_only_venv
from tests.testing import Flower, flower_env

EXAMPLE = ROOT / "examples" / "quickstart-metadata"
README = (EXAMPLE / "README.md").read_text()


def _diff() -> str:
    (diff,) = re.findall(r"```diff\n(.*?)```", README, flags=re.DOTALL)
    return str(diff)


def test_the_readme_diff_is_what_separates_it_from_the_plain_quickstart(
    tmp_path: Path,
) -> None:
    patch = tmp_path / "adoption.diff"
    patch.write_text(_diff())
    check = subprocess.run(
        ["git", "apply", "-R", "--check", str(patch)],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    changed = [
        line
        for line in _diff().splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert len(changed) <= 12, changed
    server_side = _diff().split("+++ b/quickstart_metadata/server_app.py")[1]
    added = [line for line in server_side.splitlines() if line.startswith("+")]
    removed = [line for line in server_side.splitlines() if line.startswith("-")]
    assert len(added) - len(removed) <= 3, "log, report and trackers in <= 3 lines"


@pytest.fixture(scope="module")
def wheel_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with this project installed from a wheel built from the checkout."""
    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder)
    bin_dir = dependencies_only_venv(folder / "venv")
    subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import flower_app, flower_meta.v1.metadata_pb2 as m; print(m.__file__)",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages/flower_meta/v1/metadata_pb2.py" in where, where
    return bin_dir


@pytest.mark.e2e
def test_flwr_run_with_the_installed_wheel(wheel_bin: Path, tmp_path: Path) -> None:
    home = tmp_path / "flwr-home"
    home.mkdir()
    flower = Flower(home, flower_env(home, wheel_bin))
    try:
        process = flower.run_streaming(
            EXAMPLE, "--federation-config", "num-supernodes=4"
        )
        log, _ = process.communicate(timeout=900)
    finally:
        assert not flower.stop_all(), "processes of this run survived"
    assert process.returncode == 0, log
    for server_round in (1, 2, 3):
        counts = f"round {server_round} metadata: 4 accepted, 0 rejected, 0 failed"
        assert counts in log
        evaluated = f"round {server_round} evaluation metadata: 2 accepted, 0 rejected"
        assert evaluated in log
        lines = re.findall(rf"round {server_round} node \d+: \{{'training_time': ", log)
        assert len(lines) == 4
    assert "'training_losses': {'epoch_1': " in log
    (run_dir,) = (home / "flower-meta-runs").iterdir()
    records = list(read_log(run_dir / BINARY_LOG))
    accepted = [r for r in records if r.WhichOneof("outcome") == "accepted"]
    assert len(accepted) == 3 * 4
    lines = (run_dir / JSON_LOG).read_text().splitlines()
    assert len(lines) == len(records)
    assert (run_dir / "report" / "report.html").is_file()
