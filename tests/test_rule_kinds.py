"""Every rule of validate.proto is enforced with protovalidate's verdict, or refused.

`rule_kinds.catalogue()` walks validate.proto's descriptor; `rule_cases`
holds a schema for each kind it names (a kind added by a future release
fails `test_every_rule_kind_has_cases` until it is placed) and draws
messages at and next to each rule's constants. For every kind, 1,000 of
them go to:

- protovalidate-python, the engine of record (the oracle: its violations);
- the Python reader (`validation.validate`: our plan where a type's rules
  are all the plan's, else protovalidate): it refuses exactly when
  protovalidate reports a violation (or `rule_error` when a rule cannot be
  evaluated), naming the first violation in the canonical order, worked out
  here independently from protovalidate's own list;
- the TypeScript reader (@bufbuild/protovalidate inside, through
  `verdicts.js`) and the C++ reader (its own subset, through `verdicts`):
  each prints Python's refusal byte for byte (reason, field path, rule id,
  words), or, for a kind it does not enforce, refuses the type in one line
  naming the rule.
"""

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import protovalidate
import pytest
from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from flower_app.protocol import field_rules, plan, rule_kinds, validation
from flower_app.protocol.rules import Limits, MetadataDecodeError
from tests import rule_cases
from tests.helpers import require

CASES = 1_000
"""Generated messages a rule kind."""
NO_POLICY = Limits(max_payload_bytes=1 << 30, max_epochs=1 << 30)
KINDS = rule_kinds.catalogue()
Refusal = list[str] | None
"""[reason, field path, rule id, detail], or None for a message that passes."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    return rule_cases.schema(tmp_path_factory.mktemp("rule-cases"))


@pytest.fixture(scope="module")
def schema_path(
    files: descriptor_pb2.FileDescriptorSet, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("rule-set") / "cases.binpb"
    path.write_bytes(files.SerializeToString())
    return path


@pytest.fixture(scope="module")
def classes(files: descriptor_pb2.FileDescriptorSet) -> dict[str, type[Message]]:
    return rule_cases.classes(files)


@pytest.fixture(scope="module")
def cases(classes: dict[str, type[Message]]) -> list[tuple[str, str, Message]]:
    """(kind, case type, message): CASES of every kind."""
    return [
        (kind, name, message)
        for kind in KINDS
        for name, message in rule_cases.messages(kind, CASES, classes, kind)
    ]


def test_every_rule_kind_has_cases() -> None:
    placed = set(rule_cases.variants())
    assert set(KINDS) - placed == set(), "place these kinds in tests/rule_cases.py"
    assert placed - set(KINDS) == set(), "kinds validate.proto does not have"


def test_the_catalogue_walks_validate_proto() -> None:
    """Independent count: every rule field of every rules message, predefined
    extensions and ignore's values, from the generated module's descriptors."""
    typed = [
        f.message_type
        for f in validate_pb2.FieldRules.DESCRIPTOR.fields
        if f.containing_oneof is not None and f.message_type is not None
    ]
    count = sum(len(rules.fields) for rules in typed)
    count += sum(1 for rules in typed if rules.extension_ranges)
    count += len(validate_pb2.Ignore.values()) - 1  # IGNORE_UNSPECIFIED sets nothing
    count += 3  # required, cel, cel_expression
    count += len(validate_pb2.MessageRules.DESCRIPTOR.fields)
    count += len(validate_pb2.OneofRules.DESCRIPTOR.fields)
    count += len(validate_pb2.PredefinedRules.DESCRIPTOR.fields)
    assert len(KINDS) == count == len(set(KINDS))
    assert {
        "string.max_len",
        "double.finite",
        "repeated.items",
        "int32.predefined",
    } < set(KINDS)
    assert {"message.cel", "oneof.required", "ignore.IGNORE_ALWAYS"} < set(KINDS)


def _path_key(proto: Any) -> tuple[Any, ...]:
    """Order violations of one case message: its fields by number, then
    elements by index or key, a field's own rules first; the message's own
    rules and its oneofs' last; then the rule's place in validate.proto."""
    elements = list(proto.field.elements) if proto.field is not None else []
    steps: list[tuple[Any, ...]] = []
    for element in elements:
        sub = element.subscript
        if element.field_number == 0:  # a oneof: after the fields and message rules
            steps.append((2,))
            continue
        steps.append((0, element.field_number))
        if sub is not None:
            value = sub.value.encode() if isinstance(sub.value, str) else int(sub.value)
            steps.append((0, value))
    rule = list(proto.rule.elements) if proto.rule is not None else []
    own = not rule or (
        rule[0].field_name in ("cel", "cel_expression", "oneof")
        and (rule[0].field_number in (3, 4, 5))
    )
    if own and not (elements and elements[-1].field_number == 0):
        steps.append((1,))  # the message's own rule: after its fields
    indices: list[Any] = []
    rules: Any = (
        validate_pb2.OneofRules.DESCRIPTOR
        if elements and elements[-1].field_number == 0
        else validate_pb2.MessageRules.DESCRIPTOR
        if own
        else validate_pb2.FieldRules.DESCRIPTOR
    )
    for element in rule:
        found = rules.fields_by_number.get(element.field_number) if rules else None
        indices.append(
            found.index if found is not None else 1000 + element.field_number
        )
        rules = found.message_type if found is not None else None
        if element.subscript is not None:
            indices.append(int(element.subscript.value))
    return (*steps, (9, *indices))


def oracle(message: Message) -> str | list[tuple[str, str]]:
    """protovalidate's verdict: "error", or its violations, canonical first."""
    try:
        found = protovalidate.collect_violations(message)
    except protovalidate.EvaluationError:
        return "error"
    ordered = sorted(found, key=lambda v: _path_key(v.proto))
    return [(_printed(v.proto), v.proto.rule_id) for v in ordered]


def _printed(proto: Any) -> str:
    """A protovalidate path as protobuf-es prints it."""
    text = ""
    for element in proto.field.elements if proto.field is not None else []:
        text += f".{element.field_name}" if text else element.field_name
        sub = element.subscript
        if sub is None:
            continue
        if isinstance(sub.value, str):
            quoted = sub.value
            for raw, escaped in (
                ("\\", "\\\\"),
                ('"', '\\"'),
                ("\r", "\\r"),
                ("\n", "\\n"),
            ):
                quoted = quoted.replace(raw, escaped)
            text += f'["{quoted}"]'
        elif isinstance(sub.value, bool):
            text += "[true]" if sub.value else "[false]"
        else:
            text += f"[{sub.value}]"
    return text


def python_refusal(message: Message) -> Refusal:
    try:
        validation.validate(message, NO_POLICY)
    except MetadataDecodeError as err:
        return [str(err.reason), err.field_path, err.rule_id, err.detail]
    return None


def test_python_gives_protovalidates_verdict_on_every_kind(
    cases: list[tuple[str, str, Message]],
) -> None:
    seen: dict[str, dict[str, int]] = {}
    for kind, name, message in cases:
        expected = oracle(message)
        mine = python_refusal(message)
        what = f"{kind} {name}: {message!r}: ours {mine}, protovalidate {expected}"
        if expected == "error":
            assert mine is not None, what
            assert mine[0] == "rule_error", what
        elif not expected:
            assert mine is None, what
        else:
            assert mine is not None, what
            assert (mine[1], mine[2]) == expected[0], what
            assert mine[0] == (
                "missing_field" if mine[2] == "required" else "out_of_range"
            )
        tally = seen.setdefault(kind, {"passed": 0, "refused": 0})
        tally["passed" if mine is None else "refused"] += 1
    assert all(sum(tally.values()) >= CASES for tally in seen.values())
    one_sided = {
        kind: tally
        for kind, tally in seen.items()
        if min(tally.values()) == 0 and kind not in NEVER_REFUSED
    }
    assert one_sided == {}, "the cases miss these kinds' edges"


NEVER_REFUSED = {
    *(kind for kind in KINDS if kind.endswith(".example")),  # annotations
    "ignore.IGNORE_ALWAYS",  # its field's rules never apply
}


PLAN_RULES = {"gt", "gte", "lt", "lte", "finite", "example"}
"""What the plan checks of a number type's rules (example: an annotation)."""


def test_the_plan_runs_only_where_every_rule_is_its_own(
    classes: dict[str, type[Message]],
) -> None:
    planned = set()
    for kind in KINDS:
        for name in rule_cases.cases_of(kind):
            descriptor = classes[name].DESCRIPTOR
            if not plan.plans(descriptor):
                continue
            planned.add(kind)
            used = {
                used
                for field in descriptor.fields
                if (rules := field_rules.buf_rules(field)) is not None
                for used in rule_kinds.field_kinds(rules)
            }
            for used_kind in used - {"required", "repeated.items"}:
                rule = used_kind.partition(".")[2]
                assert rule in PLAN_RULES or rule == "example", (name, used_kind)
    assert {"double.gt", "double.finite", "uint64.lte", "string.example"} <= planned
    assert (
        not {"string.max_len", "message.cel", "map.values", "repeated.unique"} & planned
    )
    exclusive = classes["cases.v1.Double_lt_2"].DESCRIPTOR  # lt below gt: "outside"
    assert not plan.plans(exclusive)


def _reader_replies(
    command: list[str], cases: list[tuple[str, str, Message]]
) -> list[dict[str, Any]]:
    lines = "".join(
        f"{name} {base64.b64encode(message.SerializeToString()).decode()}\n"
        for _, name, message in cases
    )
    done = subprocess.run(command, input=lines, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(replies) == len(cases)
    return replies


def _in_every_kind(cases: list[tuple[str, str, Message]]) -> Iterator[str]:
    yield from dict.fromkeys(kind for kind, _, _ in cases)


def test_typescript_prints_pythons_refusal_on_every_kind(
    typescript_build: Path, schema_path: Path, cases: list[tuple[str, str, Message]]
) -> None:
    node = require("node", "Node.js 20+ (Debian: nodejs)")
    command = [
        node,
        str(typescript_build / "verdicts.js"),
        "--schema",
        str(schema_path),
    ]
    for (kind, name, message), reply in zip(
        cases, _reader_replies(command, cases), strict=True
    ):
        what = f"{kind} {name}: {message!r}: TypeScript {reply}"
        assert "refused" not in reply, what  # @bufbuild/protovalidate applies them all
        assert reply["refusal"] == python_refusal(message), what
        if reply["refusal"] is not None and reply["refusal"][0] != "rule_error":
            assert reply["refusal"][1:3] in reply["theirs"], what


CPP_REFUSED = {
    "predefined.cel",
    *(kind for kind in KINDS if kind.endswith(".predefined")),
    *(
        f"string.{name}"
        for name in [
            "email",
            "hostname",
            "ip",
            "ipv4",
            "ipv6",
            "uri",
            "uri_ref",
            "address",
            "ip_with_prefixlen",
            "ipv4_with_prefixlen",
            "ipv6_with_prefixlen",
            "ip_prefix",
            "ipv4_prefix",
            "ipv6_prefix",
            "host_and_port",
        ]
    ),
}
"""What the C++ reader refuses at load, as proto/README.md says."""


def test_cpp_prints_pythons_refusal_or_refuses_the_rule(
    cpp_build: Path, schema_path: Path, cases: list[tuple[str, str, Message]]
) -> None:
    command = [str(cpp_build / "verdicts"), "--schema", str(schema_path)]
    refused: dict[str, str] = {}
    for (kind, name, message), reply in zip(
        cases, _reader_replies(command, cases), strict=True
    ):
        what = f"{kind} {name}: {message!r}: C++ {reply}"
        if "refused" in reply:
            refused[kind] = reply["refused"]
            continue
        assert reply["refusal"] == python_refusal(message), what
    assert set(refused) == CPP_REFUSED
    for kind, line in refused.items():
        shown = kind.replace("predefined.cel", "int32.predefined").split(".", 1)[-1]
        assert "\n" not in line
        assert f".{shown} is not enforced by this reader" in line
        assert line.startswith("cases/v1/cases.proto: cases.v1."), line


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("string(this) == '3'", "function `string` is not in this reader's CEL"),
        ("this < duration('1h')", "function `duration` is not in this reader's CEL"),
        ("this.foo(1)", "function `foo` is not in this reader's CEL"),
        ("0x10 > this", "hexadecimal literals are not in this reader's CEL"),
        ("this > ", "unexpected end"),
    ],
)
def test_cpp_refuses_cel_outside_its_subset_in_one_line(
    cpp_build: Path, tmp_path: Path, expression: str, said: str
) -> None:
    source = (
        'syntax = "proto3";\npackage sub.v1;\nimport "buf/validate/validate.proto";\n'
        'message M { int64 v = 1 [(buf.validate.field).cel = {id: "x", expression: '
        f"{json.dumps(expression)}}}]; }}\n"
    )
    files = rule_cases.compiled(
        {"sub/v1/sub.proto": source}, "sub/v1/sub.proto", tmp_path
    )
    (tmp_path / "set.binpb").write_bytes(files.SerializeToString())
    (tmp_path / "empty.binpb").write_bytes(b"")
    done = subprocess.run(
        [
            str(cpp_build / "consumer"),
            "--schema",
            str(tmp_path / "set.binpb"),
            "type.googleapis.com/sub.v1.M",
            str(tmp_path / "empty.binpb"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "consumer: sub/v1/sub.proto: sub.v1.M.v: (buf.validate.field).cel: "
    )
    assert said in line


def test_proto_readme_names_what_the_cpp_reader_refuses() -> None:
    text = (Path(rule_cases.__file__).parent.parent / "proto" / "README.md").read_text()
    paragraph = text[text.index("The C++ reader refuses, when it loads") :]
    paragraph = paragraph[: paragraph.index("\n\n")]
    named = set(re.findall(r"`(string\.\w+)`", paragraph))
    formats = {
        k for k in CPP_REFUSED if k.startswith("string.") and "predefined" not in k
    }
    assert named == formats
    assert "predefined rule" in paragraph
