"""`flower-meta`: decode payloads and logs, and report on a run folder."""

import argparse
import base64
import binascii
import sys
from collections.abc import Sequence
from pathlib import Path

from flower_meta.v1 import metadata_pb2
from google.protobuf.message import Message
from rich.console import Console

from flower_app.protocol import codec
from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.metadata_log import CorruptLogError, read_log
from flower_app.protocol.validation import MetadataDecodeError
from flower_app.reporting import report

SCHEMAS: dict[str, type[Message]] = {
    descriptor.full_name: getattr(metadata_pb2, name)
    for name, descriptor in metadata_pb2.DESCRIPTOR.message_types_by_name.items()
}
"""Every flower_meta.v1 message, by full name."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except (FileNotFoundError, MetadataDecodeError, CorruptLogError, ValueError) as err:
        print(f"flower-meta: {err}", file=sys.stderr)
        return 1


def _decode(args: argparse.Namespace) -> int:
    """Print a payload, or every record of a metadata log, as canonical JSON."""
    if args.log:
        for record in read_log(Path(args.source)):
            print(to_canonical_json(record))
        return 0
    payload = _payload(args.source, args.encoding)
    schema = SCHEMAS.get(
        args.type_url.rsplit("/", 1)[-1], metadata_pb2.TrainProcessMetadata
    )
    print(to_canonical_json(codec.decode_as(schema, args.type_url, payload)))
    return 0


def _payload(source: str, encoding: str) -> bytes:
    """Read the payload: a file's bytes, or `source` itself as hex or base64."""
    try:
        if encoding == "hex":
            return bytes.fromhex(source)
        if encoding == "base64":
            return base64.b64decode(source, validate=True)
    except (ValueError, binascii.Error) as err:
        raise ValueError(f"{source[:20]!r}... is not valid {encoding}: {err}") from err
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such payload file: {path}")
    return path.read_bytes()


def _report(args: argparse.Namespace) -> int:
    """Print a run's summary table and write its plots."""
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no such run folder: {run_dir}")
    records = report.load(run_dir)
    console = Console()
    console.print(report.summary(records))
    for path in report.write_plots(records, run_dir / report.REPORT_FOLDER):
        console.print(f"wrote {path.resolve()}")
    if records.damage:
        print(
            f"flower-meta: report covers the intact records only: {records.damage}",
            file=sys.stderr,
        )
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flower-meta", description=__doc__)
    commands = parser.add_subparsers(required=True)

    decode = commands.add_parser("decode", help="print a payload or a log as JSON")
    decode.add_argument("source", help="payload file, hex or base64 text, or a log")
    decode.add_argument(
        "--encoding",
        choices=["file", "hex", "base64"],
        default="file",
        help="how SOURCE holds the payload (default: a file of raw bytes)",
    )
    decode.add_argument(
        "--type-url",
        default=codec.TYPE_URL,
        help=f"payload type (default {codec.TYPE_URL})",
    )
    decode.add_argument(
        "--log", action="store_true", help="SOURCE is a metadata.binpb log"
    )
    decode.set_defaults(command=_decode)

    run_report = commands.add_parser("report", help="summarise and plot a run folder")
    run_report.add_argument(
        "run_dir", help="a run's folder (printed at the end of a run)"
    )
    run_report.set_defaults(command=_report)
    return parser
