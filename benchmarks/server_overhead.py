"""Server overhead: the metadata handling `aggregate_train` adds, per reply.

For 25, 1,000 and 10,000 synthetic train replies (real payloads, 5 epochs
each, a few rejected), times `CustomFedAdagrad.read_train_metadata` (decode,
validate, log, persist to the metadata log, summarise, choose) apart from the
array aggregation FedAdagrad does anyway, which is timed beside it; with the
JSON-lines mirror of the log (the default, `json-log = true`) and without.

    python -m benchmarks.server_overhead [--quick] [--output DIR]
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdagrad
from flwr.supercore.task_identity import TaskIdentity

from benchmarks.common import RESULTS, publish
from flower_app.app.server_app import CustomFedAdagrad
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import MetadataLog
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata

TARGET_MICROSECONDS = 20.0


def replies(count: int) -> list[Message]:
    """`count` train replies from distinct nodes; every 50th has bad metadata."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1
    rng = np.random.default_rng(count)
    arrays = ArrayRecord({"w": Array(np.zeros(16, dtype=np.float32))})
    out = []
    for node in range(1, count + 1):
        meta = TrainProcessMetadata(
            training_time=float(rng.uniform(0.5, 2)),
            converged=bool(node % 3),
            training_losses=rng.uniform(0.1, 2.0, size=5).tolist(),
        )
        record = codec.to_config_record(meta)
        if node % 50 == 0:
            record[codec.META_KEY] = b"\xff\xff"
        content = RecordDict(
            {
                "arrays": arrays,
                "metrics": MetricRecord({"train_loss": 0.5, "num-examples": 10}),
                codec.TRAIN_RECORD_KEY: record,
            }
        )
        instruction = Message(
            RecordDict(), dst_node_id=node, message_type=MessageType.TRAIN
        )
        out.append(Message(content, reply_to=instruction))
    return out


def measure(count: int, repeats: int, json_lines: bool) -> list[object]:
    """Best metadata-handling and aggregation time for `count` replies."""
    batch = replies(count)
    metadata, aggregation = [], []
    with tempfile.TemporaryDirectory() as folder:
        metadata_log = MetadataLog(Path(folder), json_lines)
        for _ in range(repeats):
            strategy = CustomFedAdagrad(metadata_log=metadata_log, run_id=1)
            strategy.current_arrays = {"w": np.zeros(16, dtype=np.float32)}
            start = time.perf_counter()
            strategy.aggregate_train(1, batch)
            metadata.append(time.perf_counter() - start)

            plain = FedAdagrad()
            plain.current_arrays = {"w": np.zeros(16, dtype=np.float32)}
            start = time.perf_counter()
            plain.aggregate_train(1, batch)
            aggregation.append(time.perf_counter() - start)
        metadata_log.close()
    metadata = [ours - min(aggregation) for ours in metadata]
    per_reply = min(metadata) / count * 1e6
    return [
        count,
        "binary + JSON lines" if json_lines else "binary only",
        min(metadata) * 1e3,
        per_reply,
        min(aggregation) * 1e3,
        "yes" if per_reply <= TARGET_MICROSECONDS else "no",
    ]


def main(argv: list[str] | None = None) -> Path:
    """Measure every size, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with open(os.devnull, "w") as devnull:  # log lines are formatted, not shown
        for handler in logging.getLogger("flwr").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        return _run(args)


def _run(args: argparse.Namespace) -> Path:
    sizes, repeats = ([25], 1) if args.quick else ([25, 1_000, 10_000], 5)
    rows = [
        measure(count, repeats, json_lines)
        for json_lines in (True, False)
        for count in sizes
    ]
    return publish(
        "server_overhead",
        "Metadata handling in aggregate_train "
        f"(target <= {TARGET_MICROSECONDS:g} µs a reply)",
        [
            "replies",
            "metadata log",
            "metadata ms",
            "metadata µs/reply",
            "array aggregation ms",
            "on target",
        ],
        rows,
        args.output,
    )


if __name__ == "__main__":
    main()
