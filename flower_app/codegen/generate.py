"""`flower-meta generate`: a user's own `.proto` files into code, docs and schemas.

Your `.proto` imports `buf/validate/validate.proto` for its rules and
`flower_meta/v1/options.proto` for its units, roles and reason codes; the
wheel ships the project's files, so no checkout is needed, and
validate.proto's descriptor comes from the installed protovalidate wheel
(its Python is written beside yours when your files import it). This runs
protoc (grpcio-tools' bundled compiler, the `codegen` extra) with the
project's schema on the import path and writes Python classes and mypy
stubs, and, when asked, the reference docs and JSON Schema that
`buf generate` makes for the project's own schema. Every message's rules
are compiled first: a rule no validator can apply (two lower bounds, a
bound no value meets, `required` without presence) stops it, and nothing
is written.
"""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

from flower_app.codegen.buf_validate import BufValidateError, validate_file
from flower_app.codegen.image import image_outputs, lint_rules
from flower_app.protocol.field_rules import BUF_VALIDATE

PACKAGE = Path(__file__).resolve().parent.parent
"""`flower_app`, in a checkout or installed."""
_CHECK = "--fmcheck_out: "
"""How protoc prefixes the rule check's refusals (one line each)."""
_CHATTER = "Writing mypy to "
"""What mypy-protobuf's plugin says of each file it writes, not an error."""


def schema_root() -> Path:
    """Return the folder that holds `flower_meta/v1/*.proto`.

    An installed wheel ships the files beside the generated code they were
    compiled to (`site-packages/flower_meta/v1/`); a checkout has them in
    `proto/` beside `flower_app/`.
    """
    from flower_meta.v1 import options_pb2

    installed = Path(options_pb2.__file__).resolve().parents[2]
    if (installed / "flower_meta" / "v1" / "options.proto").is_file():
        return installed
    return PACKAGE.parent / "proto"


def _plugin(name: str) -> Path:
    """Find a protoc plugin installed beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.is_file() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} is not installed: pip install 'flower-meta-protocol[codegen]'"
        )
    return Path(found)


def generate(
    protos: Sequence[Path],
    proto_paths: Sequence[Path],
    python_out: Path,
    docs_out: Path | None = None,
    jsonschema_out: Path | None = None,
) -> None:
    """Compile `protos` (found under `proto_paths`) into the output folders.

    Parameters
    ----------
    protos : Sequence[Path]
        The `.proto` files to generate, each under one of `proto_paths`.
    proto_paths : Sequence[Path]
        Import roots of the files (protoc's `-I`); the project's schema and
        protobuf's well-known types are added.
    python_out : Path
        Where the Python classes and their mypy stubs go (one package
        folder per proto package, as protoc writes them).
    docs_out : Path | None (default: None)
        Where a Markdown reference page per file goes; None writes none.
    jsonschema_out : Path | None (default: None)
        Where a JSON Schema per message goes; None writes none.

    Raises
    ------
    ValueError
        If protoc refuses the files, or rules are refused: a line for each
        (every refused rule of every message).

    """
    import grpc_tools  # the codegen extra; a missing one is named by the CLI

    outputs = [
        f"--python_out={python_out}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--mypy_out={python_out}",
    ]
    ours = _plugin("protoc-gen-flower-meta")
    for option, folder in (("docs", docs_out), ("jsonschema", jsonschema_out)):
        if folder is not None:
            outputs += [
                f"--plugin=protoc-gen-fm{option}={ours}",
                f"--fm{option}_out={option}:{folder}",
            ]
    includes = [
        *proto_paths,
        schema_root(),
        Path(grpc_tools.__file__).parent / "_proto",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        # always: the project's own metadata.proto imports it too
        given = f"--descriptor_set_in={_buf_validate_set(Path(scratch))}"
        own = [BUF_VALIDATE] if _imports_buf_validate(protos, proto_paths) else []
        protoc = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"-I{folder}" for folder in includes),
            given,
        ]
        # First the rules, into the scratch folder: our check (every refused
        # rule), then buf's (every CEL expression type-checked); only then
        # is anything written.
        image = Path(scratch) / "image.binpb"
        checks = [
            *image_outputs(image),
            f"--plugin=protoc-gen-fmcheck={ours}",
            f"--fmcheck_out=check:{scratch}",
        ]
        _protoc([*protoc, *checks, *map(str, protos)], protos)
        lint_rules(image, protos)
        for folder in (python_out, docs_out, jsonschema_out):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        _protoc([*protoc, *outputs, *map(str, protos), *own], protos)


def _protoc(command: list[str], protos: Sequence[Path]) -> None:
    """Run protoc; raise ValueError with a line for each error it names."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        lines = [
            line
            for line in said
            if not line.startswith(_CHATTER) and ": warning: " not in line
        ]
        files = ", ".join(map(str, protos))
        raise ValueError(
            "\n".join(
                f"protoc refused {files}: {line.removeprefix(_CHECK)}"
                for line in lines or ["no message"]
            )
        )


def _buf_validate_set(folder: Path) -> Path:
    """Write validate.proto's descriptor into `folder` and return its path.

    Only validate.proto itself: the Google files it imports come from
    grpcio-tools' includes, as for every other file.
    """
    try:
        found = validate_file()
    except BufValidateError as err:
        raise ValueError(f"{BUF_VALIDATE} is needed, but {err}") from err
    path = folder / "buf_validate.binpb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[found]).SerializeToString())
    return path


def _imports_buf_validate(protos: Sequence[Path], roots: Sequence[Path]) -> bool:
    """Say whether one of the files imports validate.proto (read as text)."""
    line = f'import "{BUF_VALIDATE}";'
    for proto in protos:
        for root in (Path(), *roots):
            path = root / proto
            if path.is_file() and line in path.read_text(encoding="utf-8"):
                return True
    return False
