"""The deployment engine for real: a SuperLink and two SuperNodes on 127.0.0.1.

Insecure (no TLS), for tests only. `flwr run` sends the app over the real
network path; the metadata must arrive in the ServerApp's log.
"""

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

import pytest

from flower_app.testing import (
    Flower,
    flower_env,
    free_port,
    read_until,
    run_id_of,
    stop,
)
from tests.helpers import ROOT, run_records

CONNECTION = """[superlink]
default = "deployment"

[superlink.deployment]
address = "127.0.0.1:{port}"
insecure = true
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Flower, list[Popen[str]]]]:
    """A running SuperLink with two connected SuperNodes, one partition each."""
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = free_port()
    (home / "config.toml").write_text(CONNECTION.format(port=port))
    flower = Flower(home, flower_env(home))
    flower.start(
        "flower-superlink", "--insecure", "--port", str(port), log_name="superlink"
    )
    supernodes = [
        flower.start(
            "flower-supernode",
            "--insecure",
            "--superlink",
            f"127.0.0.1:{port}",
            "--port",
            str(free_port()),
            "--node-config",
            f"partition-id={partition} num-partitions=2",
            log_name=f"supernode-{partition}",
        )
        for partition in (0, 1)
    ]
    yield flower, supernodes
    assert not flower.stop_all(), "processes of this deployment survived"


@pytest.mark.e2e
def test_metadata_crosses_the_network_into_the_log(
    deployment: tuple[Flower, list[Popen[str]]],
) -> None:
    flower, _ = deployment
    process = flower.run_streaming(ROOT, "deployment")
    log, _ = process.communicate(timeout=900)
    assert process.returncode == 0, log

    records = [
        record
        for record in run_records(flower.home, run_id_of(log.splitlines()))
        if record.record_key == "train_metadata"
    ]
    assert all(record.WhichOneof("outcome") == "accepted" for record in records)
    per_node = Counter(record.node_id for record in records)
    assert len(per_node) == 2
    assert set(per_node.values()) == {3}, per_node
    assert "final centralized accuracy" in log


@pytest.mark.e2e
def test_run_survives_a_supernode_stopped_mid_run(
    deployment: tuple[Flower, list[Popen[str]]],
) -> None:
    flower, supernodes = deployment
    process = flower.run_streaming(
        ROOT, "deployment", "--run-config", "min-nodes=1 round-timeout=90.0"
    )
    seen: list[str] = []
    read_until(process, "[ROUND 2/3]", seen)
    read_until(process, "configure_train: Sampled 2 nodes", seen)
    stop([supernodes[1].pid])  # sampled for round 2, stopped before it replies
    rest, _ = process.communicate(timeout=900)
    log = "".join(seen) + rest
    assert process.returncode == 0, log
    assert "final centralized accuracy" in log

    records = [
        record
        for record in run_records(flower.home, run_id_of(seen))
        if record.WhichOneof("outcome") == "accepted"
    ]
    rounds_per_node = Counter(record.node_id for record in records)
    survivor, stopped = (node for node, _ in rounds_per_node.most_common())
    assert rounds_per_node[survivor] == 3, rounds_per_node
    assert rounds_per_node[stopped] < 3
    assert re.search(r"round 2 metadata: 1 accepted, 0 rejected, 1 failed", log), log
