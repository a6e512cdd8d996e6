"""protovalidate, the ecosystem's validator, is the reference for the rules.

Every message type of proto/ and of the fixtures' own `.proto` carries its
rules as `buf.validate` annotations; a fixture that writes them the v1.0
way, in `(flower_meta.v1.field)`, is given the same rules as buf.validate
(`codegen.restate`). Then the golden vectors and 10,000
generated messages a type, parsed from the same bytes, go to both
validators: protovalidate (the compiled reference, on Google-runtime
messages) and `validation.validate`. They must agree on every verdict, and a
refusal here must name a field path and rule id protovalidate names too.
The epoch policy, which depends on the run config, is not a schema rule
and is switched off.

The TypeScript reader (`examples/typescript/src/rules.ts`, which applies
the rules with @bufbuild/protovalidate) is held to the Python reader on the
same payloads through `verdicts.ts`: the vectors and 10,000 generated
payloads of each proto/ type, refused byte for byte alike. Every rule kind
of validate.proto, in every reader: `test_rule_kinds.py`.
"""

import base64
import importlib
import json
import math
import random
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from flower_app.codegen.generate import generate
from flower_app.protocol import rules, validation
from flower_app.protocol.field_rules import number_rule
from flower_app.protocol.run_schema import file_descriptor_set
from flower_app.protocol.schema import NUMBER_KINDS
from flower_meta.v1 import metadata_pb2
from tests.helpers import FIXTURES, MANIFEST, VECTORS, compile_fixture, require
from tests.restate import restated

TALLY = "acme/tally/v1/tally.proto"
"""A user's own type whose rules are `buf.validate` annotations."""
CASES = 10_000
"""Generated messages a type."""
NO_EPOCH_POLICY = rules.Limits(max_payload_bytes=1 << 30, max_epochs=1 << 30)
Verdict = tuple[str, str] | None
"""(field path, rule id) of a refusal, or None for a message that passes."""
_BOUNDS: tuple[Literal["gt", "gte", "lt", "lte"], ...] = ("gt", "gte", "lt", "lte")


@pytest.fixture(scope="module")
def schema(
    tmp_path_factory: pytest.TempPathFactory,
) -> descriptor_pb2.FileDescriptorSet:
    """proto/ and the fixtures' own `.proto`, as one set."""
    out = tmp_path_factory.mktemp("fixtures") / "fixtures.binpb"
    compile_fixture("--include_imports", f"-o{out}")
    files = file_descriptor_set([metadata_pb2.DESCRIPTOR])
    have = {file.name for file in files.file}
    fixtures = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    files.file.extend(f for f in fixtures.file if f.name not in have)
    return files


def _classes(files: descriptor_pb2.FileDescriptorSet) -> dict[str, type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return {
        message.full_name: message_factory.GetMessageClass(message)
        for file in files.file
        if not file.name.startswith(("google/", "buf/"))
        for message in _messages(pool.FindFileByName(file.name).message_types_by_name)
    }


def _messages(top: Mapping[str, Descriptor]) -> Iterator[Descriptor]:
    for message in top.values():
        if not message.GetOptions().map_entry:
            yield message
            yield from _messages(message.nested_types_by_name)


def ours(message: Message) -> Verdict:
    try:
        validation.validate(message, NO_EPOCH_POLICY)
    except rules.MetadataDecodeError as err:
        return err.field_path, err.rule_id
    return None


def theirs(message: Message) -> list[tuple[str, str]]:
    try:
        protovalidate.validate(message)
    except protovalidate.ValidationError as err:
        return [(_path(v.proto.field), v.proto.rule_id) for v in err.violations]
    return []


def _path(field: Any) -> str:
    """A protovalidate field path as the project writes it: "a.b[3]"."""
    parts = []
    for element in field.elements:
        subscript = element.subscript
        index = (
            f"[{subscript.value}]" if subscript and subscript.field == "index" else ""
        )
        parts.append(f"{element.field_name}{index}")
    return ".".join(parts)


def _agree(mine: Verdict, reference: list[tuple[str, str]], what: str) -> None:
    if mine is None:
        assert reference == [], f"{what}: protovalidate refuses {reference}"
    else:
        assert mine in reference, f"{what}: we refuse {mine}, protovalidate {reference}"


# Generated messages: every field, often at or next to a bound.

_EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 5e-324, -5e-324, 1e308, -1e308]
_SPECIALS = [math.inf, -math.inf, math.nan]


def _double(draw: random.Random, field: Any) -> float:
    rule = number_rule(field)  # buf.validate's bounds or the v1.0 option's
    near = [bound for _, bound in rule.bounds] if rule is not None else []
    roll = draw.random()
    if near and roll < 0.4:
        bound = draw.choice(near)
        return float(
            draw.choice(
                [
                    bound,
                    math.nextafter(bound, -math.inf),
                    math.nextafter(bound, math.inf),
                ]
            )
        )
    if roll < 0.6:
        return float(draw.choice(_EDGES))
    if roll < 0.7:
        return float(draw.choice(_SPECIALS))
    return draw.uniform(-3, 3) * 10.0 ** draw.randint(-5, 5)


_INTEGERS = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "fixed32": (0, 2**32 - 1),
    "fixed64": (0, 2**64 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
}


def _scalar(draw: random.Random, field: Any) -> object:
    kind = NUMBER_KINDS.get(field.type)
    if kind in {"double", "float"}:
        return _double(draw, field)
    if kind is not None:
        low, high = _INTEGERS[kind]
        return draw.choice([low, high, 0, 1, 2, max(low, -1), draw.randint(low, high)])
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw.random() < 0.5
    if field.type == FieldDescriptor.TYPE_STRING:
        return draw.choice(["", "a", "é", "train_metadata", "x" * 40])
    if field.type == FieldDescriptor.TYPE_BYTES:
        return draw.randbytes(draw.randint(0, 8))
    if field.type == FieldDescriptor.TYPE_ENUM:
        return draw.choice([v.number for v in field.enum_type.values] + [99])
    raise AssertionError(f"no generator for {field.full_name}")


def fill(message: Message, draw: random.Random, depth: int = 0) -> Message:
    """Set a random choice of `message`'s fields to random values."""
    for field in message.DESCRIPTOR.fields:
        if draw.random() < 0.25:
            continue  # absent
        name = field.name
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for _ in range(draw.randint(0, 2)):
                    key = draw.choice(["a", "b", "accuracy"])
                    getattr(message, name)[key] = _scalar(draw, value_field)
            elif field.message_type.full_name.startswith("google.protobuf."):
                if field.message_type.full_name == "google.protobuf.Timestamp":
                    getattr(message, name).seconds = draw.randint(0, 2**33)
            elif depth < 2:
                for _ in range(draw.randint(0, 2) if field.is_repeated else 1):
                    child = getattr(message, name)
                    inner = child.add() if field.is_repeated else child
                    fill(inner, draw, depth + 1)
                    if not field.is_repeated:
                        child.SetInParent()
        elif field.is_repeated:
            getattr(message, name).extend(
                _scalar(draw, field) for _ in range(draw.randint(0, 6))
            )
        else:
            setattr(message, name, _scalar(draw, field))
    return message


@pytest.fixture(scope="module")
def both(
    schema: descriptor_pb2.FileDescriptorSet,
) -> tuple[dict[str, type[Message]], dict[str, type[Message]]]:
    """Each type as this project reads it, and with its rules as buf.validate."""
    return _classes(schema), _classes(restated(schema))


TYPES = [
    *(m.full_name for m in _messages(metadata_pb2.DESCRIPTOR.message_types_by_name)),
    "acme.stats.v1.ClientStats",
]


def test_every_type_with_rules_carries_them_as_buf_validate(
    schema: descriptor_pb2.FileDescriptorSet,
) -> None:
    tag = b"\xba\x48"  # field 1159 (buf.validate.field), length-delimited
    ruled = {
        f"{file.package}.{message.name}"
        for file in restated(schema).file
        if not file.name.startswith(("google/", "buf/"))
        for message in file.message_type
        if any(tag in field.options.SerializeToString() for field in message.field)
    }
    written = {file.name: file for file in schema.file}
    for file in restated(schema).file:
        if file.name.startswith("flower_meta/"):  # annotated as protovalidate reads it
            assert file == written[file.name], file.name
    assert ruled == {
        "flower_meta.v1.TrainProcessMetadata",
        "flower_meta.v1.EvaluateProcessMetadata",
        "flower_meta.v1.TrainInstructions",
        "acme.stats.v1.ClientStats",
    }


def _parses(vector: dict[str, str]) -> bool:
    name = vector["type_url"].rsplit("/", 1)[-1]
    if name not in TYPES:
        return False  # a wrong or unknown type URL: refused before any rule
    try:
        getattr(metadata_pb2, name.rsplit(".", 1)[-1]).FromString(
            (VECTORS / f"{vector['name']}.binpb").read_bytes()
        )
    except DecodeError:
        return False  # malformed bytes: refused before any rule
    return True


PARSED = [vector for vector in MANIFEST if _parses(vector)]


@pytest.mark.parametrize("vector", PARSED, ids=[v["name"] for v in PARSED])
def test_the_golden_vectors_get_protovalidates_verdict(
    vector: dict[str, str],
    both: tuple[dict[str, type[Message]], dict[str, type[Message]]],
) -> None:
    mine, annotated = both
    name = vector["type_url"].rsplit("/", 1)[-1]
    payload = (VECTORS / f"{vector['name']}.binpb").read_bytes()
    verdict = ours(mine[name].FromString(payload))
    _agree(verdict, theirs(annotated[name].FromString(payload)), vector["name"])
    assert (verdict is None) == (vector["expect"] == "valid")


@pytest.mark.parametrize("name", TYPES)
def test_generated_messages_get_protovalidates_verdict(
    name: str,
    both: tuple[dict[str, type[Message]], dict[str, type[Message]]],
) -> None:
    mine, annotated = both
    draw = random.Random(name)
    verdicts = {"accepted": 0, "refused": 0}
    for case in range(CASES):
        message = fill(mine[name](), draw)
        data = message.SerializeToString()
        mine_verdict = ours(message)
        _agree(
            mine_verdict,
            theirs(annotated[name].FromString(data)),
            f"case {case}: {message}",
        )
        verdicts["accepted" if mine_verdict is None else "refused"] += 1
    if name in {"flower_meta.v1.TrainProcessMetadata", "acme.stats.v1.ClientStats"}:
        assert min(verdicts.values()) > CASES // 50, verdicts  # both, hundreds of times


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[Message]]:
    """A user's own type with its rules written as buf.validate, generated the
    way a user generates it (`flower-meta generate`)."""
    out = tmp_path_factory.mktemp("tally")
    generate([Path(TALLY)], [FIXTURES], out)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("acme.tally.v1.tally_pb2").ClientTally
    finally:
        sys.path.remove(str(out))


def test_a_users_buf_validate_rules_get_protovalidates_verdict(
    tally: type[Message],
) -> None:
    """No restating: this project's validator reads the annotations."""
    draw = random.Random(TALLY)
    verdicts = {"accepted": 0, "refused": 0}
    for case in range(CASES):
        message = fill(tally(), draw)
        mine = ours(message)
        _agree(mine, theirs(message), f"case {case}: {message}")
        verdicts["accepted" if mine is None else "refused"] += 1
    assert min(verdicts.values()) > CASES // 50, verdicts
    keyword = tally(**{"wall_seconds": 1.0, "examples": 3, "from": -1.0})
    assert ours(keyword) == ("from", "double.gte")
    assert ("from", "double.gte") in theirs(keyword)


def test_the_typescript_reader_gets_protovalidate_es_verdict(
    typescript_build: Path,
    both: tuple[dict[str, type[Message]], dict[str, type[Message]]],
) -> None:
    """The vectors and 10,000 generated payloads a proto/ type: the TypeScript
    reader refuses as the Python reader does, naming a violation of
    @bufbuild/protovalidate's."""
    mine, _ = both
    readable = [  # protobuf-es refuses a wrong wire type itself (see the manifest)
        v
        for v in PARSED
        if v.get("expect_by_reader", {}).get("typescript") != "malformed"
    ]
    cases: list[tuple[str, bytes]] = [
        (
            v["type_url"].rsplit("/", 1)[-1],
            (VECTORS / f"{v['name']}.binpb").read_bytes(),
        )
        for v in readable
    ]
    own = [name for name in TYPES if name.startswith("flower_meta.")]
    for name in own:
        draw = random.Random(f"typescript {name}")
        cases += [
            (name, fill(mine[name](), draw).SerializeToString()) for _ in range(CASES)
        ]
    node = require("node", "Node.js 20+ (Debian: nodejs)")
    lines = "".join(
        f"{name} {base64.b64encode(data).decode()}\n" for name, data in cases
    )
    done = subprocess.run(
        [node, str(typescript_build / "verdicts.js")],
        input=lines,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(replies) == len(cases)
    refused = dict.fromkeys(own, 0)
    for (name, data), reply in zip(cases, replies, strict=True):
        python = refusal(mine[name].FromString(data))
        what = f"{name} {data!r}: TypeScript {reply}, Python {python}"
        assert reply["refusal"] == python, what
        if python is not None:
            assert python[1:3] in reply["theirs"], what
        refused[name] += reply["refusal"] is not None
    ruled = ["TrainProcessMetadata", "EvaluateProcessMetadata", "TrainInstructions"]
    for name in ruled:  # both verdicts, hundreds of times
        assert CASES // 50 < refused[f"flower_meta.v1.{name}"] < CASES, refused


def refusal(message: Message) -> list[str] | None:
    """The Python reader's refusal: reason, field path, rule id, detail."""
    try:
        validation.validate(message, NO_EPOCH_POLICY)
    except rules.MetadataDecodeError as err:
        return [str(err.reason), err.field_path, err.rule_id, err.detail]
    return None
