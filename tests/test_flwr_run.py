"""End to end: `flwr run` on a managed local SuperLink, with only the FAB importable.

Each test has its own FLWR_HOME and ports and stops every process it started
(see tests/flower_processes.py).
"""

import json
import re
import subprocess
import zipfile
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flwr.cli.build import build_fab_from_disk

from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from tests.helpers import (
    ROOT,
    RUNS_FOLDER,
    assert_report_plots,
    dependencies_only_venv,
)
from tests.testing import (
    Flower,
    flower_env,
    pids_with,
    read_until,
    run_id_of,
    stop,
)

FAB_SUFFIXES = {".py", ".toml", ".md", ".yaml", ".yml", ".json", ".jsonl"}


def test_fab_holds_the_app_and_generated_code_only() -> None:
    with zipfile.ZipFile(BytesIO(build_fab_from_disk(ROOT))) as fab:
        names = set(fab.namelist())
    app_files = {n for n in names if not n.startswith(".info/")}
    assert {Path(n).suffix for n in app_files} <= FAB_SUFFIXES
    assert "generated/python/flower_meta/v1/metadata_pb2.py" in app_files
    assert "generated/python/flower_meta/v1/options_pb2.py" in app_files
    assert "flower_app/protocol/codec.py" in app_files
    assert not any(n.startswith(("tests/", ".venv/")) for n in app_files)


@pytest.fixture
def fab_only_bin(tmp_path: Path) -> Path:
    """Flower's commands in a venv where only the FAB can provide this app."""
    return dependencies_only_venv(tmp_path / "fab-only-venv")


@pytest.fixture
def flower(tmp_path: Path, fab_only_bin: Path) -> Iterator[Flower]:
    """A fresh FLWR_HOME whose Flower commands see only the FAB of this app."""
    home = tmp_path / "flwr-home"
    home.mkdir()
    flower = Flower(home, flower_env(home, fab_only_bin))
    yield flower
    assert not flower.stop_all(), "processes of this run survived"


@pytest.mark.e2e
def test_flwr_run_streams_metadata_and_reaches_90_percent(flower: Flower) -> None:
    process = flower.run_streaming(ROOT, "--federation-config", "num-supernodes=10")
    log, _ = process.communicate(timeout=900)
    assert process.returncode == 0, log

    for server_round in (1, 2, 3):
        pattern = rf"round {server_round} node (\d+): \{{'training_time'"
        nodes = set(re.findall(pattern, log))
        assert len(nodes) == 10, (
            f"round {server_round}: metadata from {len(nodes)} nodes"
        )
    assert "metadata skipped" not in log
    accuracy = re.search(r"final centralized accuracy (\d\.\d+)", log)
    assert accuracy, log
    assert float(accuracy.group(1)) >= 0.90
    assert any(
        flower.home.glob("apps/*/generated/python/flower_meta/v1/metadata_pb2.py")
    )

    run_id = run_id_of(log.splitlines())
    run_dir = flower.home / RUNS_FOLDER / run_id
    records = list(read_log(run_dir / BINARY_LOG))
    outcomes = Counter(record.WhichOneof("outcome") for record in records)
    assert outcomes == {"accepted": 30, "evaluated": 15, "centralized": 4}
    assert (  # each stage's count, named (the log records say the same)
        "metadata over all rounds: train 30 accepted, 0 rejected, 0 failed; "
        "evaluate 15 accepted, 0 rejected, 0 failed"
    ) in log
    assert f"Metadata log: {run_dir}" in log
    assert_report_plots(run_dir)


@pytest.mark.e2e
def test_the_readme_run_config_example_runs_as_pasted(flower: Flower) -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    example = next(block for block in blocks if "--run-config" in block)
    process = flower.start_script(example, "readme-example", cwd=ROOT)
    assert process.wait(timeout=900) == 0
    log = (flower.home / "readme-example.log").read_text()
    assert "Dataset 'digits', dirichlet partitioning (alpha 0.3)" in log
    for server_round in (1, 2, 3):
        counts = f"round {server_round} metadata: 20 accepted, 0 rejected, 0 failed"
        assert counts in log
    assert "final centralized accuracy" in log


@pytest.mark.e2e
def test_serverapp_killed_in_round_3_keeps_rounds_1_and_2(flower: Flower) -> None:
    process = flower.run_streaming(ROOT, "--federation-config", "num-supernodes=10")
    seen: list[str] = []
    read_until(process, "[ROUND 3/3]", seen)
    serverapps = [
        pid
        for pid in pids_with(flower.home)
        if b"flwr-simulation" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert serverapps, "no ServerApp process found"
    stop(serverapps)

    run_dir = flower.home / RUNS_FOLDER / run_id_of(seen)
    records = list(read_log(run_dir / BINARY_LOG))
    rounds = Counter(
        record.server_round
        for record in records
        if record.WhichOneof("outcome") == "accepted"
    )
    assert rounds[1] == rounds[2] == 10, rounds
    assert set(rounds) <= {1, 2, 3}


MISTAKES = [
    ("dirichlet-alpha=0", "run config 'dirichlet-alpha' must be > 0, got 0.0"),
    (
        "max-payload-bytes=-5",
        "run config 'max-payload-bytes' must be >= 1 (bytes), got -5",
    ),
    ("local-epochs=0", "run config 'local-epochs' must be >= 1, got 0"),
    (
        "aggregation='bogus'",
        "run config 'aggregation' must be one of "
        "['all', 'converged-only', 'downweight'], got 'bogus'",
    ),
    (
        "trackers='wandb'",
        "run config 'trackers' must name mlflow or tensorboard, got 'wandb'",
    ),
]


@pytest.mark.e2e
def test_run_config_mistakes_fail_the_run_before_round_1(flower: Flower) -> None:
    """A value the app cannot run with fails the run: `flwr ls` says
    finished:failed with the key; `flwr run --stream` exits 0 whatever the
    run's status (Flower 1.42), as the README says."""
    for override, message in MISTAKES:
        process = flower.run_streaming(
            ROOT, "--federation-config", "num-supernodes=2", "--run-config", override
        )
        log, _ = process.communicate(timeout=900)
        assert process.returncode == 0, override
        said = f"RunConfigError: {message}; the run stops before round 1"
        assert log.count(said) == 1, (override, log[-2000:])
        assert "[ROUND 1" not in log, override
        runs = flower.home / RUNS_FOLDER
        assert not runs.exists() or not any(runs.iterdir()), override
        run = _listed(flower, run_id_of(log.splitlines()))
        assert run["status"] == "finished:failed", override
        assert str(run["status-details"]).endswith(
            f"{message}; the run stops before round 1"
        )


def _listed(flower: Flower, run_id: str) -> dict[str, object]:
    """The run as `flwr ls --format json` shows it."""
    shown = subprocess.run(
        [str(flower.env_bin / "flwr"), "ls", "--format", "json"],
        env=flower.env,
        cwd=flower.home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    runs: list[dict[str, object]] = json.loads(shown.stdout)["runs"]
    (run,) = [run for run in runs if run["run-id"] == run_id]
    return run


@pytest.mark.e2e
def test_a_misspelled_key_starts_no_run_and_the_superlink_log_names_it(
    flower: Flower,
) -> None:
    """What the README tells users: `flwr run` exits 1 with Flower's "Invalid
    run configuration", and only the SuperLink's log file names the key."""
    process = flower.run_streaming(ROOT, "--run-config", "local-epoch=3")
    log, _ = process.communicate(timeout=900)
    assert process.returncode == 1
    assert "[code: 15] Invalid run configuration." in log
    assert "local-epoch" not in log
    superlink = flower.home / "local-superlink" / "superlink.log"
    assert (
        "Could not start run: Key 'local-epoch' is not present in the main "
        "dictionary" in superlink.read_text()
    )


def _numbers(run_dir: Path) -> dict[tuple[str, int], list[str]]:
    """Every loss and accuracy in a run's metadata.jsonl, by outcome and round.

    Node ids are new each run, so each round's client values are compared
    as a sorted list.
    """
    found: dict[tuple[str, int], list[str]] = {}
    for line in (run_dir / "metadata.jsonl").read_text().splitlines():
        record = json.loads(line)
        at = record.get("serverRound", 0)  # proto3 JSON leaves round 0 out
        for outcome in ("accepted", "evaluated", "centralized"):
            if outcome in record:
                value = record[outcome]
                kept = {
                    k: v for k, v in value.items() if "Time" not in k and k != "@type"
                }
                found.setdefault((outcome, at), []).append(
                    json.dumps(kept, sort_keys=True)
                )
    return {key: sorted(values) for key, values in found.items()}


@pytest.mark.e2e
def test_one_seed_gives_one_run_to_the_last_bit(flower: Flower) -> None:
    """Partitions, model init and batch order follow `seed`; every client
    evaluates (which nodes Flower samples is not seeded: node ids are new
    each run), so every loss of two runs compares exactly."""
    runs = []
    for seed in (7, 7, 8):
        process = flower.run_streaming(
            ROOT,
            "--federation-config",
            "num-supernodes=4",
            "--run-config",
            f"seed={seed} fraction-evaluate=1.0 num-server-rounds=2",
        )
        log, _ = process.communicate(timeout=900)
        assert process.returncode == 0, log[-2000:]
        accuracy = re.search(r"final centralized accuracy (\d\.\d+)", log)
        assert accuracy, log[-2000:]
        run_dir = flower.home / RUNS_FOLDER / run_id_of(log.splitlines())
        runs.append((accuracy.group(1), _numbers(run_dir)))
    (first, numbers), (again, same), (_, different) = runs
    assert len(numbers[("accepted", 2)]) == len(numbers[("evaluated", 2)]) == 4
    assert sorted(numbers) == [
        *(("accepted", r) for r in (1, 2)),
        *(("centralized", r) for r in (0, 1, 2)),
        *(("evaluated", r) for r in (1, 2)),
    ]
    assert (again, same) == (first, numbers)
    assert different[("centralized", 0)] != numbers[("centralized", 0)]  # init
    assert different[("accepted", 1)] != numbers[("accepted", 1)]
