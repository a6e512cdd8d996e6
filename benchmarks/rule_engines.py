"""A type whose rules go to protovalidate: what our path costs beyond protovalidate's.

`acme.fleet.v1.ClientReport` (examples/vectors/acme_fleet.binpb: string
lengths and a pattern, an enum, a bounded list, a map with key and value
rules, a required oneof, a CEL rule) is validated by protovalidate-python,
the engine of record, not by our compiled plan. Timed interleaved, repeat
by repeat, for reports of 2, 10 and 64 gradient norms:

- decode + validate: `codec.decode`, what the strategy runs on every reply
  (type URL, size, parse, protovalidate's rules, the epoch policy);
- protovalidate: `FromString`, then `Validator.validate` on the same bytes;
- refused: the same two on a report that breaks a rule (its device
  pattern), ours turning the violations into the refusal every reader
  prints (`protovalidation.refusal`).

Target: decode + validate <= 1.10x protovalidate's parse + validate
(our overhead beyond protovalidate's own time at most 10%).

    python -m benchmarks.rule_engines [--quick] [--force] [--output DIR]
"""

from pathlib import Path
from typing import Any

import protovalidate
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from rich.progress import track

from benchmarks.common import (
    ROOT,
    Spread,
    interleaved,
    parser,
    publish,
    ratio,
    require_quiet,
)
from flower_app.protocol import codec, validation
from flower_app.protocol.rules import MetadataDecodeError

SCHEMA = ROOT / "examples" / "vectors" / "acme_fleet.binpb"
NAME = "acme.fleet.v1.ClientReport"
URL = f"type.googleapis.com/{NAME}"
MEASURES = [
    "protobuf B",
    "decode+validate µs",
    "protovalidate parse+validate µs",
    "decode+validate / protovalidate",
    "refused: ours µs",
    "refused: protovalidate µs",
    "refused: ours / protovalidate",
]


def report_type(schema: Path = SCHEMA) -> type[Message]:
    """Build the own type in a pool of its own, from its FileDescriptorSet."""
    files = descriptor_pb2.FileDescriptorSet.FromString(schema.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(NAME))


def _refused(kind: type[Message], payload: bytes) -> None:
    try:
        codec.decode(kind, URL, payload)
    except MetadataDecodeError:
        return
    raise AssertionError("the payload passed")


def _theirs_refused(engine: Any, kind: type[Message], payload: bytes) -> None:
    try:
        engine.validate(kind.FromString(payload))
    except protovalidate.ValidationError:
        return
    raise AssertionError("the payload passed")


def measure(norms: int, repeats: int, budget: float) -> list[object]:
    """One table column: a report of `norms` gradient norms."""
    kind = report_type()
    assert validation.engine(kind.DESCRIPTOR) == "protovalidate"
    fields: dict[str, Any] = {
        "wall_seconds": 12.5,
        "device": "a100-1",
        "accelerator": 2,
        "grad_norms": [1.0 / (k + 1) for k in range(norms)],
        "layer_seconds": {"conv": 3.5, "head": 0.25},
        "dataset": "digits",
        "peak_memory": 2048.0,
        "memory_budget": 4096.0,
    }
    good = kind(**fields).SerializeToString()
    bad = kind(**{**fields, "device": "A100-1"}).SerializeToString()
    engine = protovalidate.Validator()
    times = interleaved(
        {
            "ours": lambda: codec.decode(kind, URL, good),
            "theirs": lambda: engine.validate(kind.FromString(good)),
            "ours refused": lambda: _refused(kind, bad),
            "theirs refused": lambda: _theirs_refused(engine, kind, bad),
        },
        repeats,
        budget,
    )
    return [
        len(good),
        Spread.of(times["ours"]),
        Spread.of(times["theirs"]),
        ratio(times["ours"], times["theirs"]),
        Spread.of(times["ours refused"]),
        Spread.of(times["theirs refused"]),
        ratio(times["ours refused"], times["theirs refused"]),
    ]


def main(argv: list[str] | None = None) -> Path:
    """Measure each report size, print the table, write the JSON."""
    args = parser(__doc__).parse_args(argv)
    start = require_quiet(args.force)
    sizes, repeats, budget = ([2], 3, 0.005) if args.quick else ([2, 10, 64], 15, 0.04)
    columns = [measure(n, repeats, budget) for n in track(sizes, "rule engines")]
    rows = [[name, *cells] for name, *cells in zip(MEASURES, *columns, strict=True)]
    return publish(
        "rule_engines",
        f"An own type whose rules protovalidate applies ({NAME}), by gradient "
        f"norms, median (lowest to highest) of {repeats} interleaved repeats; "
        "target: decode+validate / protovalidate <= 1.10",
        ["measure", *map(str, sizes)],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
