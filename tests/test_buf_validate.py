"""validate.proto's descriptor, derived from the installed protovalidate wheel.

The oracles are protoc (it compiles a file importing it), Google's runtime
(it reads the rules back from the generated module) and protovalidate
itself (it enforces them on that module's messages, with its rule ids).
"""

import importlib.util
import subprocess
import sys
from importlib import metadata
from importlib.machinery import ModuleSpec
from pathlib import Path

import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from flower_app.codegen import buf_validate
from tests.helpers import ROOT
from tests.testing import VENV_BIN

STATS = """\
syntax = "proto3";
package acme.v1;
import "buf/validate/validate.proto";
message Stats {
  optional double seconds = 1 [
    (buf.validate.field).required = true,
    (buf.validate.field).double = {gte: 0, finite: true}
  ];
  repeated double losses = 2 [(buf.validate.field).repeated = {
    max_items: 3, items: {double: {gte: 0}}
  }];
}
"""


def test_the_set_builds_and_holds_protovalidates_rules() -> None:
    pool = descriptor_pool.DescriptorPool()
    for file in buf_validate.descriptor_set().file:
        pool.Add(file)
    field = pool.FindExtensionByName("buf.validate.field")
    assert field.containing_type is not None
    assert (field.containing_type.full_name, field.number) == (
        "google.protobuf.FieldOptions",
        1159,
    )
    rules = pool.FindMessageTypeByName("buf.validate.DoubleRules").fields_by_name
    assert {"gte", "gt", "lte", "lt", "finite"} <= set(rules)


def test_protoc_compiles_against_it_and_protovalidate_enforces_the_rules(
    tmp_path: Path,
) -> None:
    written = buf_validate.main([str(tmp_path / "validate.binpb")])
    assert written == 0
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "stats.proto").write_text(STATS)
    (tmp_path / "out").mkdir()
    compiled = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={tmp_path / 'validate.binpb'}",
            f"-I{tmp_path / 'src'}",
            f"--python_out={tmp_path / 'out'}",
            "stats.proto",
            buf_validate.FILE,  # Google's Python for it, which stats_pb2 imports
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stderr
    sys.path.insert(0, str(tmp_path / "out"))
    try:
        import stats_pb2  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "out"))
    protocs = tmp_path / "out" / "buf" / "validate" / "validate_pb2.py"
    shipped = ROOT / "generated" / "python" / "buf" / "validate" / "validate_pb2.py"
    assert protocs.read_bytes() == shipped.read_bytes()  # the one the wheel ships
    from buf.validate import validate_pb2

    seconds = stats_pb2.Stats.DESCRIPTOR.fields_by_name["seconds"]
    rules = seconds.GetOptions().Extensions[validate_pb2.field]
    assert (rules.required, rules.double.gte, rules.double.finite) == (True, 0, True)

    def rule_ids(**values: object) -> list[tuple[str, str]]:
        try:
            protovalidate.validate(stats_pb2.Stats(**values))
        except protovalidate.ValidationError as err:
            found = [(v.proto.field, v.proto.rule_id) for v in err.violations]
            return [(f.elements[0].field_name, r) for f, r in found if f is not None]
        return []

    assert rule_ids(seconds=0.0, losses=[0, 1, 2]) == []
    assert rule_ids(losses=[1]) == [("seconds", "required")]
    assert rule_ids(seconds=-1.0) == [("seconds", "double.gte")]
    assert rule_ids(seconds=float("nan")) == [  # NaN is not >= 0 either
        ("seconds", "double.gte"),
        ("seconds", "double.finite"),
    ]
    assert rule_ids(seconds=1.0, losses=[1, 2, 3, 4]) == [
        ("losses", "repeated.max_items")
    ]


def test_another_protovalidate_release_is_named_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = metadata.version
    monkeypatch.setattr(
        metadata,
        "version",
        lambda name: "2.0.0" if name == "protovalidate" else real(name),
    )
    with pytest.raises(buf_validate.BufValidateError) as err:
        buf_validate.descriptor_set()
    assert str(err.value) == (
        "protovalidate 2.0.0 is installed; the rules are protovalidate 2.1.0's"
    )


def test_a_module_without_the_descriptor_is_named() -> None:
    assert buf_validate._embedded_descriptor("x = file_desc('text')") is None
    assert buf_validate._embedded_descriptor("x = file_desc(b'\\n\\x01a')") == (
        b"\n\x01a"
    )


def test_a_missing_protovalidate_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name == "protovalidate":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(buf_validate.BufValidateError) as err:
        buf_validate.validate_file()
    assert str(err.value) == (
        "protovalidate is not installed: pip install 'flower-meta-protocol[codegen]'"
    )


def test_a_protovalidate_that_is_not_a_package_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed by its metadata, but no package folder to read (a stray module)."""
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: ModuleSpec(name, None)
    )
    with pytest.raises(buf_validate.BufValidateError, match="is not installed"):
        buf_validate.validate_file()


def test_the_command_writes_the_set(tmp_path: Path) -> None:
    out = tmp_path / "validate.binpb"
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "flower_app.codegen.buf_validate", str(out)],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr) == (0, "")
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert [file.name for file in files][-1] == buf_validate.FILE


def test_the_command_names_its_usage_and_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert buf_validate.main([]) == 2
    assert capsys.readouterr().err == (
        "usage: python -m flower_app.codegen.buf_validate OUT.binpb\n"
    )
    monkeypatch.setattr(metadata, "version", lambda name: "2.0.0")
    assert buf_validate.main([str(tmp_path / "out.binpb")]) == 1
    assert capsys.readouterr().err == (
        "buf_validate: protovalidate 2.0.0 is installed; the rules are "
        "protovalidate 2.1.0's\n"
    )
    assert not (tmp_path / "out.binpb").exists()
