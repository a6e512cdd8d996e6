"""Rerun every benchmark, then rewrite the numbers in benchmarks/README.md.

    python -m benchmarks [--force]

Each benchmark waits for a quiet machine first (up to 10 minutes), then
refuses, as on its own, unless --force. About 20 minutes on 2 cores.
"""

import sys

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
from benchmarks.common import console, wait_for_quiet

BENCHMARKS = [
    payload_codec,
    rule_engines,
    server_overhead,
    whole_run,
    scale,
    run_folder,
    node_copy,
]


def main(argv: list[str] | None = None) -> None:
    """Run them all, in one process, one after the other; update the README."""
    forced = (
        ["--force"] if "--force" in (sys.argv[1:] if argv is None else argv) else []
    )
    for benchmark in BENCHMARKS:
        console.rule(benchmark.__name__)
        wait_for_quiet()
        benchmark.main(forced)
    readme.update()
    console.print(f"updated {readme.README}")


if __name__ == "__main__":
    main()
