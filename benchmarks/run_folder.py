"""Run folders at scale: `flower-meta` on 10^5 and 10^6 records.

A run folder of N records (N / 1,000 rounds of 1,000 clients: train
metadata with 5 losses each, as the example app writes it) is written once
through `MetadataLog`; then each command runs on it as users run it, a
process of its own through the console script: `decode --log` (into
/dev/null), `report`, `export --to tensorboard`, `export --to mlflow`
(SQLite store). Reported for each: wall time and the process's peak
resident memory (its own `wait4` rusage), once each (a run takes up to
minutes; the spread of one command is small beside its size), and the
JSON mirror's cost a record, timed in this process as `MetadataLog.close`
pays it.

    python -m benchmarks.run_folder [--records N ...]
"""

import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import console, parser, publish, require_quiet
from flower_app.protocol.metadata_log import (
    BINARY_LOG,
    JSON_LOG,
    MetadataLog,
    mirror_json_lines,
)
from flower_app.protocol.records import new_record
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.testing import VENV_BIN

CLIENTS = 1_000
COMMANDS = {
    "decode --log": ["decode", "--log"],
    "report": ["report"],
    "export --to tensorboard": ["export", "--to", "tensorboard"],
    "export --to mlflow": ["export", "--to", "mlflow"],
}


def write_run(folder: Path, records: int) -> None:
    """Write `records` accepted train records, `CLIENTS` a round."""
    metadata_log = MetadataLog(folder, json_lines=False)
    for index in range(records):
        server_round, node = divmod(index, CLIENTS)
        record = new_record(7, server_round + 1, node + 1, "train_metadata")
        losses = [1.0 / (server_round + epoch + node % 7 + 1) for epoch in range(5)]
        record.accepted.CopyFrom(
            TrainProcessMetadata(
                training_time=0.1 + node % 13 / 100,
                converged=node % 2 == 0,
                training_losses=losses,
            )
        )
        metadata_log.append(record)
        if node == CLIENTS - 1:
            metadata_log.flush()
    metadata_log.close()


def measure(command: list[str], folder: Path) -> tuple[float, float, int]:
    """Run one command on `folder`; return its seconds, peak MiB and exit status."""
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        process = subprocess.Popen(
            [str(VENV_BIN / "flower-meta"), *command, str(folder)],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{folder}.db"},
        )
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if process.stderr is not None:
        process.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> Path:
    """Measure each command at each size; write results/run_folder.json."""
    args_parser = parser(__doc__)
    args_parser.add_argument("--records", type=int, nargs="+", default=[10**5, 10**6])
    args = args_parser.parse_args(argv)
    sizes = [1_000] if args.quick else args.records
    start = require_quiet(args.force)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for records in sizes:
            folder = Path(scratch) / f"run-{records}"
            write_run(folder, records)
            size_mb = (folder / BINARY_LOG).stat().st_size / 1e6
            began = time.perf_counter()
            mirror_json_lines(folder)
            mirror = (time.perf_counter() - began) / records * 1e6
            (folder / JSON_LOG).unlink()
            for name, command in COMMANDS.items():
                console.print(f"{records} records: {name}")
                seconds, peak, status = measure(command, folder)
                rows.append(
                    [records, round(size_mb, 1), name, seconds, peak, status, mirror]
                )
    columns = [
        "records",
        "log MB",
        "command",
        "seconds",
        "peak MiB",
        "exit status",
        "JSON mirror µs/record",
    ]
    title = (
        f"flower-meta on a run folder, {CLIENTS:,} clients a round, one run a "
        "command (targets: report and exports under 30 s and 500 MiB each at "
        "10^6 records; JSON mirror <= 10 µs a record)"
    )
    return publish("run_folder", title, columns, rows, args.output, start)


if __name__ == "__main__":
    main()
