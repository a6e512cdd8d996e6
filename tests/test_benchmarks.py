"""The benchmarks still run, on tiny sizes (their numbers come from full runs)."""

import json
from pathlib import Path

import pytest

from benchmarks import payload_codec, scale, server_overhead, whole_run

pytestmark = pytest.mark.e2e


def _results(path: Path) -> list[dict[str, object]]:
    results: list[dict[str, object]] = json.loads(path.read_text())["results"]
    return results


def test_payload_codec_runs(tmp_path: Path) -> None:
    rows = _results(payload_codec.main(["--quick", "--output", str(tmp_path)]))
    assert [row["epochs"] for row in rows] == [2, 10]
    assert all(float(str(row["size ratio"])) <= 0.5 for row in rows)


def test_server_overhead_runs(tmp_path: Path) -> None:
    rows = _results(server_overhead.main(["--quick", "--output", str(tmp_path)]))
    assert rows[0]["replies"] == 25


def test_whole_run_runs(tmp_path: Path) -> None:
    rows = _results(whole_run.main(["--quick", "--output", str(tmp_path)]))
    assert {row["app"] for row in rows} >= {"protobuf", "pickle"}


def test_scale_runs(tmp_path: Path) -> None:
    args = [
        "--nodes",
        "20",
        "--sampled",
        "4",
        "--rounds",
        "1",
        "--output",
        str(tmp_path),
    ]
    (row,) = _results(scale.main(args))
    assert "round 1 metadata: 4 accepted" in str(row["summaries"])
