"""A run folder that looks like a real run of many clients, for the report.

Clients differ (each its own speed and data), losses fall epoch by epoch
with noise, one client's loss jumps in round 2 and one client is a
straggler in round 2; node ids are 19-20 digit numbers as Flower's are; the
evaluate stage reports a constant `num_examples`; the server evaluates
centrally from round 0; run_config.json is kept. Seeded, so the same
arguments write the same records.
"""

import json
import random
from pathlib import Path

from flower_app.outcomes.replay import RUN_CONFIG
from flower_app.protocol.metadata_log import MetadataLog
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)

EPOCHS = 4
EXAMPLES = 29
"""Every client's evaluation set: the same size everywhere."""
RUN_CONFIG_KEPT = {"num-server-rounds": 3, "local-epochs": EPOCHS, "lr": 0.05}


def node_ids(clients: int, seed: int = 0) -> list[int]:
    """`clients` distinct node ids as Flower draws them: up to 2^64 - 1."""
    rng = random.Random(seed)
    found: set[int] = set()
    while len(found) < clients:
        found.add(rng.randrange(10**18, 2**64))
    return sorted(found)


def jumper(clients: int, seed: int = 0) -> int:
    """The node whose loss jumps to 2.6 in round 2."""
    return node_ids(clients, seed)[clients // 3]


def straggler(clients: int, seed: int = 0) -> int:
    """The node that takes 8 x its usual time in round 2."""
    return node_ids(clients, seed)[clients // 2]


def write_crowd(folder: Path, clients: int, rounds: int = 3, seed: int = 0) -> Path:
    """Write `rounds` rounds of `clients` train and evaluate replies into `folder`."""
    rng = random.Random(seed)
    nodes = node_ids(clients, seed)
    speed = {node: rng.uniform(0.8, 1.6) for node in nodes}
    log = MetadataLog(folder)
    for server_round in range(0, rounds + 1):
        if server_round:
            for node in nodes:
                record = MetadataLogRecord(
                    run_id=7,
                    server_round=server_round,
                    node_id=node,
                    record_key="train_metadata",
                )
                start = 1.2 / server_round * rng.uniform(0.8, 1.2)
                losses = [
                    start * 0.8**epoch * rng.uniform(0.95, 1.05)
                    for epoch in range(EPOCHS)
                ]
                if server_round == 2 and node == jumper(clients, seed):
                    losses[-1] = 2.6
                seconds = speed[node] * (
                    8 if (server_round, node) == (2, straggler(clients, seed)) else 1
                )
                record.accepted.CopyFrom(
                    TrainProcessMetadata(
                        training_time=seconds,
                        converged=losses[-1] <= losses[-2],
                        training_losses=losses,
                    )
                )
                log.append(record)
            for node in nodes:
                record = MetadataLogRecord(
                    run_id=7,
                    server_round=server_round,
                    node_id=node,
                    record_key="evaluate_metadata",
                )
                record.evaluated.CopyFrom(
                    EvaluateProcessMetadata(
                        evaluation_time=0.05 * speed[node],
                        num_examples=EXAMPLES,
                        loss=0.5 / server_round * rng.uniform(0.7, 1.3),
                        accuracy=min(
                            1.0, 0.6 + 0.1 * server_round * rng.uniform(0.8, 1.2)
                        ),
                    )
                )
                log.append(record)
        centralized = MetadataLogRecord(run_id=7, server_round=server_round)
        centralized.centralized.metrics["accuracy"] = 0.1 + 0.25 * server_round
        log.append(centralized)
        log.flush()
    log.close()
    (folder / RUN_CONFIG).write_text(json.dumps(RUN_CONFIG_KEPT))
    return folder
