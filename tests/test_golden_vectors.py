"""Python reads every golden vector in examples/vectors as the manifest says."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc_tools
import pytest
from google.protobuf import json_format, text_format

from flower_app.codegen import buf_validate
from flower_app.protocol import codec
from flower_app.protocol.canonical_json import format_number, to_canonical_json
from flower_app.protocol.rules import MetadataDecodeError
from tests.helpers import FIXTURES, INVALID, ROOT, VALID, VECTORS, vector_type

Vector = dict[str, Any]


def _payload(vector: Vector) -> bytes:
    return (VECTORS / f"{vector['name']}.binpb").read_bytes()


def _decode(vector: Vector) -> Any:
    type_url = vector["type_url"]
    return codec.decode(vector_type(vector), type_url, _payload(vector))


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vector_decodes_to_its_canonical_json(vector: Vector) -> None:
    expected = (VECTORS / f"{vector['name']}.json").read_text().rstrip("\n")
    assert to_canonical_json(_decode(vector)) == expected


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_binary_text_and_json_are_the_same_message(vector: Vector) -> None:
    from_binary = _decode(vector)
    assert from_binary.SerializeToString(deterministic=True) == _payload(vector), (
        "re-encoding changed bytes"  # deterministic: a map's entries by key
    )
    from_binary.DiscardUnknownFields()
    schema = type(from_binary)
    text = (VECTORS / f"{vector['name']}.txtpb").read_text()
    from_text = text_format.Parse(text, schema())
    from_json = json_format.Parse(
        (VECTORS / f"{vector['name']}.json").read_text(), schema()
    )
    assert from_binary == from_text == from_json


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_for_its_reason(vector: Vector) -> None:
    expected = vector.get("expect_by_reader", {}).get("python", vector["expect"])
    with pytest.raises(MetadataDecodeError) as caught:
        _decode(vector)
    assert caught.value.reason == expected
    if "rule_id" in vector:
        assert caught.value.rule_id == vector["rule_id"]
        assert caught.value.field_path == vector["field_path"]


def test_unknown_fields_survive_decode_and_re_encode() -> None:
    (vector,) = [v for v in VALID if v["name"] == "unknown_fields"]
    assert (
        _decode(vector).SerializeToString().endswith(b"\x98\x06\x07\xa2\x06\x06future")
    )


@pytest.mark.parametrize(
    ("number", "ecmascript"),
    [
        (12.0, "12"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (5e-324, "5e-324"),
        (-2.5, "-2.5"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-0.0, "0"),
    ],
)
def test_numbers_print_as_ecmascript_does(number: float, ecmascript: str) -> None:
    assert format_number(number) == ecmascript


def test_the_vectors_own_schema_is_its_proto_built(tmp_path: Path) -> None:
    """acme_fleet.binpb is tests/fixtures' fleet.proto with its imports, unedited."""
    out = tmp_path / "acme_fleet.binpb"
    given = tmp_path / "buf_validate.binpb"
    given.write_bytes(buf_validate.descriptor_set().SerializeToString())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={given}",
            f"-I{FIXTURES}",
            f"-I{ROOT / 'proto'}",
            f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
            "--include_imports",
            f"-o{out}",
            "acme/fleet/v1/fleet.proto",
        ],
        check=True,
    )
    assert out.read_bytes() == (VECTORS / "acme_fleet.binpb").read_bytes()
    kinds = {v["rule_id"] for v in INVALID if v.get("schema") == "acme_fleet.binpb"}
    assert {
        "string.max_len",
        "string.pattern",
        "string.min_len",
        "enum.defined_only",
        "repeated.max_items",
        "double.gte",
        "required",
        "peak_within_budget",
    } <= kinds
