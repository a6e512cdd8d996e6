"""Scale: 1,000 and 10,000 simulated SuperNodes, 100 sampled a round, 3 rounds.

Digits has 1,437 training images: too few for 10,000 partitions with a test
split each. The benchmark first writes a larger copy to disk, about 12
images a node: every image shifted by one pixel each way, then with
seeded pixel noise, as many copies as needed; the app runs on it through
its flwr-datasets path (`dataset = <folder>`), one `flwr run` for each
federation size, in a private FLWR_HOME. Reported for each size: wall
time, the ServerApp's peak resident memory, the peak of all the
simulation's processes together (ServerApp, Ray and its workers), the
metadata handling a reply (the "read in ... ms" of each training round's
summary, over its replies), the fsync of the metadata log that ends each
stage (apart: it is the disk's, and does not grow with replies), and
whether every round heard from every sampled node.

    python -m benchmarks.scale [--nodes N ...] [--sampled K] [--rounds R]
"""

import math
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from datasets import Dataset

from benchmarks.common import ROOT, Spread, console, parser, publish, require_quiet
from flower_app.app import data
from tests.testing import Flower, flower_env, pids_with

IMAGES_PER_NODE = 12
SUMMARY = re.compile(
    r"round (\d+) (metadata|evaluation metadata): (\d+) accepted, (\d+) rejected, "
    r"(\d+) failed.*\(read in ([\d.e+-]+) ms, log synced in ([\d.e+-]+) ms\)"
)


def write_digits(folder: Path, images: int) -> Path:
    """Write at least `images` training digits: shifted, then noisy, copies."""
    splits = data.digits_splits()
    train = splits["train"].with_format("numpy")
    originals, labels = np.asarray(train["image"]), np.asarray(train["label"])
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    rng = np.random.default_rng(data.SEED)
    copies = []
    for copy in range(math.ceil(images / len(originals))):
        shifted = np.roll(originals, shifts[copy % len(shifts)], axis=(1, 2))
        noise = rng.integers(-24, 25, size=shifted.shape) if copy >= 9 else 0
        copies.append(np.clip(shifted.astype(int) + noise, 0, 255).astype(np.uint8))
    augmented = Dataset.from_dict(
        {
            "image": list(np.concatenate(copies)),
            "label": np.tile(labels, len(copies)).tolist(),
        },
        features=splits["train"].features,
    )
    augmented.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    splits["test"].to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


class PeakMemory(threading.Thread):
    """Polls a Flower installation's processes for their peak resident memory."""

    def __init__(self, home: Path) -> None:
        """Watch the processes of the Flower installation in `home`."""
        super().__init__(daemon=True)
        self.home, self.done = home, threading.Event()
        self.server_app_kib = self.total_kib = 0

    def run(self) -> None:
        """Poll every half second until `done` is set."""
        while not self.done.wait(0.5):
            total = 0
            for pid in pids_with(self.home):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    command = Path(f"/proc/{pid}/cmdline").read_text()
                except OSError:
                    continue
                total += _kib(status, "VmRSS")
                if "flwr-simulation" in command:
                    peak = _kib(status, "VmHWM")
                    self.server_app_kib = max(self.server_app_kib, peak)
            self.total_kib = max(self.total_kib, total)


def _kib(status: str, field: str) -> int:
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


def run(nodes: int, sampled: int, rounds: int, folder: Path) -> list[object]:
    """Run one federation of `nodes`; return its table row."""
    home = folder / f"flwr-home-{nodes}"
    home.mkdir()
    flower = Flower(home, flower_env(home))
    memory = PeakMemory(home)
    memory.start()
    fraction = sampled / nodes
    run_config = (
        f"num-server-rounds={rounds} fraction-train={fraction} "
        f"fraction-evaluate={fraction} dataset='{folder / 'digits'}' report=false"
    )
    start = time.perf_counter()
    try:
        process = flower.run_streaming(
            ROOT,
            "--federation-config",
            f"num-supernodes={nodes}",
            "--run-config",
            run_config,
        )
        log, _ = process.communicate(timeout=5400)
    finally:
        elapsed = time.perf_counter() - start
        memory.done.set()
        flower.stop_all()
    summaries = SUMMARY.findall(log)
    if process.returncode != 0 or len(summaries) != 2 * rounds:
        raise RuntimeError(f"the run of {nodes} nodes failed:\n{log[-4000:]}")
    per_reply = [
        float(ms) * 1e3 / (int(ok) + int(bad) + int(failed))
        for _, stage, ok, bad, failed, ms, _ in summaries
        if stage == "metadata"
    ]
    synced = [float(line[-1]) for line in summaries]
    complete = all(int(line[2]) == sampled for line in summaries)
    for line in summaries:
        console.print(
            f"round {line[0]} {line[1]}: {line[2]} accepted, "
            f"read {line[5]} ms, log synced {line[6]} ms"
        )
    return [
        nodes,
        sampled,
        rounds,
        elapsed,
        memory.server_app_kib / 1024,
        memory.total_kib / 1024,
        Spread.of(per_reply),
        Spread.of(synced),
        "yes" if complete else "no",
    ]


def main(argv: list[str] | None = None) -> Path:
    """Run each federation size once, print the table, write the JSON."""
    arguments = parser(__doc__)
    arguments.add_argument("--nodes", type=int, nargs="+", default=[1_000, 10_000])
    arguments.add_argument("--sampled", type=int, default=100)
    arguments.add_argument("--rounds", type=int, default=3)
    args = arguments.parse_args(argv)
    if args.quick:
        args.nodes, args.sampled, args.rounds = [20], 4, 1
    start = require_quiet(args.force)
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "digits").mkdir()
        write_digits(folder / "digits", max(args.nodes) * IMAGES_PER_NODE)
        for nodes in args.nodes:
            rows.append(run(nodes, args.sampled, args.rounds, folder))
    return publish(
        "scale",
        f"Simulated SuperNodes, {args.sampled} sampled a round, {args.rounds} "
        "rounds; metadata handling per reply: median (lowest to highest) over "
        "the rounds",
        [
            "supernodes",
            "sampled",
            "rounds",
            "wall s",
            "ServerApp peak MiB",
            "simulation peak MiB",
            "metadata handling µs/reply",
            "log sync ms/stage",
            "every round complete",
        ],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
