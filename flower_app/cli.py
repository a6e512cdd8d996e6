"""`flower-meta`: decode payloads and logs, and report on a run folder.

A run folder may come from anyone, so nothing in it is trusted: every wrong
argument (a missing path, a folder for a file or the reverse, a payload that
does not decode) and every malformed file (a damaged log, a schema that does
not build, a record no reader can decode, a run config that is no object,
content a tracker refuses) ends in one line on stderr naming the file and
what is wrong, and exit status 1; what can still be read is printed,
reported or exported. Output piped into a command that stops reading
(`| head`) ends quietly.
"""

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError, Message
from rich.console import Console
from rich.progress import Progress
from rich.table import Table as RichTable

from flower_app.extras import missing_extra
from flower_app.outcomes.model import Outcomes, Undecodable, unpacked
from flower_app.outcomes.replay import find_run_folder, load, run_config
from flower_app.protocol import codec
from flower_app.protocol.canonical_json import to_canonical_json
from flower_app.protocol.files import (
    default_runs_folder,
    output_folder,
    safe_name,
    write_atomic,
)
from flower_app.protocol.metadata_log import BINARY_LOG, read_log
from flower_app.protocol.records import stage_key
from flower_app.protocol.run_schema import (
    SCHEMA,
    message_class,
    record_type,
    schema_pool,
)
from flower_app.protocol.text import printable
from flower_app.reporting import runs, tables, trackers
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata

TABLE_WIDTH = 200
"""Columns of the tables when the output is not a terminal."""
Problem = Callable[[str], None]
"""Takes one problem that does not stop the command, in words."""


class _Console(Console):
    """rich's console, with a closed pipe left to `main` like any other."""

    def on_broken_pipe(self) -> None:
        """Raise, instead of rich's exit with status 1."""
        raise BrokenPipeError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    problems: list[str] = []
    try:
        args.command(args, problems.append)
    except BrokenPipeError:
        # The reader stopped (e.g. `| head`): no traceback, and none at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as err:
        if (hint := missing_extra(err)) is None:
            raise
        problems.append(hint)
    except (OSError, ValueError) as err:  # our errors: each names file and cause
        problems += str(err).splitlines() or [type(err).__name__]
    for problem in problems:
        print(f"flower-meta: {printable(problem, 1000)}", file=sys.stderr)
    return 1 if problems else 0


def _decode(args: argparse.Namespace, problem: Problem) -> None:
    """Print a payload, or every record of a metadata log, as canonical JSON."""
    if args.payloads is not None and not args.log:
        raise ValueError("--payloads takes a run's payloads out: give --log RUN_FOLDER")
    if args.log:
        if args.schema is not None:
            raise ValueError(
                "--schema is for a payload: a log is read with its run folder's "
                f"own {SCHEMA}"
            )
        folder = find_run_folder(Path(args.source))
        out = None if args.payloads is None else output_folder(Path(args.payloads))
        records = read_log(folder / BINARY_LOG, record_type(folder))
        for count, record in enumerate(records, 1):
            try:
                if record.WhichOneof("outcome") == "accepted_other":
                    unpacked(record.accepted_other)  # type: ignore[attr-defined]
                line = to_canonical_json(record)
            except (Undecodable, TypeError, DecodeError) as err:
                problem(f"{folder / BINARY_LOG}: record {count} is undecodable: {err}")
                continue
            if out is None:
                print(line)
            elif (written := _payload_file(record, out)) is not None:
                print(*written)
        return
    payload = _payload(args.source, args.encoding)
    message_type = _message_type(args.type_url, args.schema)
    try:
        message = codec.decode(message_type, args.type_url, payload)
    except ValueError as err:
        if (instead := _not_a_payload(args, payload)) is not None:
            raise ValueError(instead) from err
        known = message_type.DESCRIPTOR.full_name == args.type_url.rsplit("/", 1)[-1]
        if known or args.schema is not None:
            raise
        raise ValueError(
            f"{err}; a type this build does not know needs its schema: --schema "
            "<run folder>/schema.binpb, or a FileDescriptorSet (protoc "
            "--include_imports -o)"
        ) from err
    print(to_canonical_json(message))


def _not_a_payload(args: argparse.Namespace, payload: bytes) -> str | None:
    """Say what a source that did not decode is instead, and what to run; None."""
    path = Path(args.source)
    if args.encoding == "file" and (path.parent / BINARY_LOG).is_file():
        what = {
            BINARY_LOG: "metadata log",
            SCHEMA: "schema (a FileDescriptorSet; give it as --schema)",
        }.get(path.name, "file")
        return (
            f"{path} is its run folder's {what}, not a payload; every record "
            f"of the run: flower-meta decode --log {path.parent}"
        )
    if payload.lstrip()[:1] in (b"{", b"["):
        return (
            f"{path if args.encoding == 'file' else 'the payload'} holds JSON, "
            "not protobuf bytes (a golden vector's .json is the canonical JSON "
            "expected of the .binpb beside it, which is what decodes)"
        )
    return None


def _payload_file(record: Message, out: Path) -> tuple[str, Path] | None:
    """Write an accepted record's payload as `<round>-<node>-<stage>.binpb`.

    Its type URL goes beside it (`.type_url`); returns both, None for a
    record that carries no payload (a refusal, a failure, the server's own).
    """
    outcome = record.WhichOneof("outcome")
    if outcome not in ("accepted", "evaluated", "accepted_other"):
        return None
    value = getattr(record, outcome)
    if outcome == "accepted_other":
        type_url, payload = value.type_url, value.value
    else:
        type_url = codec.type_url_of(type(value))
        payload = value.SerializeToString(deterministic=True)
    stage = safe_name(stage_key(record).removesuffix("_metadata") or outcome)
    at, node = record.server_round, record.node_id  # type: ignore[attr-defined]
    name = f"{at}-{node}-{stage}"
    write_atomic(out, f"{name}.type_url", f"{type_url}\n".encode())
    return type_url, write_atomic(out, f"{name}.binpb", payload)


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
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder; a payload is a file (for a run folder's log: "
            "flower-meta decode --log FOLDER)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no such payload file: {path}")
    return path.read_bytes()


def _message_type(type_url: str, schema: str | None) -> type[Message]:
    """Find the class the type URL names: this build's, or a schema file's."""
    pool = descriptor_pool.Default()
    where = "this build"
    if schema is not None:
        path = Path(schema)
        path = path / SCHEMA if path.is_dir() else path
        pool, where = schema_pool(path), str(path)
    name = type_url.rsplit("/", 1)[-1]
    try:
        pool.FindMessageTypeByName(name)
    except KeyError:
        return TrainProcessMetadata  # the decoder refuses the type URL clearly
    return message_class(pool, name, where)


def _report(args: argparse.Namespace, problem: Problem) -> None:
    """Print a run's summary tables; write its plots and report.html.

    The tables need nothing beyond the library; without the report extra
    (matplotlib) they are printed and the missing extra is named.
    """
    folder = find_run_folder(Path(args.run_dir))
    outcomes = load(folder)
    if not outcomes.stages and not outcomes.centralized:
        empty = "its metadata log holds no records; the report is empty"
        problem(f"{args.run_dir}: {empty}")
    console = _Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
    for table in tables.in_terminal(outcomes):
        console.print(tables.as_rich(table))
    _problems_of("report", outcomes, problem)
    try:
        from flower_app.reporting.report import write_report  # the report extra
    except ModuleNotFoundError as err:
        if (hint := missing_extra(err)) is None:
            raise
        problem(f"plots and report.html not written: {hint}")
        return
    _, written = write_report(folder, problem=problem, outcomes=outcomes)
    for path in written:
        print(f"wrote {path.resolve()}")


def _problems_of(command: str, outcomes: Outcomes, problem: Problem) -> None:
    for text in outcomes.undecodable:
        problem(f"undecodable record, left out: {text}")
    if outcomes.damage:
        problem(f"{command} covers the intact records only: {outcomes.damage}")


def _export(args: argparse.Namespace, problem: Problem) -> None:
    """Load a run folder's metadata into MLflow or TensorBoard."""
    folder = find_run_folder(Path(args.run_dir))
    params = run_config(folder, problem)
    backend: trackers.Backend
    if args.to == "mlflow":
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        uri = uri or trackers.default_mlflow_uri(folder)
        backend = trackers.MlflowBackend(
            uri,
            args.experiment,
            folder.name,
            params,
            problem,
            trackers.started_at(folder),
        )
    else:
        backend = trackers.TensorBoardBackend(
            Path(args.logdir or trackers.default_tensorboard_dir(folder)), params
        )
    progress_bar = Progress(
        console=Console(stderr=True), disable=not sys.stderr.isatty(), transient=True
    )
    with progress_bar as progress:
        task = progress.add_task(f"exporting {folder.name} to {args.to}", total=None)
        tracker = trackers.Tracker(backend)
        trackers.export(folder, tracker, lambda n: progress.update(task, completed=n))
    _problems_of("export", tracker.outcomes, problem)
    if isinstance(backend, trackers.MlflowBackend):
        page = trackers.run_page(backend.experiment_id, backend.run_id)
        print(
            f"exported {folder} to MLflow run {backend.run_id} (experiment "
            f"{args.experiment!r}) at {backend.tracking_uri}; to view it: "
            f"mlflow ui --backend-store-uri {backend.tracking_uri}, then open {page}"
        )
    elif isinstance(backend, trackers.TensorBoardBackend):
        print(
            f"exported {folder} to TensorBoard in {backend.log_dir.resolve()}; "
            f"to view it: tensorboard --logdir {backend.log_dir.resolve()}"
        )


def _runs(args: argparse.Namespace, problem: Problem) -> None:
    """List the run folders of a runs folder, newest first."""
    root = Path(args.runs_folder) if args.runs_folder else default_runs_folder()
    found = runs.runs(root)
    if args.latest:
        if not found:
            raise FileNotFoundError(f"{root} holds no run folder yet")
        print(found[0].folder)
        return
    table = RichTable(box=None, pad_edge=False)
    for column in runs.COLUMNS:
        table.add_column(column, justify="right" if column == "rounds" else "left")
    for run in found:
        table.add_row(*run.row())
    _Console(width=None if sys.stdout.isatty() else TABLE_WIDTH).print(table)
    if not found:
        print(f"{root} holds no run folder yet")


def _generate(args: argparse.Namespace, problem: Problem) -> None:
    """Compile a user's .proto files with the project's schema importable."""
    from flower_app.codegen.generate import generate  # the codegen extra

    def folder(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    generate(
        [Path(p) for p in args.protos],
        [Path(p) for p in args.proto_path] or [Path()],
        Path(args.python_out),
        folder(args.docs_out),
        folder(args.jsonschema_out),
    )
    for name in ("python_out", "docs_out", "jsonschema_out"):
        if getattr(args, name) is not None:
            print(f"wrote {Path(getattr(args, name)).resolve()}")


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
        default=codec.TRAIN_TYPE_URL,
        help=f"payload type (default {codec.TRAIN_TYPE_URL})",
    )
    decode.add_argument(
        "--schema",
        help="a FileDescriptorSet (or a run folder's schema.binpb) defining the type",
    )
    decode.add_argument(
        "--log",
        action="store_true",
        help="SOURCE is a run folder or its metadata.binpb: print every record",
    )
    decode.add_argument(
        "--payloads",
        metavar="OUT",
        help="with --log: write each accepted payload into OUT as "
        "<round>-<node>-<stage>.binpb, its type URL beside it (.type_url), "
        "and print '<type URL> <file>' a line, for any reader",
    )
    decode.set_defaults(command=_decode)

    listed = commands.add_parser(
        "runs", help="list run folders, newest first (start, id, status, result)"
    )
    listed.add_argument(
        "runs_folder",
        nargs="?",
        help="the runs folder (default: $FLWR_HOME/flower-meta-runs, as a run's "
        "output-dir is by default)",
    )
    listed.add_argument(
        "--latest", action="store_true", help="print only the newest run folder's path"
    )
    listed.set_defaults(command=_runs)

    run_report = commands.add_parser("report", help="summarise and plot a run folder")
    run_report.add_argument(
        "run_dir", help="a run's folder (printed at the end of a run)"
    )
    run_report.set_defaults(command=_report)

    export = commands.add_parser(
        "export", help="load a run folder into MLflow or TensorBoard"
    )
    export.add_argument("run_dir", help="a run's folder (printed at the end of a run)")
    export.add_argument("--to", choices=trackers.KINDS, required=True)
    export.add_argument(
        "--tracking-uri",
        default="",
        help="MLflow tracking store (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<runs folder>-trackers/mlflow.db)",
    )
    export.add_argument("--experiment", default="flower-meta", help="MLflow experiment")
    export.add_argument(
        "--logdir",
        help="TensorBoard folder (default: <runs folder>-trackers/tensorboard/<run>)",
    )
    export.set_defaults(command=_export)

    generate = commands.add_parser(
        "generate",
        help="compile your own .proto (its rules buf/validate/validate.proto's, "
        "its units flower_meta/v1/options.proto's) into Python, stubs, docs, "
        "JSON Schema (the codegen extra)",
    )
    generate.add_argument("protos", nargs="+", help=".proto files to compile")
    generate.add_argument(
        "-I",
        "--proto-path",
        action="append",
        default=[],
        help="import root of the files (repeatable; default: the current folder)",
    )
    generate.add_argument(
        "--python-out", default=".", help="folder for Python and .pyi (default: .)"
    )
    generate.add_argument("--docs-out", help="folder for Markdown reference pages")
    generate.add_argument("--jsonschema-out", help="folder for JSON Schemas")
    generate.set_defaults(command=_generate)
    return parser


if __name__ == "__main__":
    sys.exit(main())
