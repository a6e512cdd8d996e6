"""Payload size and decode speed: protobuf against the raw parse, msgpack and pickle.

The same report (training time, converged, one loss per epoch) for 2, 10,
100 and 1000 epochs, as this project's protobuf payload, the tutorial's
pickled dataclass, and msgpack (NVIDIA FLARE's FOBS format) of the
tutorial's dict, and of the same facts with the losses as a list. Timed
interleaved, repeat by repeat:

- decode + validate: `codec.decode`, what the strategy runs on every reply
  (type URL, size, parse, every rule of the schema, the epoch policy);
- raw parse: `TrainProcessMetadata.FromString` alone;
- parse + read each value: the raw parse, then every field's value read
  into Python once, compared with nothing: the least any rule checked in
  Python costs (the rules read series of 128 elements and more on their
  wire bytes instead);
- protovalidate: the raw parse, then protovalidate's `Validator.validate`
  on the schema's own `buf.validate` rules: the ecosystem's reference
  validator;
- msgpack unpack, pickle loads: no validation on their side.

Targets: decode + validate <= 2x the raw parse and <= 1.0x msgpack unpack
(of the tutorial's dict) at 10, 100 and 1000 epochs; payload <= 0.5x pickle;
decode + validate <= 0.65x protovalidate up to 100 epochs, <= 0.15x at 1000.

    python -m benchmarks.payload_codec [--quick] [--force] [--output DIR]
"""

import json
import pickle
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import msgpack
import protovalidate
from rich.progress import track

from benchmarks.common import Spread, interleaved, parser, publish, ratio, require_quiet
from flower_app.protocol import codec
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata


@dataclass
class TutorialTrainProcessMetadata:
    """The tutorial's dataclass."""

    training_time: float
    converged: bool
    training_losses: dict[str, float]


MEASURES = [
    "protobuf B",
    "size / pickle",
    "decode+validate µs",
    "raw parse µs",
    "parse + read each value µs",
    "decode+validate / raw parse",
    "parse + read each value / raw parse",
    "decode+validate / msgpack",
    "decode+validate / msgpack (list)",
    "decode+validate / pickle loads",
    "protovalidate parse+validate µs",
    "decode+validate / protovalidate",
    "msgpack unpack µs",
    "msgpack (list) unpack µs",
    "pickle loads µs",
    "json loads µs",
    "pickle B",
    "msgpack B",
]
"""The table's rows; its columns are the epoch counts."""


def read_each_value(payload: bytes) -> None:
    """Parse a report and read each of its values into Python once."""
    meta = TrainProcessMetadata.FromString(payload)
    if meta.HasField("training_time"):
        meta.training_time  # noqa: B018 (the read is the point)
    meta.converged  # noqa: B018
    for _ in meta.training_losses:
        pass


def measure(epochs: int, repeats: int, budget: float) -> list[object]:
    """One table column: sizes, times and ratios for `epochs` epochs."""
    rng = random.Random(epochs)
    losses = [rng.uniform(0.01, 3.0) for _ in range(epochs)]
    meta = TrainProcessMetadata(
        training_time=rng.uniform(1, 500), converged=True, training_losses=losses
    )
    tutorial = TutorialTrainProcessMetadata(
        meta.training_time, True, {f"epoch_{i}": x for i, x in enumerate(losses, 1)}
    )
    ours, url = meta.SerializeToString(), codec.TRAIN_TYPE_URL
    pickled = pickle.dumps(tutorial)
    packed = msgpack.packb(asdict(tutorial))
    as_list = msgpack.packb(
        {"training_time": meta.training_time, "converged": True, "losses": losses}
    )
    as_json = json.dumps(asdict(tutorial)).encode()
    validator = protovalidate.Validator()
    times = interleaved(
        {
            "decode": lambda: codec.decode(TrainProcessMetadata, url, ours),
            "parse": lambda: TrainProcessMetadata.FromString(ours),
            "read": lambda: read_each_value(ours),
            "msgpack": lambda: msgpack.unpackb(packed),
            "msgpack list": lambda: msgpack.unpackb(as_list),
            "pickle": lambda: pickle.loads(pickled),
            "json": lambda: json.loads(as_json),
            "protovalidate": lambda: validator.validate(
                TrainProcessMetadata.FromString(ours)
            ),
        },
        repeats,
        budget,
    )
    decode = times["decode"]
    return [
        len(ours),
        len(ours) / len(pickled),
        Spread.of(decode),
        Spread.of(times["parse"]),
        Spread.of(times["read"]),
        ratio(decode, times["parse"]),
        ratio(times["read"], times["parse"]),
        ratio(decode, times["msgpack"]),
        ratio(decode, times["msgpack list"]),
        ratio(decode, times["pickle"]),
        Spread.of(times["protovalidate"]),
        ratio(decode, times["protovalidate"]),
        Spread.of(times["msgpack"]),
        Spread.of(times["msgpack list"]),
        Spread.of(times["pickle"]),
        Spread.of(times["json"]),
        len(pickled),
        len(packed),
    ]


def main(argv: list[str] | None = None) -> Path:
    """Measure every size, print the table, write the JSON."""
    args = parser(__doc__).parse_args(argv)
    start = require_quiet(args.force)
    sizes, repeats, budget = (
        ([2, 10], 3, 0.005) if args.quick else ([2, 10, 100, 1000], 15, 0.04)
    )
    columns = [measure(n, repeats, budget) for n in track(sizes, "payload codec")]
    rows = [[name, *cells] for name, *cells in zip(MEASURES, *columns, strict=True)]
    return publish(
        "payload_codec",
        f"Payload and decode by epochs, median (lowest to highest) of {repeats} "
        "interleaved repeats; targets: decode+validate / raw parse <= 2, "
        "decode+validate / msgpack <= 1, size / pickle <= 0.5, "
        "decode+validate / protovalidate <= 0.65 to 100 epochs and <= 0.15 at 1000",
        ["measure", *map(str, sizes)],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
