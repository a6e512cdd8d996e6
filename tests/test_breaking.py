"""The breaking-change gate: proto/ against the released image proto/released.binpb."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, buf

RELEASED = ROOT / "proto" / "released.binpb"
SCHEMA = Path("proto/flower_meta/v1/metadata.proto")


def test_schema_is_compatible_with_the_last_release() -> None:
    result = buf("breaking", "--against", str(RELEASED), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _gate(tmp_path: Path, old: str, new: str) -> str:
    """Apply one edit to a copy of the schema; return what the gate says."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    source = (tmp_path / SCHEMA).read_text()
    assert old in source
    (tmp_path / SCHEMA).write_text(source.replace(old, new))
    result = buf("breaking", "--against", str(RELEASED), cwd=tmp_path)
    return result.stdout + result.stderr if result.returncode else ""


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        pytest.param(
            "optional double training_time = 1;",
            "optional float training_time = 1;",
            'changed type from "double" to "float"',
            id="retyped",
        ),
        pytest.param(
            "repeated double training_losses = 3;",
            "repeated double training_losses = 4;",
            'field "3" with name "training_losses" on message "TrainProcessMetadata"'
            ' was deleted without reserving the number "3"',
            id="renumbered",
        ),
        pytest.param(
            "optional bool converged = 2;",
            "",
            'was deleted without reserving the number "2"',
            id="deleted-without-reservation",
        ),
        pytest.param(
            "optional bool converged = 2;",
            "optional bool has_converged = 2;",
            'changed option "json_name" from "converged" to "hasConverged"',
            id="renamed",
        ),
        pytest.param(
            "package flower_meta.v1;",
            "package flower_meta.v1beta;",
            'File package changed from "flower_meta.v1" to "flower_meta.v1beta"',
            id="package-renamed",
        ),
        pytest.param(
            "TrainProcessMetadata",
            "TrainingMetadata",
            'Previously present message "TrainProcessMetadata" was deleted',
            id="message-renamed",
        ),
    ],
)
def test_gate_stops_breaking_edits(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    assert complaint in _gate(tmp_path, old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "repeated double training_losses = 3;",
            "repeated double training_losses = 3;\n  optional uint32 num_examples = 4;",
            id="field-added",
        ),
        pytest.param(
            "optional bool converged = 2;",
            'reserved 2;\n  reserved "converged";',
            id="deleted-and-reserved",
        ),
    ],
)
def test_gate_lets_additive_edits_through(tmp_path: Path, old: str, new: str) -> None:
    assert _gate(tmp_path, old, new) == ""
