"""Payload size and codec speed: this project's protobuf against the tutorial's pickle.

Same facts in every format, for 2, 10, 100 and 1000 epochs, measured in one
process, interleaved: protobuf (encode, decode, decode + validate into the
`TrainProcessMetadata` the strategy uses), the tutorial's pickled dataclass,
JSON and msgpack of its dict.

    python -m benchmarks.payload_codec [--quick] [--output DIR]
"""

import argparse
import json
import pickle
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import msgpack

from benchmarks.common import RESULTS, best_microseconds, publish
from flower_app.protocol import codec
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata


@dataclass
class TutorialTrainProcessMetadata:
    """The tutorial's dataclass."""

    training_time: float
    converged: bool
    training_losses: dict[str, float]


def measure(epochs: int, budget: float) -> list[object]:
    """One table row: sizes and times for `epochs` epochs."""
    rng = random.Random(epochs)
    losses = [rng.uniform(0.01, 3.0) for _ in range(epochs)]
    meta = TrainProcessMetadata(
        training_time=rng.uniform(1, 500), converged=True, training_losses=losses
    )
    tutorial = TutorialTrainProcessMetadata(
        meta.training_time, True, {f"epoch_{i}": x for i, x in enumerate(losses, 1)}
    )
    ours = meta.SerializeToString()
    pickled = pickle.dumps(tutorial)
    as_json = json.dumps(asdict(tutorial)).encode()
    packed = msgpack.packb(asdict(tutorial))

    def time(operation: Callable[[], object]) -> float:
        return best_microseconds(operation, budget)

    url = codec.TRAIN_TYPE_URL
    protobuf_decode_validate = time(
        lambda: codec.decode(TrainProcessMetadata, url, ours)
    )
    pickle_loads = time(lambda: pickle.loads(pickled))
    return [
        epochs,
        len(ours),
        len(pickled),
        len(ours) / len(pickled),
        len(as_json),
        len(packed),
        time(meta.SerializeToString),
        time(lambda: TrainProcessMetadata.FromString(ours)),
        protobuf_decode_validate,
        time(lambda: pickle.dumps(tutorial)),
        pickle_loads,
        protobuf_decode_validate / pickle_loads,
        time(lambda: json.loads(as_json)),
        time(lambda: msgpack.unpackb(packed)),
    ]


COLUMNS = [
    "epochs",
    "protobuf B",
    "pickle B",
    "size ratio",
    "json B",
    "msgpack B",
    "pb encode µs",
    "pb decode µs",
    "pb decode+validate µs",
    "pickle dumps µs",
    "pickle loads µs",
    "time ratio",
    "json loads µs",
    "msgpack unpack µs",
]


def main(argv: list[str] | None = None) -> Path:
    """Measure every size, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, short timing")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes, budget = ([2, 10], 0.01) if args.quick else ([2, 10, 100, 1000], 0.3)
    rows = [measure(epochs, budget) for epochs in sizes]
    return publish(
        "payload_codec",
        "Payload and codec; ratios are protobuf / pickle "
        "(targets: size <= 0.5, time <= 1.0)",
        COLUMNS,
        rows,
        args.output,
    )


if __name__ == "__main__":
    main()
