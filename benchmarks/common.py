"""What every benchmark shares: a quiet machine, repeats with their spread, the record.

A benchmark refuses to start while the machine is visibly busy (1-minute
load average above the core count) unless `--force`d; times its operations
interleaved, so that noise hits all of them alike; reports each time and
each ratio as the median over repeats with the lowest and highest; and
writes its rows with the machine and library versions to results/NAME.json.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf.internal import api_implementation
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
"""This project's checkout: the Flower app the benchmarks run."""
LIBRARIES = ["flwr", "protobuf", "numpy", "msgpack", "torch"]
console = Console(width=160)


@dataclass(frozen=True)
class Spread:
    """A measure over repeats: the median, the lowest and the highest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        """Summarise `values`."""
        return cls(statistics.median(values), min(values), max(values))

    def __str__(self) -> str:
        """Print as `median (low to high)`, three significant digits."""
        return f"{self.median:.3g} ({self.low:.3g} to {self.high:.3g})"


def parser(description: str | None) -> argparse.ArgumentParser:
    """Start a benchmark's argument parser: --quick, --output, --force."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--force", action="store_true", help="measure even on a busy machine"
    )
    return parser


def busy() -> str | None:
    """Say why the machine is too busy to measure on, or None if it is quiet."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        return f"load average {load:.2f} is above the {cores} cores"
    return None


def require_quiet(force: bool) -> dict[str, Any]:
    """Exit with status 2 if the machine is busy, unless `force`d.

    Returns what `publish` records of the start: the environment, and
    whether the numbers were taken on a busy machine.
    """
    reason = busy()
    if reason and not force:
        sys.exit(f"not measuring: {reason}; wait, or pass --force")
    if reason:
        console.print(f"[yellow]measuring on a busy machine: {reason}[/]")
    return {"environment": environment(), "forced": reason is not None}


def wait_for_quiet(timeout: float = 600) -> None:
    """Wait, up to `timeout` s, for the machine to quiet down."""
    deadline = time.monotonic() + timeout
    while (reason := busy()) and time.monotonic() < deadline:
        console.print(f"waiting for a quiet machine: {reason}")
        time.sleep(15)


def interleaved(
    operations: dict[str, Callable[[], object]], repeats: int, budget: float
) -> dict[str, list[float]]:
    """Time each operation, in µs a call, `repeats` times, interleaved.

    Each repeat times every operation once, in a loop long enough to fill
    about `budget` s (timeit's way: garbage collection off).
    """
    timers = {name: timeit.Timer(op) for name, op in operations.items()}
    numbers = {}
    for name, timer in timers.items():
        calls, elapsed = timer.autorange()
        numbers[name] = max(1, int(calls * budget / max(elapsed, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(repeats):
        for name, timer in timers.items():
            times[name].append(timer.timeit(numbers[name]) / numbers[name] * 1e6)
    return times


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> Spread:
    """Return the spread of the repeat-by-repeat ratios of two interleaved times."""
    return Spread.of([a / b for a, b in zip(numerator, denominator, strict=True)])


def environment() -> dict[str, Any]:
    """Describe the machine, the libraries and the load the numbers were taken at."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "protobuf_backend": api_implementation.Type(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def publish(
    name: str,
    title: str,
    columns: list[str],
    rows: list[list[Any]],
    output: Path,
    start: dict[str, Any],
) -> Path:
    """Print the rows as a table; write them as JSON with `start`'s record."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    console.print(table)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{name}.json"
    results = [
        {column: _json(cell) for column, cell in zip(columns, row, strict=True)}
        for row in rows
    ]
    record = {"title": title, **start, "results": results}
    path.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"results: {path}")
    return path


def _cell(cell: object) -> str:
    return f"{cell:.3g}" if isinstance(cell, float) else str(cell)


def _json(cell: object) -> object:
    if isinstance(cell, Spread):
        return {"median": cell.median, "low": cell.low, "high": cell.high}
    return cell


def _memory_gib() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
