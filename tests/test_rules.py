"""The schema's rules, enforced from the descriptor: every rule, both sides.

The expected outcomes are written out here by hand (the oracle), from the
rules as proto/flower_meta/v1/metadata.proto states them.
"""

import math
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from flower_app.app.settings import pyproject_run_config
from flower_app.protocol.rules import Excused, Limits, MetadataDecodeError, RuleError
from flower_app.protocol.validation import validate, validator
from flower_meta.v1 import options_pb2
from flower_meta.v1.metadata_pb2 import (
    EvaluateInstructions,
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainInstructions,
    TrainProcessMetadata,
)
from tests import rule_cases

TINY = 5e-324  # the smallest positive double
MAX = 1.7976931348623157e308
NAN, INF = math.nan, math.inf
TIME = "training_time_out_of_range: training_time: must be finite and >= 0, got "
LOSS = "loss_out_of_range: training_losses["


def _outcome(message: Message, limits: Limits | None = None) -> str:
    """Say "valid", or the reason code and detail of the refusal."""
    try:
        validate(message, limits or Limits())
    except MetadataDecodeError as err:
        return str(err)
    return "valid"


def _train(time: float | None = 1.0, losses: list[float] | None = None) -> Message:
    meta = TrainProcessMetadata(training_losses=losses or [])
    if time is not None:
        meta.training_time = time
    return meta


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_train(None), "missing_training_time: training_time: missing; it is required"),
        (_train(0.0), "valid"),
        (_train(-0.0), "valid"),
        (_train(MAX), "valid"),
        (
            _train(-TINY),
            TIME + "-5e-324",
        ),
        (
            _train(NAN),
            TIME + "NaN",
        ),
        (
            _train(INF),
            TIME + "Infinity",
        ),
        (
            _train(-INF),
            TIME + "-Infinity",
        ),
        (_train(losses=[0.0, TINY, MAX]), "valid"),
        (
            _train(losses=[-TINY]),
            LOSS + "0]: must be finite and >= 0, got -5e-324",
        ),
        (
            _train(losses=[0.1, NAN]),
            LOSS + "1]: must be finite and >= 0, got NaN",
        ),
        (
            _train(losses=[0.1, 0.2, INF]),
            LOSS + "2]: must be finite and >= 0, got Infinity",
        ),
        (
            _train(losses=[-INF]),
            LOSS + "0]: must be finite and >= 0, got -Infinity",
        ),
        (TrainProcessMetadata(training_time=1, converged=False), "valid"),
    ],
)
def test_train_metadata_rules(message: Message, expected: str) -> None:
    assert _outcome(message) == expected


def _without(name: str) -> Message:
    meta = EvaluateProcessMetadata(evaluation_time=1.0, loss=0.5, accuracy=0.5)
    meta.ClearField(name)  # type: ignore[arg-type]
    return meta


OUT = "evaluation_out_of_range: "


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            _without("evaluation_time"),
            "missing_evaluation_field: evaluation_time: missing; it is required",
        ),
        (_without("loss"), "missing_evaluation_field: loss: missing; it is required"),
        (
            _without("accuracy"),
            "missing_evaluation_field: accuracy: missing; it is required",
        ),
        (EvaluateProcessMetadata(evaluation_time=0, loss=0, accuracy=0), "valid"),
        (
            EvaluateProcessMetadata(
                evaluation_time=0, loss=0, accuracy=1, num_examples=0
            ),
            "valid",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=-TINY, loss=0, accuracy=0),
            OUT + "evaluation_time: must be finite and >= 0, got -5e-324",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=INF, loss=0, accuracy=0),
            OUT + "evaluation_time: must be finite and >= 0, got Infinity",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=0, loss=-TINY, accuracy=0),
            OUT + "loss: must be finite and >= 0, got -5e-324",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=0, loss=NAN, accuracy=0),
            OUT + "loss: must be finite and >= 0, got NaN",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=0, loss=INF, accuracy=0),
            OUT + "loss: must be finite and >= 0, got Infinity",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=0, loss=0, accuracy=-TINY),
            OUT + "accuracy: must be >= 0 and <= 1, got -5e-324",
        ),
        (
            EvaluateProcessMetadata(
                evaluation_time=0, loss=0, accuracy=1.0000000000000002
            ),
            OUT + "accuracy: must be >= 0 and <= 1, got 1.0000000000000002",
        ),
        (
            EvaluateProcessMetadata(evaluation_time=0, loss=0, accuracy=NAN),
            OUT + "accuracy: must be >= 0 and <= 1, got NaN",
        ),
    ],
)
def test_evaluate_metadata_rules(message: Message, expected: str) -> None:
    assert _outcome(message) == expected


def _instructions(**fields: float) -> Message:
    values = {
        "local_epochs": 1,
        "batch_size": 1,
        "learning_rate": TINY,
        "convergence_tolerance": 0.0,
    } | fields
    return TrainInstructions(**values)  # type: ignore[arg-type]


BAD = "invalid_instructions: "


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_instructions(), "valid"),
        (_instructions(local_epochs=0), BAD + "local_epochs: must be >= 1, got 0"),
        (_instructions(batch_size=0), BAD + "batch_size: must be >= 1, got 0"),
        (
            _instructions(learning_rate=0.0),
            BAD + "learning_rate: must be finite and > 0, got 0",
        ),
        (
            _instructions(learning_rate=INF),
            BAD + "learning_rate: must be finite and > 0, got Infinity",
        ),
        (
            _instructions(learning_rate=NAN),
            BAD + "learning_rate: must be finite and > 0, got NaN",
        ),
        (
            _instructions(convergence_tolerance=-TINY),
            BAD + "convergence_tolerance: must be finite and >= 0, got -5e-324",
        ),
        (
            _instructions(convergence_tolerance=INF),
            BAD + "convergence_tolerance: must be finite and >= 0, got Infinity",
        ),
        (EvaluateInstructions(), "valid"),
    ],
)
def test_instruction_rules(message: Message, expected: str) -> None:
    assert _outcome(message) == expected


@pytest.mark.parametrize(
    ("epochs", "limits", "expected"),
    [
        (3, Limits(max_epochs=3), "valid"),
        (
            4,
            Limits(max_epochs=3),
            "too_many_epochs: training_losses: 4 epochs exceed the limit of 3 "
            "(run config max-epochs)",
        ),
        (5, Limits(expected_epochs=5), "valid"),
        (
            4,
            Limits(expected_epochs=5),
            "epochs_missing: training_losses: epochs 5..5 are missing: the server "
            "asked for 5 local epochs",
        ),
        (0, Limits(expected_epochs=None), "valid"),
        (
            0,
            Limits(expected_epochs=1),
            "epochs_missing: training_losses: epochs 1..1 are missing: the server "
            "asked for 1 local epochs",
        ),
    ],
)
def test_epoch_policy_on_both_sides(epochs: int, limits: Limits, expected: str) -> None:
    assert _outcome(_train(losses=[0.5] * epochs), limits) == expected


def test_the_schema_rules_come_before_the_policy() -> None:
    assert _outcome(_train(None), Limits(expected_epochs=2)).startswith(
        "missing_training_time: "
    )
    assert _outcome(_train(losses=[NAN] * 4), Limits(max_epochs=3)).startswith(
        "loss_out_of_range: "
    )


def test_nested_messages_are_checked_with_their_path() -> None:
    record = MetadataLogRecord(accepted=TrainProcessMetadata(training_time=-1.0))
    assert _outcome(record) == (
        "training_time_out_of_range: accepted.training_time: must be finite "
        "and >= 0, got -1"
    )
    assert _outcome(MetadataLogRecord()) == "valid"


def _where(message: Message, limits: Limits | None = None) -> tuple[str, str]:
    """The field path and rule id of the refusal."""
    with pytest.raises(MetadataDecodeError) as refused:
        validate(message, limits or Limits())
    return refused.value.field_path, refused.value.rule_id


@pytest.mark.parametrize(
    ("message", "limits", "expected"),
    [  # rule ids as protovalidate's buf/validate/validate.proto names them
        (_train(None), None, ("training_time", "required")),
        (_train(-1.0), None, ("training_time", "double.gte")),
        (_train(INF), None, ("training_time", "double.finite")),
        # NaN breaks the bound and finiteness: the bound comes first in
        # validate.proto, and both protovalidates name it first
        (_train(NAN), None, ("training_time", "double.gte")),
        (_train(losses=[0.5, 0.4, -0.1]), None, ("training_losses[2]", "double.gte")),
        (
            _train(losses=[0.5] * 3),
            Limits(max_epochs=2),
            ("training_losses", "run_config.max_epochs"),
        ),
        (
            _train(losses=[0.5] * 3),
            Limits(expected_epochs=4),
            ("training_losses", "run_config.local_epochs"),
        ),
        (
            EvaluateProcessMetadata(evaluation_time=1, loss=0.1, accuracy=1.5),
            None,
            ("accuracy", "double.gte_lte"),
        ),
        (
            EvaluateProcessMetadata(evaluation_time=1, loss=0.1, accuracy=NAN),
            None,
            ("accuracy", "double.gte_lte"),
        ),
        (
            TrainInstructions(local_epochs=0, learning_rate=0.1, batch_size=1),
            None,
            ("local_epochs", "uint32.gte"),
        ),
        (
            TrainInstructions(local_epochs=1, learning_rate=0.0, batch_size=1),
            None,
            ("learning_rate", "double.gt"),
        ),
        (
            MetadataLogRecord(accepted=TrainProcessMetadata(training_time=-1.0)),
            None,
            ("accepted.training_time", "double.gte"),
        ),
    ],
)
def test_a_refusal_names_its_field_and_rule(
    message: Message, limits: Limits | None, expected: tuple[str, str]
) -> None:
    assert _where(message, limits) == expected


@pytest.mark.parametrize(
    ("spec", "x", "expected"),
    [
        (options_pb2.FieldSpec(gt=0, lte=1), 0.0, "double.gt_lte"),
        (options_pb2.FieldSpec(gte=0, lt=1), 1.0, "double.gte_lt"),
        (options_pb2.FieldSpec(gt=0, lt=1), 1.0, "double.gt_lt"),
        (options_pb2.FieldSpec(lte=1), 2.0, "double.lte"),
        (options_pb2.FieldSpec(lt=1, finite=True), 1.0, "double.lt"),
        (options_pb2.FieldSpec(finite=True), -INF, "double.finite"),
    ],
)
def test_each_bound_pair_has_protovalidates_rule_id(
    spec: options_pb2.FieldSpec, x: float, expected: str
) -> None:
    kind = message_factory.GetMessageClass(_message_with(spec))
    assert _where(kind(**{"x": x})) == ("x", expected)


def test_an_integer_field_is_named_by_its_type() -> None:
    kind = message_factory.GetMessageClass(
        _message_with(
            options_pb2.FieldSpec(lte=3),
            kind=descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64,
        )
    )
    assert _where(kind(**{"x": 4})) == ("x", "sfixed64.lte")


@given(
    time=st.none() | st.floats(),
    losses=st.lists(st.floats(), max_size=8),
)
def test_train_rules_match_an_independent_reading(
    time: float | None, losses: list[float]
) -> None:
    """The rules, restated here without the library: time present, finite, >= 0..."""
    if time is None:
        expected = "missing_training_time"
    elif not (math.isfinite(time) and time >= 0):
        expected = "training_time_out_of_range"
    elif not all(math.isfinite(x) and x >= 0 for x in losses):
        expected = "loss_out_of_range"
    else:
        expected = "valid"
    assert _outcome(_train(time, losses)).split(":")[0] == expected


def test_by_default_4096_epochs_pass_and_4097_do_not() -> None:
    """The limit pyproject.toml documents (max-epochs) is the library's default."""
    assert pyproject_run_config()["max-epochs"] == 4096
    validate(TrainProcessMetadata(training_time=1.0, training_losses=[0.5] * 4096))
    with pytest.raises(MetadataDecodeError) as caught:
        validate(TrainProcessMetadata(training_time=1.0, training_losses=[0.5] * 4097))
    assert caught.value.reason == "too_many_epochs"


def _message_with(
    spec: options_pb2.FieldSpec,
    name: str = "x",
    kind: int = descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    label: int = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
) -> descriptor.Descriptor:
    """A message type whose one field (double `x` unless told) carries `spec`."""
    pool = descriptor_pool.DescriptorPool()
    for file in (descriptor_pb2.DESCRIPTOR, options_pb2.DESCRIPTOR):
        found = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(found)
        pool.Add(found)
    schema = descriptor_pb2.FileDescriptorProto(
        name="two_bounds.proto",
        package="test",
        syntax="proto3",
        dependency=[options_pb2.DESCRIPTOR.name],
    )
    field = schema.message_type.add(name="M").field.add(
        name=name,
        number=1,
        type=kind,
        label=label,
    )
    field.options.Extensions[options_pb2.field].CopyFrom(spec)
    pool.Add(schema)
    return pool.FindMessageTypeByName("test.M")


@pytest.mark.parametrize(
    "spec",
    [
        options_pb2.FieldSpec(gte=0, gt=0),
        options_pb2.FieldSpec(lte=1, lt=1),
        options_pb2.FieldSpec(gte=0, gt=0, lte=1, lt=1),
    ],
)
def test_a_field_with_two_bounds_on_one_side_is_a_schema_error(
    spec: options_pb2.FieldSpec,
) -> None:
    with pytest.raises(RuleError, match="at most one lower and one upper bound"):
        validator(_message_with(spec))


@pytest.mark.parametrize(
    ("x", "passes"), [(0.0, False), (0.5, True), (1.0, True), (1.5, False)]
)
def test_one_bound_on_each_side_is_enforced(x: float, passes: bool) -> None:
    kind = message_factory.GetMessageClass(
        _message_with(options_pb2.FieldSpec(gt=0, lte=1))
    )
    if passes:
        validate(kind(**{"x": x}))
        return
    with pytest.raises(MetadataDecodeError, match="must be > 0 and <= 1"):
        validate(kind(**{"x": x}))


@pytest.mark.parametrize("name", ["from", "class", "lambda", "None", "def"])
@pytest.mark.parametrize("repeated", [False, True])
def test_a_field_named_like_a_python_keyword_is_only_data(
    name: str, repeated: bool
) -> None:
    label = descriptor_pb2.FieldDescriptorProto
    kind = message_factory.GetMessageClass(
        _message_with(
            options_pb2.FieldSpec(gte=0),
            name,
            label=label.LABEL_REPEATED if repeated else label.LABEL_OPTIONAL,
        )
    )
    good, bad = ([1.0, 2.0], [1.0, -2.0]) if repeated else (1.0, -2.0)
    validate(kind(**{name: good}))
    with pytest.raises(MetadataDecodeError) as refused:
        validate(kind(**{name: bad}))
    assert refused.value.reason == "out_of_range"
    where = f"{name}[1]" if repeated else name
    assert refused.value.detail == f"{where}: must be >= 0, got -2"


def _passes(spec: options_pb2.FieldSpec, value: float, kind: int) -> bool:
    message = message_factory.GetMessageClass(_message_with(spec, kind=kind))
    try:
        validate(message(**{"x": value}))
    except MetadataDecodeError:
        return False
    return True


DOUBLE = descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE
INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64


@pytest.mark.parametrize(
    ("spec", "value", "kind", "passes"),
    [
        # Open bounds, one double either side of the bound.
        (options_pb2.FieldSpec(gt=0), 0.0, DOUBLE, False),
        (options_pb2.FieldSpec(gt=0), 5e-324, DOUBLE, True),
        (options_pb2.FieldSpec(lt=1), 1.0, DOUBLE, False),
        (options_pb2.FieldSpec(lt=1), math.nextafter(1.0, 0.0), DOUBLE, True),
        (options_pb2.FieldSpec(finite=True), sys.float_info.max, DOUBLE, True),
        (options_pb2.FieldSpec(finite=True), -sys.float_info.max, DOUBLE, True),
        (options_pb2.FieldSpec(finite=True), math.inf, DOUBLE, False),
        (options_pb2.FieldSpec(finite=True), math.nan, DOUBLE, False),
        (options_pb2.FieldSpec(gte=0), math.inf, DOUBLE, True),  # not finite
        (options_pb2.FieldSpec(gte=0), math.nan, DOUBLE, False),
        # Integers are compared with the double bound exactly.
        (options_pb2.FieldSpec(gt=0), 0, INT64, False),
        (options_pb2.FieldSpec(gt=0), 1, INT64, True),
        (options_pb2.FieldSpec(lte=2.0**53), 2**53, INT64, True),
        (options_pb2.FieldSpec(lte=2.0**53), 2**53 + 1, INT64, False),
        (options_pb2.FieldSpec(lt=2.0**53), 2**53 - 1, INT64, True),
        # Beyond 2^53 doubles are 2^(k-52) apart: integers between them count.
        (options_pb2.FieldSpec(gt=2.0**60), 2**60 + 1, INT64, True),
        (options_pb2.FieldSpec(gt=2.0**60), 2**60, INT64, False),
        (options_pb2.FieldSpec(lt=2.0**60), 2**60 - 1, INT64, True),
        (options_pb2.FieldSpec(gt=0.5), 1, INT64, True),
        (options_pb2.FieldSpec(lt=0.5), 0, INT64, True),
        (options_pb2.FieldSpec(lt=0.5), 1, INT64, False),
        (options_pb2.FieldSpec(finite=True), 2**62, INT64, True),
        (options_pb2.FieldSpec(gt=-math.inf), -sys.float_info.max, DOUBLE, True),
        (options_pb2.FieldSpec(gt=-math.inf), -math.inf, DOUBLE, False),
    ],
)
def test_bounds_are_exact_at_their_edges(
    spec: options_pb2.FieldSpec, value: float, kind: int, passes: bool
) -> None:
    assert _passes(spec, value, kind) is passes


@pytest.mark.parametrize(
    "spec",
    [
        options_pb2.FieldSpec(gte=5, lte=1),
        options_pb2.FieldSpec(gt=1, lt=1),
        options_pb2.FieldSpec(gt=math.inf),
        options_pb2.FieldSpec(lt=-math.inf),
    ],
)
def test_bounds_no_value_can_meet_are_a_schema_error(
    spec: options_pb2.FieldSpec,
) -> None:
    with pytest.raises(RuleError, match=r"^test\.M\.x: no value can meet"):
        validator(_message_with(spec))


_TYPE = descriptor_pb2.FieldDescriptorProto


@pytest.mark.parametrize(
    ("spec", "kind", "label", "problem"),
    [
        (
            options_pb2.FieldSpec(required=True),
            _TYPE.TYPE_DOUBLE,
            _TYPE.LABEL_REPEATED,
            "required on a repeated field is not supported",
        ),
        (
            options_pb2.FieldSpec(gte=1),
            _TYPE.TYPE_STRING,
            _TYPE.LABEL_OPTIONAL,
            ">= 1 applies to number fields only",
        ),
        (
            options_pb2.FieldSpec(finite=True),
            _TYPE.TYPE_BOOL,
            _TYPE.LABEL_OPTIONAL,
            "finite applies to number fields only",
        ),
        (
            options_pb2.FieldSpec(gte=math.nan),
            _TYPE.TYPE_DOUBLE,
            _TYPE.LABEL_OPTIONAL,
            "a bound is NaN",
        ),
    ],
)
def test_a_rule_no_validator_can_apply_is_a_schema_error_naming_the_field(
    spec: options_pb2.FieldSpec, kind: int, label: int, problem: str
) -> None:
    with pytest.raises(RuleError) as refused:
        validator(_message_with(spec, kind=kind, label=label))
    assert str(refused.value) == f"test.M.x: {problem}"


def test_required_without_presence_is_a_schema_error_not_dropped() -> None:
    message = _message_with(options_pb2.FieldSpec(required=True))
    assert not message.fields_by_name["x"].has_presence  # proto3, no `optional`
    with pytest.raises(RuleError, match=r"^test\.M\.x: required needs explicit"):
        validator(message)


# buf.validate rules beyond the plan's, in a user's own type: each one
# protovalidate enforces is enforced (issue: once compiled and ignored).

_HEAD = (
    'syntax = "proto3";\npackage own.v1;\nimport "buf/validate/validate.proto";\n'
    'import "google/protobuf/duration.proto";\n'
)


def _own(body: str, tmp_path: Path, name: str = "M") -> Any:
    """Compile a user's message `name` with `body` (and its neighbours)."""
    files = rule_cases.compiled(
        {"own/v1/own.proto": _HEAD + body}, "own/v1/own.proto", tmp_path
    )
    return rule_cases.classes_in(files, "own/v1/own.proto")[f"own.v1.{name}"]


def _verdict(message: Message) -> tuple[str, str, str] | None:
    try:
        validate(message, Limits())
    except MetadataDecodeError as err:
        return err.reason, err.field_path, err.rule_id
    return None


def test_rules_on_a_maps_message_values_are_enforced(tmp_path: Path) -> None:
    kind = _own(
        "message Inner { int32 x = 1 [(buf.validate.field).int32.gt = 0]; }\n"
        "message M { map<string, Inner> inner = 1; }\n",
        tmp_path,
    )
    message = kind()
    message.inner["a"].x = 1
    assert _verdict(message) is None
    message.inner["b"].x = -1
    assert _verdict(message) == ("out_of_range", 'inner["b"].x', "int32.gt")


@pytest.mark.parametrize(
    ("rule", "value", "passes"),
    [
        ("int64.gt = 9007199254740993", 2**53 + 1, False),
        ("int64.gt = 9007199254740993", 2**53 + 2, True),
        ("int64.lte = 9007199254740993", 2**53 + 1, True),
        ("int64.lte = 9007199254740993", 2**53 + 2, False),
        ("uint64.lt = 18446744073709551615", 2**64 - 1, False),
        ("uint64.lt = 18446744073709551615", 2**64 - 2, True),
        ("sfixed64.gte = -9223372036854775807", -(2**63), False),
    ],
)
def test_64_bit_bounds_compare_integers_exactly(
    rule: str, value: int, passes: bool, tmp_path: Path
) -> None:
    kind_name = rule.split(".")[0]
    kind = _own(
        f"message M {{ {kind_name} v = 1 [(buf.validate.field).{rule}]; }}\n", tmp_path
    )
    verdict = _verdict(kind(v=value))
    assert (verdict is None) is passes, verdict


def test_an_empty_duration_bound_is_zero_seconds(tmp_path: Path) -> None:
    kind = _own(
        "message M { google.protobuf.Duration d = 1 "
        "[(buf.validate.field).duration.lt = {}]; }\n",
        tmp_path,
    )
    below, above = kind(), kind()
    below.d.FromNanoseconds(-1)
    above.d.FromNanoseconds(1)
    assert _verdict(below) is None
    assert _verdict(above) == ("out_of_range", "d", "duration.lt")
    with pytest.raises(MetadataDecodeError, match="d: must be less than 0s"):
        validate(above)


def test_message_and_oneof_rules_are_enforced(tmp_path: Path) -> None:
    kind = _own(
        "message M {\n"
        '  option (buf.validate.message).cel = {id: "order", expression: '
        '"this.low <= this.high", message: "low must not exceed high"};\n'
        "  int32 low = 1; int32 high = 2;\n"
        "  oneof source { option (buf.validate.oneof).required = true;\n"
        "    string dataset = 3; uint32 synthetic = 4; }\n"
        "}\n",
        tmp_path,
    )
    assert _verdict(kind(low=1, high=2, dataset="x")) is None
    assert _verdict(kind(low=1, high=2)) == ("missing_field", "source", "required")
    with pytest.raises(MetadataDecodeError) as refused:
        validate(kind(low=3, high=2, synthetic=5))
    assert refused.value.rule_id == "order"
    assert refused.value.detail == "low must not exceed high"


def test_an_example_is_an_annotation_not_a_rule(tmp_path: Path) -> None:
    kind = _own(
        "message M { double v = 1 [(buf.validate.field).double = "
        "{example: 3, gte: 0}]; string s = 2 [(buf.validate.field).string.example = "
        '"cpu"]; }\n',
        tmp_path,
    )
    validator(kind.DESCRIPTOR)  # compiles: `example` is no refusal
    assert _verdict(kind(v=1, s="gpu")) is None
    assert _verdict(kind(v=-1)) == ("out_of_range", "v", "double.gte")


def test_a_field_the_node_withheld_is_not_checked_on_either_path(
    tmp_path: Path,
) -> None:
    kind = _own(
        "message M { uint32 n = 1 [(buf.validate.field).uint32.gte = 1]; "
        "string s = 2 [(buf.validate.field).string.max_len = 2]; }\n",
        tmp_path,
    )
    assert _verdict(kind(s="ab")) == ("out_of_range", "n", "uint32.gte")
    validate(kind(s="ab"), Limits(), Excused(withheld=frozenset({"n"})))
