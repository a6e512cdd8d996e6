"""The deployment engine for real, the secure way: TLS, authenticated SuperNodes.

The commands are examples/deployment/README.md's recipe, run as written
(the test sets the variables its first block exports, to a folder and free
ports of its own). Beside the recipe: a SuperNode whose key is not
registered, and one without the CA, try to join and are refused; the
metadata the server keeps is exactly what the registered nodes sent (each
keeps its own copy); a SuperNode stopped mid-run fails alone.
"""

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from flower_meta.v1.metadata_pb2 import MetadataLogRecord
from tests.helpers import ROOT, RUNS_FOLDER
from tests.testing import (
    Flower,
    flower_env,
    free_port,
    read_until,
    run_id_of,
    stop,
)

pytestmark = pytest.mark.e2e
README = (ROOT / "examples" / "deployment" / "README.md").read_text()
STEPS = dict(
    re.findall(r"<!-- recipe: ([\w-]+) -->\n```bash\n(.*?)```", README, re.DOTALL)
)


@dataclass
class Deployment:
    """A running secure deployment and what the test needs of it."""

    flower: Flower
    credentials: Path
    supernodes: list[Popen[str]]
    registered: set[int]

    def step(self, name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", STEPS[name]],
            cwd=ROOT,
            env=self.flower.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


def _variables(credentials: Path) -> dict[str, str]:
    """The values the recipe's first block exports, chosen by the test."""
    names = set(re.findall(r"(\w+)=", STEPS["env"].split("export ", 2)[2]))
    values = {
        "CREDENTIALS": str(credentials),
        "SUPERLINK_PORT": str(free_port()),
        "SUPERNODE_1_PORT": str(free_port()),
        "SUPERNODE_2_PORT": str(free_port()),
    }
    assert names == set(values), f"the recipe exports {names}"
    return values


def _register(deployment: Deployment) -> set[int]:
    """Run the register step once the SuperLink answers; return the node ids."""
    deadline = time.monotonic() + 120
    probe = ["flwr", "supernode", "list", "secure", "--format", "json"]
    while (
        '"success": true'
        not in subprocess.run(
            probe, env=deployment.flower.env, capture_output=True, text=True
        ).stdout
    ):
        assert time.monotonic() < deadline, "the SuperLink never answered"
        time.sleep(1)
    done = deployment.step("register")
    assert done.returncode == 0, done.stdout + done.stderr
    return {int(i) for i in re.findall(r"SuperNode (\d+) registered", done.stdout)}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """The recipe up to the run: credentials, SuperLink, registration, SuperNodes."""
    home = tmp_path / "flwr-home"
    home.mkdir()
    credentials = tmp_path / "credentials"
    env = flower_env(home) | _variables(credentials)
    flower = Flower(home, env)
    running = Deployment(flower, credentials, [], set())
    try:
        made = running.step("credentials")
        assert made.returncode == 0, made.stdout + made.stderr
        assert (credentials / "ca.key").stat().st_mode & 0o077 == 0
        flower.start_script(STEPS["superlink"], "superlink", ROOT)
        running.registered = _register(running)
        running.supernodes = [
            flower.start_script(STEPS[f"supernode-{i}"], f"supernode-{i}", ROOT)
            for i in (1, 2)
        ]
        yield running
    finally:
        assert not flower.stop_all(), "processes of this deployment survived"


def _intruder(deployment: Deployment, name: str, with_ca: bool) -> str:
    """Start a SuperNode with an unregistered key; return its log once it gave up."""
    key = ec.generate_private_key(ec.SECP384R1())
    path = deployment.credentials / f"{name}.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    env = deployment.flower.env
    command = [
        "flower-supernode",
        "--superlink",
        f"127.0.0.1:{env['SUPERLINK_PORT']}",
        "--auth-supernode-private-key",
        str(path),
        "--port",
        str(free_port()),
        "--node-config",
        "partition-id=0 num-partitions=2",
    ]
    if with_ca:
        command += ["--root-certificates", str(deployment.credentials / "ca.crt")]
    process = deployment.flower.start(*command, log_name=name)
    process.wait(timeout=180)
    assert process.returncode != 0
    return (deployment.flower.home / f"{name}.log").read_text()


Records = dict[tuple[int, int], MetadataLogRecord]
"""(node, round) -> the train record"""


def _records(folder: Path) -> Records:
    return {
        (r.node_id, r.server_round): r
        for r in read_log(folder / BINARY_LOG)
        if r.record_key == "train_metadata"
    }


def test_the_secure_recipe_runs_and_keeps_strangers_out(deployment: Deployment) -> None:
    unregistered = _intruder(deployment, "stranger", with_ca=True)
    assert "Failed to activate SuperNode" in unregistered
    no_ca = _intruder(deployment, "no-ca", with_ca=False)
    assert "CERTIFICATE_VERIFY_FAILED" in no_ca

    process = deployment.flower.start_script(STEPS["run"], "run", ROOT)
    process.wait(timeout=900)
    log = (deployment.flower.home / "run.log").read_text()
    assert process.returncode == 0, log
    assert "final centralized accuracy" in log
    assert (
        "(node policy: training_losses: last element only; rounded to 3 significant "
        "digits)"
    ) in log

    run_dir = deployment.flower.home / RUNS_FOLDER / run_id_of(log.splitlines())
    server = _records(run_dir)
    assert {node for node, _ in server} == deployment.registered
    assert sorted(server) == sorted(
        (n, r) for n in deployment.registered for r in (1, 2, 3)
    )
    assert all(r.WhichOneof("outcome") == "accepted" for r in server.values())
    sent: Records = {}
    for i in (1, 2):
        sent |= _records(deployment.credentials / f"node-{i}-sent")
    assert sorted(sent) == sorted(server)
    for key, record in server.items():
        assert record.accepted == sent[key].accepted, key
        assert record.egress == sent[key].egress, key


def test_a_supernode_stopped_mid_run_fails_alone(deployment: Deployment) -> None:
    process = deployment.flower.run_streaming(
        ROOT, "secure", "--run-config", "min-nodes=1 round-timeout=90.0"
    )
    seen: list[str] = []
    read_until(process, "[ROUND 2/3]", seen)
    read_until(process, "configure_train: Sampled 2 nodes", seen)
    stop([deployment.supernodes[1].pid, *_children(deployment.supernodes[1].pid)])
    rest, _ = process.communicate(timeout=900)
    log = "".join(seen) + rest
    assert process.returncode == 0, log
    assert "final centralized accuracy" in log
    assert re.search(r"round 2 metadata: 1 accepted, 0 rejected, 1 failed", log), log
    run_dir = deployment.flower.home / RUNS_FOLDER / run_id_of(seen)
    accepted = [
        r
        for r in read_log(run_dir / BINARY_LOG)
        if r.WhichOneof("outcome") == "accepted"
    ]
    per_node = {
        node: sum(r.node_id == node for r in accepted) for node in deployment.registered
    }
    assert sorted(per_node.values()) in ([1, 3], [2, 3]), per_node


def _children(pid: int) -> list[int]:
    """Every process below `pid` (a shell and the SuperNode it started)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().split(")")[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found += [int(proc.name), *_children(int(proc.name))]
    return found
