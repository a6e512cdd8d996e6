"""The generated JSON Schemas describe the canonical JSON the readers print.

Every valid golden vector's JSON passes its message's schema; every invalid
one whose fault JSON can carry (an absent field, a value out of range)
fails it; every line of a real metadata.jsonl passes the log record's.
"""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import protovalidate
import pytest
from flwr.serverapp.strategy import FedAdagrad
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from flower_app.codegen import json_schema
from flower_app.codegen.integer_pattern import integer_pattern
from flower_app.protocol import rule_kinds
from flower_app.protocol.metadata_log import JSON_LOG, MetadataLog
from flower_app.server.strategy import MetadataStrategy
from tests import rule_cases
from tests.helpers import INVALID, ROOT, VALID, VECTORS, vector_type
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


def _vector_validator(vector: Vector) -> jsonschema.Draft202012Validator:
    """The generated schema of a vector's type, or one made from its own set."""
    if "schema" not in vector:
        return _validator(_full_name(vector))
    files = descriptor_pb2.FileDescriptorSet.FromString(
        (VECTORS / vector["schema"]).read_bytes()
    )
    sources = {file.name: file for file in files.file}
    document = json_schema.document(vector_type(vector).DESCRIPTOR, sources)
    return jsonschema.Draft202012Validator(json.loads(document))


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vectors_pass_their_schema(vector: Vector) -> None:
    document = json.loads((VECTORS / f"{vector['name']}.json").read_text())
    _vector_validator(vector).validate(document)


JSON_INVALID = [v for v in INVALID if v["expect"] not in NOT_IN_JSON]


@pytest.mark.parametrize("vector", JSON_INVALID, ids=lambda v: v["name"])
def test_invalid_vectors_fail_their_schema(vector: Vector) -> None:
    schema = vector_type(vector)
    try:
        message = schema.FromString((VECTORS / f"{vector['name']}.binpb").read_bytes())
    except Exception:
        pytest.skip("does not parse: its fault is in the bytes")
    document = json_format.MessageToDict(message)
    validator = _vector_validator(vector)
    if not _in_json(message) or vector.get("rule_id", "-") in json.dumps(
        validator.schema
    ):
        return  # a zero JSON leaves out, or a rule the schema names as unchecked
    errors = list(validator.iter_errors(document))
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


# Every rule kind: the schema never refuses what protovalidate accepts, and
# refuses what it refuses wherever it says it checks the rule.


@pytest.fixture(scope="module")
def case_schemas(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, type[Message]], dict[str, jsonschema.Draft202012Validator]]:
    files = rule_cases.schema(tmp_path_factory.mktemp("json-cases"))
    classes = rule_cases.classes(files)
    sources = {file.name: file for file in files.file}
    validators = {}
    for name, kind in classes.items():
        schema = json.loads(json_schema.document(kind.DESCRIPTOR, sources))
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[name] = jsonschema.Draft202012Validator(schema)
    return classes, validators


def _says_everything(schema: object) -> bool:
    return "Not checked by this schema" not in json.dumps(schema)


def test_the_schema_agrees_with_protovalidate_on_every_rule_kind(
    case_schemas: tuple[
        dict[str, type[Message]], dict[str, jsonschema.Draft202012Validator]
    ],
) -> None:
    classes, validators = case_schemas
    complete = 0
    for kind in rule_kinds.catalogue():
        for name, message in rule_cases.messages(kind, 300, classes, f"json {kind}"):
            try:
                valid = not protovalidate.collect_violations(message)
            except protovalidate.EvaluationError:
                continue  # no verdict to hold the schema to
            try:
                document = json_format.MessageToDict(message)
            except (KeyError, TypeError, json_format.SerializeToJsonError):
                continue  # an Any of a type no pool has, an invalid duration: no JSON
            errors = list(validators[name].iter_errors(document))
            what = f"{kind} {name}: {document}: {[e.message for e in errors]}"
            if valid:
                assert not errors, what  # never stricter than the rules
            elif _says_everything(validators[name].schema) and _in_json(message):
                assert errors, what  # and as strict wherever it says so
                complete += 1
    assert complete > 10_000


def _in_json(message: Message) -> bool:
    """Whether the JSON shows every value a rule may refuse: proto3 JSON omits a
    field without presence at its zero value, and an empty list or map."""
    try:
        protovalidate.collect_violations(message)
    except protovalidate.EvaluationError:
        return False
    for violation in protovalidate.collect_violations(message):
        elements = violation.proto.field.elements if violation.proto.field else []
        if not elements:
            return True
        field = message.DESCRIPTOR.fields_by_name.get(elements[0].field_name)
        if field is None:
            return True  # a oneof
        value = getattr(message, field.name)
        shown = field.has_presence and not field.is_repeated
        if shown or (value if field.is_repeated else value != field.default_value):
            return True
    return False


def test_64_bit_bounds_are_a_pattern_of_exactly_the_range() -> None:
    pattern = re.compile(integer_pattern(-(2**53) - 1, 2**64 - 1))
    for value in (-(2**53) - 1, -1, 0, 1, 2**53 + 1, 2**64 - 1):
        assert pattern.fullmatch(str(value)), value
    for text in (str(-(2**53) - 2), str(2**64), "-0", "01", "+1", "1.0", ""):
        assert not pattern.fullmatch(text), text


@given(
    st.integers(-(2**64), 2**64),
    st.integers(0, 2**64),
    st.lists(st.integers(-(2**65), 2**65), max_size=20),
)
def test_an_integer_pattern_matches_the_range_and_nothing_else(
    low: int, width: int, probes: list[int]
) -> None:
    high = low + width
    pattern = re.compile(integer_pattern(low, high))
    for value in [low, high, low - 1, high + 1, *probes]:
        assert bool(pattern.fullmatch(str(value))) == (low <= value <= high), value
