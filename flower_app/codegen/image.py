"""Run buf on `proto/`, with validate.proto from the protovalidate wheel.

`proto/` imports `buf/validate/validate.proto`, which buf would fetch from
buf.build and no package ships as text. Its descriptor does ship, in the
pinned protovalidate wheel (see `buf_validate`): protoc (grpcio-tools' own)
builds `proto/` with it into an image, and buf reads that image as its
input, with `buf.yaml` and the templates as ever. From the repo root,
`python -m flower_app.codegen.image` followed by what follows `buf`:

    generate                      (generated/python, docs, JSON Schema)
    generate --template examples/typescript/buf.gen.yaml   (generated/ts)
    lint
    breaking --against proto/released.binpb
    build -o proto/released.binpb                          (a release)

`generate` also writes validate.proto's own code (the generated Python and
TypeScript import it); lint and breaking look at `proto/`'s files only.
No network: the image is built in a temporary folder each time.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

from flower_app.codegen.buf_validate import validate_file
from flower_app.protocol.field_rules import BUF_VALIDATE

MODULE = Path("proto")
"""The buf module's root, as buf.yaml names it."""


def build_image(module: Path, image: Path) -> None:
    """Compile every `.proto` under `module` into the image file `image`.

    Raises
    ------
    ValueError
        If protoc refuses a file: its first error line.

    """
    import grpc_tools

    given = image.with_name(f"{image.stem}.buf_validate.binpb")
    given.write_bytes(
        descriptor_pb2.FileDescriptorSet(file=[validate_file()]).SerializeToString()
    )
    protos = sorted(str(p.relative_to(module)) for p in module.rglob("*.proto"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={given}",
            f"-I{module}",
            f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
            *image_outputs(image),
            *protos,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if ": warning: " not in line]
        raise ValueError(f"protoc refused {module}: {(said or ['no message'])[0]}")


def image_outputs(image: Path) -> list[str]:
    """Protoc's options that write a buf image (imports and comments included)."""
    return [
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={image}",
    ]


LINT_RULES = '{"version": "v2", "lint": {"use": ["PROTOVALIDATE"]}}'
"""buf's check of protovalidate rules alone: types, bounds, every CEL expression."""


def lint_rules(image: Path, protos: Sequence[Path]) -> None:
    """Run buf's protovalidate check on the files of `image` (not Google's or buf's).

    It compiles every CEL expression against the message's types (a field
    that does not exist, a string added to an int), and checks that each
    rule fits its field and no two contradict.

    Raises
    ------
    ValueError
        One line for each problem buf names, or the reason buf did not run.

    """
    built = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    own = [
        file.name
        for file in built.file
        if not file.name.startswith(("google/protobuf/", BUF_VALIDATE))
    ]
    done = subprocess.run(
        [
            _buf(),
            "lint",
            str(image),
            *(f"--path={name}" for name in own),
            "--config",
            LINT_RULES,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        files = ", ".join(map(str, protos))
        said = (done.stdout + done.stderr).strip().splitlines() or ["no message"]
        raise ValueError(
            "\n".join(f"buf lint refused {files}: {line}" for line in said)
        )


def _buf() -> str:
    """Find the buf installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    return str(beside) if beside.is_file() else "buf"


def buf_command(argv: Sequence[str], image: Path, module: Path) -> list[str]:
    """Return the buf command line that runs `argv` (a subcommand first) on `image`."""
    if not argv:
        raise ValueError("name a buf command: generate, lint, breaking or build")
    subcommand, *rest = argv
    own = sorted({p.relative_to(module).parts[0] for p in module.rglob("*.proto")})
    built = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    imported = any(file.name == BUF_VALIDATE for file in built.file)
    paths = [*own, BUF_VALIDATE] if subcommand == "generate" and imported else own
    extra = ["--exclude-imports"] if subcommand == "breaking" else []
    return [
        _buf(),
        subcommand,
        str(image),
        *(f"--path={path}" for path in paths),
        *extra,
        *rest,
    ]


def main(argv: Sequence[str]) -> int:
    """Build the image of `proto/` and run buf with `argv` on it."""
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "proto.binpb"
        try:
            build_image(MODULE, image)
            command = buf_command(argv, image, MODULE)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        # buf.gen.yaml runs `python -m grpc_tools.protoc`: this Python's
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        return subprocess.run(command, env={**os.environ, "PATH": path}).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
