"""The numbers in benchmarks/README.md, rendered from results/*.json.

Each `<!-- results: NAME -->` ... `<!-- /results -->` block of the README
holds results/NAME.json as a table, with when and where it was measured.
`python -m benchmarks` rewrites the blocks after a full run; a test checks
that they match the JSON.
"""

import json
import re
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS

README = Path(__file__).resolve().parent / "README.md"
BLOCK = re.compile(r"(<!-- results: (\w+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def render(name: str, results: Path = RESULTS) -> str:
    """Return results/NAME.json as a Markdown table, under its title and machine."""
    found = json.loads((results / f"{name}.json").read_text())
    rows: list[dict[str, Any]] = found["results"]
    columns = list(rows[0])
    env = found["environment"]
    libraries = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v)
    lines = [
        f"{found['title']}.",
        "",
        f"Measured {env['date']} on {env['cpu']} ({env['cores']} cores, "
        f"{env['memory_gib']} GiB), Python {env['python']}, {libraries}, "
        f"protobuf backend {env['protobuf_backend']}; load average "
        f"{env['load_average'][0]} at the start"
        + (" (forced on a busy machine)" if found["forced"] else "")
        + ".",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def update(readme: Path = README, results: Path = RESULTS) -> None:
    """Rewrite every results block of `readme` from the JSON in `results`."""
    text = readme.read_text()
    readme.write_text(BLOCK.sub(lambda m: m[1] + render(m[2], results) + m[4], text))


def blocks(readme: Path = README) -> dict[str, str]:
    """Return the README's results blocks, by name."""
    return {m[2]: m[3] for m in BLOCK.finditer(readme.read_text())}


def _cell(value: object) -> str:
    if isinstance(value, dict):
        low, high = _number(value["low"]), _number(value["high"])
        return f"{_number(value['median'])} ({low} to {high})"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    return f"{value:.3g}"
