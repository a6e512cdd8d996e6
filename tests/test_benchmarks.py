"""The benchmarks run (tiny sizes, forced); the README shows the recorded results.

The recorded numbers come from full runs of `python -m benchmarks`.
"""

import json
from pathlib import Path

import pytest

from benchmarks import (
    node_copy,
    payload_codec,
    readme,
    rule_engines,
    run_folder,
    scale,
    server_overhead,
    whole_run,
)
from benchmarks.common import Spread, ratio

QUICK = ["--quick", "--force", "--output"]


def _results(path: Path) -> list[dict[str, object]]:
    results: list[dict[str, object]] = json.loads(path.read_text())["results"]
    return results


@pytest.mark.parametrize(
    "name",
    [
        "payload_codec",
        "rule_engines",
        "server_overhead",
        "whole_run",
        "scale",
        "run_folder",
        "node_copy",
    ],
)
def test_the_readme_shows_the_recorded_results(name: str) -> None:
    assert readme.blocks()[name] == readme.render(name)


def test_spread_and_ratio_are_taken_repeat_by_repeat() -> None:
    assert ratio([2.0, 9.0, 3.0], [1.0, 3.0, 1.0]) == Spread(3.0, 2.0, 3.0)
    assert str(Spread.of([4.0, 1.0, 2.0])) == "2 (1 to 4)"


@pytest.mark.e2e
def test_payload_codec_runs(tmp_path: Path) -> None:
    rows = _results(payload_codec.main([*QUICK, str(tmp_path)]))
    by_measure = {row["measure"]: row for row in rows}
    assert by_measure["protobuf B"] == {"measure": "protobuf B", "2": 29, "10": 93}
    assert all(
        float(str(v)) <= 0.5
        for k, v in by_measure["size / pickle"].items()
        if k != "measure"
    )


@pytest.mark.e2e
def test_rule_engines_runs(tmp_path: Path) -> None:
    rows = _results(rule_engines.main([*QUICK, str(tmp_path)]))
    by_measure = {row["measure"]: row for row in rows}
    assert by_measure["protobuf B"] == {"measure": "protobuf B", "2": 97}


@pytest.mark.e2e
def test_server_overhead_runs(tmp_path: Path) -> None:
    (row,) = _results(server_overhead.main([*QUICK, str(tmp_path)]))
    assert row["replies"] == 25


@pytest.mark.e2e
def test_whole_run_runs(tmp_path: Path) -> None:
    rows = _results(whole_run.main([*QUICK, str(tmp_path)]))
    assert {"protobuf", "pickle", "protobuf / pickle"} <= {row["app"] for row in rows}


@pytest.mark.e2e
def test_scale_runs(tmp_path: Path) -> None:
    (row,) = _results(scale.main([*QUICK, str(tmp_path)]))
    assert (row["supernodes"], row["sampled"], row["every round complete"]) == (
        20,
        4,
        "yes",
    )


@pytest.mark.e2e
def test_run_folder_runs(tmp_path: Path) -> None:
    rows = _results(run_folder.main([*QUICK, str(tmp_path)]))
    assert [row["command"] for row in rows] == list(run_folder.COMMANDS)
    assert all(row["records"] == 1000 and row["exit status"] == 0 for row in rows)


@pytest.mark.e2e
def test_node_copy_runs(tmp_path: Path) -> None:
    rows = _results(node_copy.main([*QUICK, str(tmp_path)]))
    by_measure = {row["measure"]: row for row in rows}
    assert set(by_measure["light µs"]) == {"measure", "10", "1000"}
    assert "target <= 1.5" in str(by_measure["light at 1000 / at 10"]["1000"])
