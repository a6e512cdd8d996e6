"""The generated JSON Schemas describe the canonical JSON the readers print.

Every valid golden vector's JSON passes its message's schema; every invalid
one whose fault JSON can carry (an absent field, a value out of range)
fails it; every line of a real metadata.jsonl passes the log record's.
"""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flwr.serverapp.strategy import FedAdagrad
from google.protobuf import json_format

from flower_app.protocol.metadata_log import JSON_LOG, MetadataLog
from flower_app.server.strategy import MetadataStrategy
from tests.helpers import INVALID, ROOT, VALID, VECTORS, message_type
from tests.test_strategy import _mixed, _round

SCHEMAS = ROOT / "generated" / "jsonschema"
Vector = dict[str, Any]
NOT_IN_JSON = {"malformed", "wrong_type", "unsupported_version", "invalid_type_url"}
"""Faults of the bytes or the type URL: JSON of the message cannot show them."""


def _validator(full_name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{full_name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _full_name(vector: Vector) -> str:
    return str(vector["type_url"]).rsplit("/", 1)[-1].split("\n")[0]


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vectors_pass_their_schema(vector: Vector) -> None:
    document = json.loads((VECTORS / f"{vector['name']}.json").read_text())
    _validator(_full_name(vector)).validate(document)


JSON_INVALID = [v for v in INVALID if v["expect"] not in NOT_IN_JSON]


@pytest.mark.parametrize("vector", JSON_INVALID, ids=lambda v: v["name"])
def test_invalid_vectors_fail_their_schema(vector: Vector) -> None:
    schema = message_type(vector["type_url"])
    try:
        message = schema.FromString((VECTORS / f"{vector['name']}.binpb").read_bytes())
    except Exception:
        pytest.skip("does not parse: its fault is in the bytes")
    document = json_format.MessageToDict(message)
    errors = list(_validator(schema.DESCRIPTOR.full_name).iter_errors(document))
    assert errors, f"{vector['name']} passed: {document}"


def test_there_are_invalid_vectors_for_absent_and_out_of_range_values() -> None:
    reasons = {v["expect"] for v in JSON_INVALID}
    assert {
        "missing_training_time",
        "loss_out_of_range",
        "evaluation_out_of_range",
    } <= reasons


def test_every_log_line_passes_the_log_record_schema(tmp_path: Path) -> None:
    metadata_log = MetadataLog(tmp_path)
    _round(
        MetadataStrategy(FedAdagrad(), metadata_log=metadata_log),
        [1, 2, 3, 4, 5, 6, 7],
        _mixed(),
    )
    metadata_log.close()
    lines = (tmp_path / JSON_LOG).read_text().splitlines()
    assert len(lines) == 7
    validator = _validator("flower_meta.v1.MetadataLogRecord")
    for line in lines:
        validator.validate(json.loads(line))
