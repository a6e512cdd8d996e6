"""The breaking-change gate: proto/ against the released image proto/released.binpb.

Each edit is applied to a copy of the schema. Field numbers for new fields
come from the descriptor (the next free one), so the tests hold as the
schema grows.
"""

import re
import shutil
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from flower_app.protocol.schema import Descriptor
from flower_meta.v1.metadata_pb2 import EvaluateProcessMetadata, TrainProcessMetadata
from tests.helpers import ROOT, buf

RELEASED = ROOT / "proto" / "released.binpb"
SCHEMA = Path("proto/flower_meta/v1/metadata.proto")


def next_free_number(message: Descriptor) -> int:
    """The lowest field number above every used or reserved one."""
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    used = [f.number for f in proto.field] + [r.end - 1 for r in proto.reserved_range]
    return max(used, default=0) + 1


FREE = next_free_number(TrainProcessMetadata.DESCRIPTOR)


def test_schema_is_compatible_with_the_last_release() -> None:
    result = buf("breaking", "--against", str(RELEASED), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def gate(tmp_path: Path, old: str, new: str) -> str:
    """Apply a regex edit to a copy of the schema; return what the gate says."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    source = (tmp_path / SCHEMA).read_text()
    edited, count = re.subn(old, new, source)
    assert count, f"{old!r} not in the schema"
    (tmp_path / SCHEMA).write_text(edited)
    result = buf("breaking", "--against", str(RELEASED), cwd=tmp_path)
    return result.stdout + result.stderr if result.returncode else ""


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        pytest.param(
            r"optional double training_time = 1",
            "optional float training_time = 1",
            'changed type from "double" to "float"',
            id="retyped",
        ),
        pytest.param(
            r"repeated double training_losses = 3",
            f"repeated double training_losses = {FREE}",
            'field "3" with name "training_losses" on message "TrainProcessMetadata"'
            ' was deleted without reserving the number "3"',
            id="renumbered",
        ),
        pytest.param(
            r"  optional bool converged = 2 \[[^\]]*\];",
            "",
            'was deleted without reserving the number "2"',
            id="deleted-without-reservation",
        ),
        pytest.param(
            r"optional bool converged = 2",
            "optional bool has_converged = 2",
            'changed option "json_name" from "converged" to "hasConverged"',
            id="renamed",
        ),
        pytest.param(
            r"package flower_meta.v1;",
            "package flower_meta.v1beta;",
            'File package changed from "flower_meta.v1" to "flower_meta.v1beta"',
            id="package-renamed",
        ),
        pytest.param(
            r"\bTrainProcessMetadata\b",
            "TrainingMetadata",
            'Previously present message "TrainProcessMetadata" was deleted',
            id="message-renamed",
        ),
        pytest.param(
            r"optional double training_time = 1",
            "double training_time = 1",
            'changed cardinality from "optional with explicit presence" to '
            '"optional with implicit presence"',
            id="presence-dropped",
        ),
        pytest.param(
            r"  uint32 num_examples = 2",
            "  optional uint32 num_examples = 2",
            'changed cardinality from "optional with implicit presence" to '
            '"optional with explicit presence"',
            id="presence-added",
        ),
        pytest.param(
            r"optional double training_time = 1",
            "repeated double training_time = 1",
            'changed cardinality from "optional with explicit presence" to "repeated"',
            id="singular-to-repeated",
        ),
    ],
)
def test_gate_stops_breaking_edits(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    assert complaint in gate(tmp_path, old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            r"(  repeated double training_losses = 3 \[[^\]]*\];\n)",
            rf"\1  optional uint32 added_field_{FREE} = {FREE};\n",
            id="field-added",
        ),
        pytest.param(
            r"  optional bool converged = 2 \[[^\]]*\];",
            '  reserved 2;\n  reserved "converged";',
            id="deleted-and-reserved",
        ),
    ],
)
def test_gate_lets_additive_edits_through(tmp_path: Path, old: str, new: str) -> None:
    assert gate(tmp_path, old, new) == ""


def test_the_next_free_number_follows_the_schema() -> None:
    assert 1 + max(f.number for f in TrainProcessMetadata.DESCRIPTOR.fields) == FREE
    assert next_free_number(EvaluateProcessMetadata.DESCRIPTOR) == 5
