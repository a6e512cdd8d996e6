"""Server overhead: what reading metadata adds to `aggregate_train`, per reply.

One round as the SuperLink delivers it: `configure_train` to 1,000 or 10,000
nodes, then their train replies (real payloads, 5 epochs each, every 50th
undecodable), into `CustomFedAdagrad` (FedAdagrad behind `MetadataStrategy`)
pyproject.toml's run config (the defaults a user gets: metadata log with its
JSON mirror, client log cap, aggregation policy), and into a plain
`FedAdagrad`, interleaved, repeat by repeat. Metadata handling is timed
directly, as `aggregate_train` of the metadata strategy over a FedAdagrad
that aggregates nothing: admission, decode, validation, log lines, the
metadata log, the round summary, the aggregation policy. The whole
`CustomFedAdagrad` against `FedAdagrad` is beside it, as a ratio and a
difference (the difference carries both runs' noise). The JSON mirror of
the log is written when the log closes, at the end of a run: its cost is
reported beside, per record.

Target: metadata handling <= 20 µs a reply at 1,000 and 10,000 replies.

    python -m benchmarks.server_overhead [--quick] [--force] [--output DIR]
"""

import gc
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAdagrad, Strategy
from rich.progress import track

from benchmarks.common import Spread, parser, publish, ratio, require_quiet
from flower_app.app.server_app import metadata_options
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import MetadataLog
from flower_app.server.strategy import MetadataStrategy
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.testing import NodeList, answer, as_in_a_server_app, delivered

TARGET_MICROSECONDS = 20.0
MODEL = ArrayRecord({"w": Array(np.zeros(16, dtype=np.float32))})


def contents(count: int) -> dict[int, RecordDict]:
    """Train reply contents of nodes 1..count; every 50th has bad metadata."""
    rng = np.random.default_rng(count)
    out = {}
    for node in range(1, count + 1):
        meta = TrainProcessMetadata(
            training_time=float(rng.uniform(0.5, 2)),
            converged=bool(node % 3),
            training_losses=rng.uniform(0.1, 2.0, size=5).tolist(),
        )
        record = codec.to_config_record(meta)
        if node % 50 == 0:
            record[codec.META_KEY] = b"\xff\xff"
        arrays = np.full(16, node / count, dtype=np.float32)
        out[node] = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(arrays)}),
                "metrics": MetricRecord({"train_loss": 0.5, "num-examples": 10}),
                codec.TRAIN_RECORD_KEY: record,
            }
        )
    return out


def one_round(strategy: Strategy, replies: dict[int, RecordDict]) -> float:
    """Configure a round for the replies' nodes; time `aggregate_train`, in s."""
    sent = delivered(
        strategy.configure_train(
            1,
            MODEL,
            ConfigRecord(),
            NodeList(list(replies)),  # type: ignore[arg-type]
        )
    )
    answers = [answer(m, replies[m.metadata.dst_node_id]) for m in sent]
    gc.collect()  # every timed round starts from the same heap
    start = time.perf_counter()
    strategy.aggregate_train(1, answers)
    return time.perf_counter() - start


class _NoAggregation(FedAdagrad):
    """FedAdagrad minus its aggregation: what is left of a round is ours."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Take the replies the metadata strategy chose; aggregate nothing."""
        list(replies)
        return None, None


def sampling_all(kind: type[FedAdagrad], settings: Settings, nodes: int) -> FedAdagrad:
    """Build `kind` as the app builds FedAdagrad, sampling every one of `nodes`."""
    every = {
        "fraction_train": 1.0,
        "min_available_nodes": nodes,
        "min_train_nodes": nodes,
    }
    return kind(**(settings.fedadagrad_options | every))


def measure(count: int, repeats: int) -> list[object]:
    """Metadata handling a reply, directly and as a difference, for `count`."""
    as_in_a_server_app()
    settings = Settings.from_run_config(pyproject_run_config())
    replies = contents(count)
    times: dict[str, list[float]] = {"only": [], "ours": [], "plain": [], "json": []}
    for _ in range(repeats):
        for name, kind in (("only", _NoAggregation), ("ours", FedAdagrad)):
            with tempfile.TemporaryDirectory() as folder:
                metadata_log = MetadataLog(Path(folder))  # with the JSON mirror
                strategy = MetadataStrategy(
                    sampling_all(kind, settings, count),
                    metadata=metadata_options(settings),
                    metadata_log=metadata_log,
                    run_id=1,
                )
                times[name].append(one_round(strategy, replies))
                start = time.perf_counter()
                metadata_log.close()
                if name == "only":
                    times["json"].append(time.perf_counter() - start)
        plain = sampling_all(FedAdagrad, settings, count)
        times["plain"].append(one_round(plain, replies))
    only = Spread.of([s / count * 1e6 for s in times["only"]])
    return [
        count,
        only,
        ratio(times["ours"], times["plain"]),
        Spread.of(
            [
                (a - b) / count * 1e6
                for a, b in zip(times["ours"], times["plain"], strict=True)
            ]
        ),
        Spread.of([s / count * 1e6 for s in times["plain"]]),
        Spread.of([s / count * 1e6 for s in times["json"]]),
        "yes" if only.median <= TARGET_MICROSECONDS else "no",
    ]


@contextmanager
def _log_lines_unshown() -> Iterator[None]:
    """Format Flower's log lines as a run does, but write them nowhere."""
    handlers = [
        h
        for h in logging.getLogger("flwr").handlers
        if isinstance(h, logging.StreamHandler)
    ]
    with open(os.devnull, "w") as devnull:
        streams = [h.setStream(devnull) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)


def main(argv: list[str] | None = None) -> Path:
    """Measure every size, print the table, write the JSON."""
    args = parser(__doc__).parse_args(argv)
    start = require_quiet(args.force)
    sizes, repeats = ([25], 2) if args.quick else ([1_000, 10_000], 7)
    with _log_lines_unshown():
        rows = [measure(n, repeats) for n in track(sizes, "server overhead")]
    return publish(
        "server_overhead",
        f"Metadata handling in aggregate_train, default run config, median "
        f"(lowest to highest) of {repeats} interleaved repeats "
        f"(target <= {TARGET_MICROSECONDS:g} µs a reply)",
        [
            "replies",
            "metadata handling µs/reply",
            "CustomFedAdagrad / FedAdagrad",
            "CustomFedAdagrad - FedAdagrad µs/reply",
            "FedAdagrad µs/reply",
            "JSON mirror at close µs/record",
            "on target",
        ],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
