"""Flower for tests and benchmarks: a SuperLink's part in one round, or a real run.

`NodeList`, `delivered` and `answer` stand in for the SuperLink between a
strategy's `configure_*` and `aggregate_*`. Each `Flower` has its own
FLWR_HOME and free ports, so it never talks to a SuperLink it did not start.
Every process it starts, and every process those start, inherits that
FLWR_HOME: `stop_all` finds them by it and stops them by pid, also when a
test failed.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from flwr.app import Error, Message, Metadata, RecordDict
from flwr.supercore.task_identity import TaskIdentity

VENV_BIN = Path(sys.executable).parent
"""The running environment's bin folder: flwr, flower-superlink, buf, ..."""


def free_port() -> int:
    """Find a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pids_with(flwr_home: Path) -> list[int]:
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


def stop(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL what is left after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]) != "Z"
    except OSError:
        return False


@dataclass
class Flower:
    """One Flower installation: its FLWR_HOME, environment and processes."""

    home: Path
    env: dict[str, str]
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, *command: str, log_name: str) -> subprocess.Popen[str]:
        """Start a Flower command in the background, its output in a log file."""
        return self._spawn(
            [str(self.env_bin / command[0]), *command[1:]], log_name, self.home
        )

    def start_script(
        self, script: str, log_name: str, cwd: Path
    ) -> subprocess.Popen[str]:
        """Start a bash script (e.g. a documented command) in the background."""
        return self._spawn(["bash", "-c", script], log_name, cwd)

    def _spawn(
        self, argv: list[str], log_name: str, cwd: Path
    ) -> subprocess.Popen[str]:
        """Start a process of its own session, kept to be stopped by pid."""
        output = (self.home / f"{log_name}.log").open("w")
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def run_streaming(self, app: Path, *args: str) -> subprocess.Popen[str]:
        """Start `flwr run APP ARGS --stream`, its output readable line by line."""
        process = subprocess.Popen(
            [str(self.env_bin / "flwr"), "run", str(app), *args, "--stream"],
            cwd=app,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.started.append(process)
        return process

    @property
    def env_bin(self) -> Path:
        """The bin folder first on this environment's PATH."""
        return Path(self.env["PATH"].split(os.pathsep)[0])

    def stop_all(self) -> list[int]:
        """Stop everything this installation runs; return pids still alive."""
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        stop(pids_with(self.home))
        return pids_with(self.home)


def flower_env(home: Path, bin_dir: Path = VENV_BIN) -> dict[str, str]:
    """Build the environment for Flower processes in `home`, tools from `bin_dir`."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return env | {
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "FLWR_HOME": str(home),
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        # The venv already holds every dependency: no per-run `uv sync`.
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }


def read_until(process: subprocess.Popen[str], needle: str, seen: list[str]) -> str:
    """Read `process` output into `seen` until a line containing `needle`."""
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"never saw {needle!r}:\n{''.join(seen)}")


def run_id_of(lines: list[str]) -> str:
    """Return the run id `flwr run` printed."""
    for line in lines:
        if "Successfully started run" in line:
            return line.split()[-1]
    raise AssertionError("no run id in:\n" + "".join(lines))


def as_in_a_server_app() -> None:
    """Give new messages a run and task identity, as inside a real ServerApp."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1


class NodeList:
    """What `configure_train` asks of a Grid: the connected node ids.

    A stand-in for the Grid in unit tests (a real one needs a SuperLink; the
    simulations run the real one).
    """

    def __init__(self, nodes: list[int]) -> None:
        """Pretend `nodes` are connected."""
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        """Return the connected node ids."""
        return self.nodes


def delivered(messages: Iterable[Message]) -> list[Message]:
    """Give the messages the ids a SuperLink gives them when it takes them."""
    found = list(messages)
    for message in found:
        message.metadata.__dict__["_message_id"] = message.object_id
    return found


def answer(
    instruction: Message, content: RecordDict | Error, sender: int | None = None
) -> Message:
    """Reply to `instruction`, signed by `sender` (default: the addressee)."""
    meta = instruction.metadata
    metadata = Metadata(
        run_id=meta.run_id,
        message_id="",
        src_node_id=meta.dst_node_id if sender is None else sender,
        dst_node_id=meta.src_node_id,
        reply_to_message_id=meta.message_id,
        group_id=meta.group_id,
        created_at=meta.created_at,
        ttl=meta.ttl,
        message_type=meta.message_type,
    )
    build: Any = Message  # its typed overloads omit the metadata= form it takes
    if isinstance(content, Error):
        return cast(Message, build(metadata=metadata, error=content))
    return cast(Message, build(metadata=metadata, content=content))
