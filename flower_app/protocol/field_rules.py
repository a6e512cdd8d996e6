"""The rules a schema sets, read from its descriptors as protovalidate reads them.

A field's rules are protovalidate's `(buf.validate.field)` options, a
message's and a oneof's `(buf.validate.message)` and `(buf.validate.oneof)`;
they are read from the options' bytes with the classes of the descriptor's
own pool, which knows validate.proto and any predefined rule the schema
declares. A v1.0 schema wrote a field's presence, finiteness and bounds
into `(flower_meta.v1.field)` instead; `number_rule` and `is_required` read
either, and integer bounds stay integers, so every comparison is exact.
"""

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from buf.validate import validate_pb2
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from flower_app.protocol import schema
from flower_app.protocol.canonical_json import number_text
from flower_app.protocol.schema import Descriptor, FieldDescriptor, OneofDescriptor
from flower_meta.v1.options_pb2 import FieldSpec

BUF_VALIDATE = "buf/validate/validate.proto"
"""protovalidate's rules, which a schema's file imports to use them."""
Bound = Literal["gt", "gte", "lt", "lte"]
BOUNDS: tuple[Bound, ...] = ("gt", "gte", "lt", "lte")
"""The bound names of a rule, lower first."""
Number = int | float
_SYMBOLS = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}


@dataclass(frozen=True)
class NumberRule:
    """A number field's value rule: finiteness and at most one bound a side.

    Parameters
    ----------
    kind : str
        The field's number type, protovalidate's name for its rules
        ("double", "uint32", ...).
    finite : bool
        NaN and the infinities are refused (float and double).
    bounds : tuple[tuple[Bound, Number], ...]
        Lower bound first; an integer field's bounds are Python ints.

    """

    kind: str
    finite: bool
    bounds: tuple[tuple[Bound, Number], ...]

    def words(self) -> str:
        """Put the rule in words as every reader does: "finite and >= 0"."""
        parts = ["finite"] if self.finite else []
        parts += [
            f"{_SYMBOLS[name]} {number_text(value)}" for name, value in self.bounds
        ]
        return " and ".join(parts)

    def rule_id(self, value: Number) -> str:
        """Name the rule `value` breaks first, as protovalidate orders them.

        A value outside the bounds breaks them (one id for both,
        "double.gte_lte"; NaN is outside any); else a value that is not
        finite breaks `finite`.
        """
        if self.bounds and not self._within_bounds(value):
            return f"{self.kind}.{'_'.join(name for name, _ in self.bounds)}"
        return f"{self.kind}.finite"

    def _within_bounds(self, value: Number) -> bool:
        tests = {
            "gt": lambda b: value > b,
            "gte": lambda b: value >= b,
            "lt": lambda b: value < b,
            "lte": lambda b: value <= b,
        }
        return all(tests[name](bound) for name, bound in self.bounds)


@cache
def buf_rules(descriptor: FieldDescriptor) -> Message | None:
    """Return the field's `(buf.validate.field)` rules, or None without any."""
    return _option(descriptor, descriptor.containing_type, "field")


@cache
def buf_message_rules(descriptor: Descriptor) -> Message | None:
    """Return the message's `(buf.validate.message)` rules, or None without any."""
    return _option(descriptor, descriptor, "message")


@cache
def buf_oneof_rules(descriptor: OneofDescriptor) -> Message | None:
    """Return the oneof's `(buf.validate.oneof)` rules, or None without any."""
    return _option(descriptor, descriptor.containing_type, "oneof")


_OPTIONS = {
    "field": "google.protobuf.FieldOptions",
    "message": "google.protobuf.MessageOptions",
    "oneof": "google.protobuf.OneofOptions",
}


def _option(
    described: FieldDescriptor | Descriptor | OneofDescriptor,
    parent: Descriptor | None,
    option: str,
) -> Message | None:
    """Return `(buf.validate.<option>)` of `described`, or None without it."""
    file = parent.file if parent is not None else None
    if file is None or BUF_VALIDATE not in (f.name for f in file.dependencies):
        return None
    options_type, extension = _options_class(file.pool, option)
    options = options_type.FromString(described.GetOptions().SerializeToString())
    if not options.HasExtension(extension):
        return None
    rules: Message = options.Extensions[extension]
    return rules


@cache
def _options_class(
    pool: descriptor_pool.DescriptorPool, option: str
) -> tuple[type[Message], Any]:
    """Return `pool`'s options class for `buf.validate.<option>`, and the extension."""
    classes = message_factory.GetMessageClassesForFiles(
        [BUF_VALIDATE, "google/protobuf/descriptor.proto"], pool
    )
    extension = pool.FindExtensionByName(f"buf.validate.{option}")
    return classes[_OPTIONS[option]], extension


def typed_rules(rules: Message, field: FieldDescriptor) -> Message | None:
    """Return the rules of one value of the field: its elements' if repeated."""
    if field.is_repeated and not is_map(field):
        if rules.WhichOneof("type") != "repeated":
            return None
        rules = rules.repeated.items  # type: ignore[attr-defined]
    chosen = rules.WhichOneof("type")
    return None if chosen is None else getattr(rules, chosen)


def is_map(field: FieldDescriptor) -> bool:
    """Say whether the field is a map (a repeated field of map entries)."""
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def held_type(field: FieldDescriptor) -> Descriptor | None:
    """Return the message type a field's values are (a map's values'), if any."""
    held = field.message_type
    if held is not None and held.GetOptions().map_entry:
        held = held.fields_by_name["value"].message_type
    return held


def rules_of(field: FieldDescriptor) -> Message | None:
    """Return the field's `buf.validate` rules, a v1.0 schema's restated as them.

    (`required`, `finite` and the bounds of a v1.0 `(flower_meta.v1.field)`
    become the `FieldRules` they mean; None without any rule.)
    """
    rules = buf_rules(field)
    spec = schema.field_spec(field)
    if rules is not None or not has_legacy_rules(spec):
        return rules
    restated = validate_pb2.FieldRules(required=spec.required)
    rule = number_rule(field)
    if rule is not None and rule.kind:
        holder = restated.repeated.items if field.is_repeated else restated
        typed = getattr(holder, rule.kind)
        if rule.finite:
            typed.finite = True
        integer = rule.kind not in ("float", "double")
        for name, bound in rule.bounds:
            setattr(typed, name, _integer_bound(name, bound) if integer else bound)
    return restated


def _integer_bound(name: str, bound: Number) -> int:
    """Turn an integer field's double bound into the integer bound meaning the same."""
    return math.floor(bound) if name in ("gt", "lte") else math.ceil(bound)


def has_legacy_rules(spec: FieldSpec) -> bool:
    """Say whether a `(flower_meta.v1.field)` option sets rules (v1.0's way)."""
    return spec.required or spec.finite or any(spec.HasField(b) for b in BOUNDS)


@cache
def number_rule(field: FieldDescriptor) -> NumberRule | None:
    """Return the field's number rule (its elements' if repeated), or None.

    From `(buf.validate.field)` rules of the field's own number type, or a
    v1.0 schema's `(flower_meta.v1.field)` rules; None without finiteness
    or a bound.
    """
    kind = schema.NUMBER_KINDS.get(field.type, "")
    rules = buf_rules(field)
    typed = None if rules is None else typed_rules(rules, field)
    if typed is not None and typed.DESCRIPTOR.name.lower() == f"{kind}rules":
        finite = bool(getattr(typed, "finite", False))
        bounds = tuple((b, getattr(typed, b)) for b in BOUNDS if typed.HasField(b))
    else:
        spec = schema.field_spec(field)
        finite = spec.finite
        bounds = tuple((b, getattr(spec, b)) for b in BOUNDS if spec.HasField(b))
    if not (finite or bounds):
        return None
    return NumberRule(kind, finite, _lower_first(bounds))


def _lower_first(
    bounds: tuple[tuple[Bound, Number], ...],
) -> tuple[tuple[Bound, Number], ...]:
    return tuple(sorted(bounds, key=lambda bound: bound[0] not in ("gt", "gte")))


def is_required(field: FieldDescriptor) -> bool:
    """Say whether the field must be set (`required`, in either option)."""
    rules = buf_rules(field)
    if rules is not None and rules.required:  # type: ignore[attr-defined]
        return True
    return schema.field_spec(field).required


def exclusive_range(typed: Message) -> bool:
    """Say whether a type's bounds are protovalidate's exclusive range.

    A lower bound above the upper one (`gte: 5, lte: 1`) means "outside
    [1, 5]" to protovalidate, not "between".
    """
    low = next((b for b in ("gt", "gte") if typed.HasField(b)), None)
    high = next((b for b in ("lt", "lte") if typed.HasField(b)), None)
    if low is None or high is None:
        return False
    return bool(getattr(typed, high) < getattr(typed, low))
