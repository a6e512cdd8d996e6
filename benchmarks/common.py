"""Timing, tables and JSON results shared by the benchmarks."""

import json
import os
import platform
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
"""This project's checkout: the Flower app the benchmarks run."""


def best_microseconds(operation: Callable[[], object], budget: float = 0.2) -> float:
    """Best time of one call, in µs, over repeats that fill about `budget` s."""
    timer = timeit.Timer(operation)
    calls, elapsed = timer.autorange()
    number = max(1, int(calls * budget / max(elapsed, 1e-9) / 5))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def machine() -> dict[str, Any]:
    """Describe the machine the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpus": os.cpu_count(),
    }


def publish(
    name: str, title: str, columns: list[str], rows: list[list[Any]], output: Path
) -> Path:
    """Print the rows as a table and write them, with the machine, as JSON."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            *(f"{cell:.3g}" if isinstance(cell, float) else str(cell) for cell in row)
        )
    Console(width=160).print(table)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{name}.json"
    results = [dict(zip(columns, row, strict=True)) for row in rows]
    path.write_text(
        json.dumps({"machine": machine(), "results": results}, indent=2) + "\n"
    )
    print(f"results: {path}")
    return path
