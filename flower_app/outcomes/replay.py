"""A run folder read back: its outcomes replayed from the log, its run config.

A run folder may come from anyone: the log is read with its own schema
(schema.binpb beside it), a damaged tail keeps every record before it and
says why the log ended early, and a run config that is no JSON object is
named and left out.
"""

import json
from collections.abc import Callable
from pathlib import Path

from flower_app.outcomes.model import Outcomes
from flower_app.protocol.metadata_log import BINARY_LOG, CorruptLogError, read_log
from flower_app.protocol.run_schema import record_type
from flower_app.protocol.text import printable

RUN_CONFIG = "run_config.json"
"""The run config a run folder was written with, if the app kept it."""
MAX_RUN_CONFIG_BYTES = 1 << 20


def run_config(folder: Path, problem: Callable[[str], None]) -> dict[str, str]:
    """Return the run config a run folder was written with, each value as text.

    As `run_config_values`, each value as Python prints it.
    """
    return {
        key: str(value) for key, value in run_config_values(folder, problem).items()
    }


def run_config_values(
    folder: Path, problem: Callable[[str], None]
) -> dict[str, object]:
    """Return the run config a run folder was written with, as JSON values.

    A missing file is an empty config; one that is too large, no JSON, or
    no JSON object is told to `problem` and read as empty.
    """
    path = folder / RUN_CONFIG
    if not path.is_file():
        return {}
    try:
        if path.stat().st_size > MAX_RUN_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_RUN_CONFIG_BYTES} bytes")
        found = json.loads(path.read_bytes())
        if not isinstance(found, dict):
            raise ValueError(f"holds a JSON {type(found).__name__}, not an object")
    except (OSError, ValueError, RecursionError) as err:
        problem(f"{path}: not a run config, left out ({printable(str(err), 200)})")
        return {}
    return {str(key): value for key, value in found.items()}


def find_run_folder(path: Path) -> Path:
    """Return the run folder `path` names: the folder itself, or its log file."""
    folder = path.parent if path.name == BINARY_LOG and path.is_file() else path
    if folder.is_file():
        if (path.parent / BINARY_LOG).is_file():
            raise NotADirectoryError(
                f"{path} is a file of run folder {path.parent}: give the folder "
                f"itself ({path.parent})"
            )
        raise NotADirectoryError(
            f"{path} is a file, not a run folder (a payload? flower-meta decode {path})"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {path}")
    if not (folder / BINARY_LOG).is_file():
        raise FileNotFoundError(f"{folder} holds no {BINARY_LOG}: is it a run folder?")
    return folder


def load(path: Path) -> Outcomes:
    """Replay a run folder's metadata log; a damaged tail keeps what precedes it."""
    folder = find_run_folder(path)
    outcomes = Outcomes()
    try:
        for record in read_log(folder / BINARY_LOG, record_type(folder)):
            outcomes.add(record)
    except CorruptLogError as err:
        outcomes.damage = str(err)
    return outcomes
