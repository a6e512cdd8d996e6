"""Scale: 1000 simulated SuperNodes, 25 sampled per round, 3 rounds, on this machine.

Digits has 1,437 training images: too few for 1000 partitions with a test
split each. The benchmark writes an augmented copy to disk first, every image
also shifted by one pixel in the eight directions (12,933 images, about 13 a
node), and runs the app on it through the flwr-datasets path. Reports wall
time, the ServerApp process's peak memory and the per-round summaries.

    python -m benchmarks.scale [--nodes N] [--sampled K] [--output DIR]
"""

import argparse
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from datasets import Dataset

from benchmarks.common import RESULTS, ROOT, publish
from flower_app.app import data
from flower_app.testing import Flower, flower_env, pids_with


def write_augmented_digits(folder: Path) -> Path:
    """Digits with every train image also shifted by one pixel each way."""
    splits = data.digits_splits()
    train = splits["train"].with_format("numpy")
    images, labels = np.asarray(train["image"]), np.asarray(train["label"])
    shifted = [
        np.roll(images, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    ]
    augmented = Dataset.from_dict(
        {"image": list(np.concatenate(shifted)), "label": np.tile(labels, 9).tolist()},
        features=splits["train"].features,
    )
    augmented.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    splits["test"].to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


class PeakMemory(threading.Thread):
    """Polls the ServerApp process (flwr-simulation) for its peak resident set."""

    def __init__(self, home: Path) -> None:
        """Watch the processes of the Flower installation in `home`."""
        super().__init__(daemon=True)
        self.home, self.peak_kib, self.done = home, 0, threading.Event()

    def run(self) -> None:
        """Poll every half second until `done` is set."""
        while not self.done.wait(0.5):
            for pid in pids_with(self.home):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    if "flwr-simulation" in Path(f"/proc/{pid}/cmdline").read_text():
                        peak = re.search(r"VmHWM:\s+(\d+) kB", status)
                        self.peak_kib = max(
                            self.peak_kib, int(peak.group(1)) if peak else 0
                        )
                except OSError:
                    continue


def main(argv: list[str] | None = None) -> Path:
    """Run the big federation once, print the summaries and the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sampled", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    fraction = args.sampled / args.nodes
    with tempfile.TemporaryDirectory() as folder:
        dataset = write_augmented_digits(Path(folder) / "augmented-digits")
        home = Path(folder) / "flwr-home"
        home.mkdir()
        flower = Flower(home, flower_env(home))
        memory = PeakMemory(home)
        memory.start()
        run_config = (
            f"num-server-rounds={args.rounds} fraction-train={fraction} "
            f"fraction-evaluate={fraction} dataset='{dataset}' report=false"
        )
        start = time.perf_counter()
        try:
            process = flower.run_streaming(
                ROOT,
                "--federation-config",
                f"num-supernodes={args.nodes}",
                "--run-config",
                run_config,
            )
            log, _ = process.communicate(timeout=5400)
        finally:
            elapsed = time.perf_counter() - start
            memory.done.set()
            flower.stop_all()
    summaries = re.findall(
        r"round \d+ metadata: .*|final centralized accuracy [\d.]+", log
    )
    print("\n".join(summaries))
    if process.returncode != 0:
        raise RuntimeError(f"the run failed:\n{log[-4000:]}")
    return publish(
        "scale",
        f"{args.nodes} SuperNodes, {args.sampled} sampled, {args.rounds} rounds",
        [
            "supernodes",
            "sampled",
            "rounds",
            "wall s",
            "ServerApp peak MiB",
            "summaries",
        ],
        [
            [
                args.nodes,
                args.sampled,
                args.rounds,
                elapsed,
                memory.peak_kib / 1024,
                "; ".join(summaries),
            ]
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
