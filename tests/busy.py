"""Run a command beside CPU hogs: the suite must pass on a busy machine.

    python -m tests.busy [--hogs 2] -- pytest

Starts `--hogs` processes that spin on the CPU, runs the command, prints
its wall time and exit status, stops the hogs by pid, and exits with the
command's status.
"""

import argparse
import multiprocessing
import subprocess
import sys
import time


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command after `--` with the hogs beside it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    hogs = [
        multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)
    ]
    for hog in hogs:
        hog.start()
    start = time.perf_counter()
    try:
        status = subprocess.run(command).returncode
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()
    minutes = (time.perf_counter() - start) / 60
    shown = " ".join(command)
    print(f"{shown}: exit {status} in {minutes:.1f} min beside {args.hogs} hogs")
    return status


if __name__ == "__main__":
    sys.exit(main())
