"""The vocabulary of refusals: reason codes, errors, the server's limits.

A field's rules are protovalidate's `(buf.validate.field)` options in
proto/ (see `field_rules`); `validation` applies them, through our
compiled plan (`plan`) where it is proven equal to protovalidate, else
through protovalidate itself (`protovalidation`). A refusal carries the
reason code its field's `(flower_meta.v1.field)` option names. `Limits`
adds the server's own policy: payload size, and how many epochs a report
may hold.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from google.protobuf.message import Message

from flower_app.protocol import schema
from flower_app.protocol.schema import FieldDescriptor


class Reason(StrEnum):
    """Reason codes of the protocol and the server's policy.

    Field rules refuse with the codes their options name (see the generated
    reference); `MISSING_FIELD` and `OUT_OF_RANGE` are the defaults.
    """

    MISSING_RECORD = "missing_record"
    MISSING_META = "missing_meta"
    META_NOT_BYTES = "meta_not_bytes"
    MISSING_TYPE_URL = "missing_type_url"
    INVALID_TYPE_URL = "invalid_type_url"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED = "malformed"
    TOO_MANY_EPOCHS = "too_many_epochs"
    EPOCHS_MISSING = "epochs_missing"
    EGRESS_NOTE_MISMATCH = "egress_note_mismatch"
    RULE_ERROR = "rule_error"
    MISSING_FIELD = schema.MISSING_FIELD
    OUT_OF_RANGE = schema.OUT_OF_RANGE


class MetadataDecodeError(ValueError):
    """Metadata that is missing, undecodable or breaks a rule.

    Parameters
    ----------
    reason : str
        The stable reason code, e.g. "out_of_range".
    detail : str
        What is wrong, in words a user can act on.
    field_path : str (default: "")
        The field it is about, in protovalidate's form ("x", "xs[3]",
        "inner.x"); empty for the payload as a whole.
    rule_id : str (default: "")
        The rule broken, as protovalidate names it ("required",
        "double.gte"), or the run-config policy ("run_config.max_epochs");
        empty when no field rule applies.
    got : str (default: "")
        The refused value as printed, when the detail names it: the detail
        ends with ", got <value>", which `rule_words` leaves out.

    """

    def __init__(
        self,
        reason: str,
        detail: str,
        field_path: str = "",
        rule_id: str = "",
        got: str = "",
    ) -> None:
        """Carry a stable `reason` code and a `detail` a user can act on."""
        said = f"{detail}, got {got}" if got else detail
        super().__init__(f"{reason}: {said}")
        self.reason = reason
        self.detail = said
        self.rule_words = detail
        """The detail without the refused value: what may leave a node."""
        self.got = got
        self.field_path = field_path
        self.rule_id = rule_id


class _Named(Protocol):
    """A field, oneof or message descriptor: anything with a full name."""

    @property
    def full_name(self) -> str: ...


class RuleError(ValueError):
    """A schema rule no validator can apply, as protovalidate's CompilationError.

    Raised when a message type's rules are compiled (by `flower-meta
    generate` and the project's `generate` before any code is written, when
    a strategy, mod or reader is given the type, else on first use), never
    for a payload. Its text is one line: the full name of the field, oneof
    or message, the rule and what is wrong with it.
    """

    def __init__(self, where: _Named, problem: str) -> None:
        """Name the field (or oneof, or message) and the problem."""
        super().__init__(f"{where.full_name}: {problem}")


@dataclass(frozen=True)
class Limits:
    """The server's policy on top of the schema's rules.

    Parameters
    ----------
    max_payload_bytes : int (default: 65536)
        Larger payloads are refused before parsing (1000 epochs take 8 KB).
    max_epochs : int (default: 4096)
        An "epoch" series longer than this is refused.
    expected_epochs : int | None (default: None)
        Epochs the server asked for; a shorter "epoch" series misses some.

    """

    max_payload_bytes: int = 65_536
    """Larger payloads are refused before parsing (1000 epochs take 8 KB)."""
    max_epochs: int = 4_096
    """An "epoch" series longer than this is refused."""
    expected_epochs: int | None = None
    """Epochs the server asked for; a shorter "epoch" series misses some."""


EPOCH = "epoch"
"""The series the epoch limits apply to."""
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Excused:
    """What a node's egress policy did to a report, not counted against it."""

    withheld: frozenset[str] = frozenset()
    """Top-level fields absent on purpose: their rules do not apply."""
    last_only: frozenset[str] = frozenset()
    """Series sent as their last element: epochs are not missing (the payload
    holding at most one is checked first, `codec.check_note`)."""


NOTHING_EXCUSED = Excused()
Validator = Callable[[Message, Limits, Excused, str, bytes], None]
"""A message type's rules: (message, limits, excused, path prefix, its wire bytes
or b"") -> None, or raise."""


def required_missing(field: FieldDescriptor, path: str) -> None:
    """Refuse a report that lacks a required field."""
    where = f"{path}{field.name}"
    raise MetadataDecodeError(
        schema.missing_reason(field),
        f"{where}: missing; it is required",
        where,
        "required",
    )


def epoch_policy(
    field: FieldDescriptor,
    epochs: int,
    limits: Limits,
    excused: Excused,
    path: str,
) -> None:
    """Apply the server's limits to an epoch series: at most max, at least asked."""
    name = field.name
    where = f"{path}{name}"
    if epochs > limits.max_epochs:
        raise MetadataDecodeError(
            Reason.TOO_MANY_EPOCHS,
            f"{where}: {epochs} epochs exceed the limit of "
            f"{limits.max_epochs} (run config max-epochs)",
            where,
            "run_config.max_epochs",
        )
    expected = limits.expected_epochs
    if expected is not None and epochs < expected and name not in excused.last_only:
        raise MetadataDecodeError(
            Reason.EPOCHS_MISSING,
            f"{where}: epochs {epochs + 1}..{expected} are missing: the "
            f"server asked for {expected} local epochs",
            where,
            "run_config.local_epochs",
        )
