"""A node's own copy of what it sent: one record a call, on a log of any length.

A node whose operator sets `metadata-egress-log` appends one record to its
own log on every train and evaluate call. Timed per call, interleaved, on
a log already holding 10 and 10,000 records (train metadata with 5 losses,
as the example app sends):

- light: `metadata_log.append_one`, what the mod runs (the schema rewritten
  only when it lacks a type, the record and its JSON line appended, the
  files' sizes kept to check the tail in constant time);
- whole log: `MetadataLog` opened, one record appended, closed (schema
  merge, a scan of the whole log for a torn tail, the JSON mirror brought
  up to date), what the mod did before.

Each call appends a record, so the log grows by the calls timed (at most a
few hundred here, beside the 10,000 already there). Target: the light
path's time at 10,000 records <= 1.5x its time at 10 (flat in the log's
length).

    python -m benchmarks.node_copy [--quick] [--force] [--output DIR]
"""

import tempfile
from pathlib import Path

from rich.progress import track

from benchmarks.common import Spread, interleaved, parser, publish, ratio, require_quiet
from flower_app.protocol.metadata_log import MetadataLog, append_one
from flower_app.protocol.records import file_accepted, new_record
from flower_meta.v1.metadata_pb2 import MetadataLogRecord, TrainProcessMetadata

TARGET = 1.5
"""The light path at 10,000 earlier records over at 10, at most."""
MEASURES = ["light µs", "whole log µs", "whole log / light"]


def _record(node: int) -> MetadataLogRecord:
    record = new_record(7, 3, node, "train_metadata")
    file_accepted(
        record,
        TrainProcessMetadata(
            training_time=0.125,
            converged=False,
            training_losses=[1.0 / (epoch + node % 7 + 1) for epoch in range(5)],
        ),
    )
    return record


def _whole(folder: Path, record: MetadataLogRecord) -> None:
    log = MetadataLog(folder, wait=True)
    log.append(record)
    log.close()


def measure(
    earlier: int, repeats: int, budget: float
) -> tuple[list[object], list[float]]:
    """One column, and the light path's times, on a log of `earlier` records."""
    with tempfile.TemporaryDirectory() as scratch:
        light, whole = Path(scratch, "light"), Path(scratch, "whole")
        for folder in (light, whole):
            log = MetadataLog(folder)
            for node in range(earlier):
                log.append(_record(node))
            log.close()
        record = _record(1)
        times = interleaved(
            {
                "light": lambda: append_one(light, record),
                "whole": lambda: _whole(whole, record),
            },
            repeats,
            budget,
        )
    return [
        Spread.of(times["light"]),
        Spread.of(times["whole"]),
        ratio(times["whole"], times["light"]),
    ], times["light"]


def main(argv: list[str] | None = None) -> Path:
    """Measure at 10 and 10,000 earlier records, print the table, write the JSON."""
    args = parser(__doc__).parse_args(argv)
    start = require_quiet(args.force)
    sizes, repeats, budget = (
        ([10, 1000], 3, 0.01) if args.quick else ([10, 10_000], 9, 0.05)
    )
    found = [measure(n, repeats, budget) for n in track(sizes, "node copy")]
    columns = [column for column, _ in found]
    growth = ratio(found[-1][1], found[0][1])
    rows: list[list[object]] = [
        [name, *cells] for name, *cells in zip(MEASURES, *columns, strict=True)
    ]
    rows.append(
        [
            f"light at {sizes[-1]} / at {sizes[0]}",
            "",
            f"{growth} (target <= {TARGET:g})",
        ]
    )
    return publish(
        "node_copy",
        f"A node's own copy, one record a call, by records already in its log; "
        f"median (lowest to highest) of {repeats} interleaved repeats; target: "
        f"light at {sizes[-1]} / at {sizes[0]} <= {TARGET:g}",
        ["measure", *map(str, sizes)],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
