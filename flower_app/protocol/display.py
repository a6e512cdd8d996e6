"""Any metadata message shown the way its schema says: values, units, series.

The tutorial prints a dict of its dataclass, a per-epoch series as
`{'epoch_1': ..., 'epoch_2': ...}`; `shown` makes that form for
any message from its descriptor: an absent field is None, a repeated field
with a `series` option is numbered from 1, text is escaped and bounded.
`egress_text` says what a node's egress policy did; `refusal` puts a
refused report in one line.
"""

from google.protobuf.message import Message

from flower_app.protocol import schema
from flower_app.protocol.schema import FieldDescriptor
from flower_app.protocol.text import printable
from flower_meta.v1.metadata_pb2 import EgressNote

TEXT_LIMIT = 200
"""Characters of a string field shown in a log line."""


WITHHELD = "withheld by the node"
"""How a field the node's egress policy kept back is shown."""


def shown(
    message: Message, digits: int | None = None, note: EgressNote | None = None
) -> dict[str, object]:
    """Show the message as a dict in the tutorial's form, field by field.

    With `digits`, floating-point values keep that many significant digits
    (for a log line; the metadata log keeps every bit). With the node's
    egress `note`, a withheld field says so, and a series sent as its last
    element is shown as `last_<series>`.
    """
    withheld = set(note.withheld) if note else set()
    last_only = set(note.last_only) if note else set()
    found: dict[str, object] = {}
    for field in message.DESCRIPTOR.fields:
        value = _shown_field(message, field, digits)
        if field.name in withheld:
            value = WITHHELD
        elif field.name in last_only and isinstance(value, dict) and value:
            series = schema.field_spec(field).series or "element"
            value = {f"last_{series}": list(value.values())[-1]}
        found[field.name] = value
    return found


def _shown_field(
    message: Message, field: FieldDescriptor, digits: int | None
) -> object:
    value = getattr(message, field.name)
    if not field.is_repeated and not schema.is_present(message, field):
        return None if field.has_presence else value
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {
            key: _scalar(field.message_type.fields_by_name["value"], v, digits)
            for key, v in value.items()
        }
    if field.is_repeated:
        items = [_scalar(field, item, digits) for item in value]
        series = schema.field_spec(field).series
        if series:
            return {f"{series}_{i}": item for i, item in enumerate(items, start=1)}
        return items
    return _scalar(field, value, digits)


def _scalar(field: FieldDescriptor, value: object, digits: int | None) -> object:
    if isinstance(value, float) and digits is not None:
        return float(f"{value:.{digits}g}")
    if isinstance(value, Message):
        return shown(value, digits)
    if isinstance(value, str):
        return printable(value, TEXT_LIMIT)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if field.enum_type is not None and isinstance(value, int):
        known = field.enum_type.values_by_number.get(value)
        return known.name if known else value
    return value


def egress_text(note: EgressNote) -> str:
    """Say in words what a node's egress policy did to a report."""
    parts = []
    if note.withheld:
        parts.append("withheld " + ", ".join(printable(n, 80) for n in note.withheld))
    if note.last_only:
        names = ", ".join(printable(n, 80) for n in note.last_only)
        parts.append(f"{names}: last element only")
    if note.significant_digits:
        parts.append(f"rounded to {note.significant_digits} significant digits")
    return "; ".join(parts)


def refusal(reason: str, detail: str, rule_id: str) -> str:
    """Put a refusal in one line: "reason: detail (rule double.gte)".

    Without a rule id (a payload refused as a whole): "reason: detail".
    """
    text = f"{reason}: {detail}"
    return f"{text} (rule {rule_id})" if rule_id else text
