"""Rules the wire format cannot express, and the one error every reader raises.

The schema's rules and reason codes are documented in proto/README.md and
shared with the TypeScript and C++ readers in examples/. `Limits` adds the
server's own policy: how large a payload and how many epochs it accepts.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata


class Reason(StrEnum):
    """Why metadata was refused: stable codes, the same in every language."""

    MISSING_RECORD = "missing_record"
    MISSING_META = "missing_meta"
    META_NOT_BYTES = "meta_not_bytes"
    MISSING_TYPE_URL = "missing_type_url"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED = "malformed"
    MISSING_TRAINING_TIME = "missing_training_time"
    TRAINING_TIME_OUT_OF_RANGE = "training_time_out_of_range"
    LOSS_OUT_OF_RANGE = "loss_out_of_range"
    TOO_MANY_EPOCHS = "too_many_epochs"
    EPOCHS_MISSING = "epochs_missing"


class MetadataDecodeError(ValueError):
    """Training metadata that is missing, undecodable or breaks a rule."""

    def __init__(self, reason: Reason, detail: str) -> None:
        """Carry a stable `reason` code and a `detail` a user can act on."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """The server's policy on top of the schema's rules."""

    max_payload_bytes: int = 65_536
    """Larger payloads are refused before parsing (1000 epochs take 8 KB)."""
    max_epochs: int = 4_096
    """More losses than this are refused."""
    expected_epochs: int | None = None
    """Epochs the server asked for; fewer losses mean missing epochs."""


def check_size(payload: bytes, limits: Limits) -> None:
    """Refuse a payload over the size limit, before anything parses it."""
    if len(payload) > limits.max_payload_bytes:
        raise MetadataDecodeError(
            Reason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes exceed the limit of {limits.max_payload_bytes} "
            "(run config max-payload-bytes)",
        )


def validate(meta: TrainProcessMetadata, limits: Limits) -> None:
    """Raise `MetadataDecodeError` unless `meta` obeys the rules and `limits`."""
    if not meta.HasField("training_time"):
        raise MetadataDecodeError(
            Reason.MISSING_TRAINING_TIME,
            "training_time is missing; every report needs it",
        )
    if not (math.isfinite(meta.training_time) and meta.training_time >= 0):
        raise MetadataDecodeError(
            Reason.TRAINING_TIME_OUT_OF_RANGE,
            f"training_time must be finite and >= 0 seconds, got {meta.training_time}",
        )
    for epoch, loss in enumerate(meta.training_losses, start=1):
        if not (math.isfinite(loss) and loss >= 0):
            raise MetadataDecodeError(
                Reason.LOSS_OUT_OF_RANGE,
                f"training_losses[epoch_{epoch}] must be finite and >= 0, got {loss}",
            )
    _check_epochs(len(meta.training_losses), limits)


def _check_epochs(epochs: int, limits: Limits) -> None:
    if epochs > limits.max_epochs:
        raise MetadataDecodeError(
            Reason.TOO_MANY_EPOCHS,
            f"{epochs} epochs exceed the limit of {limits.max_epochs} "
            "(run config max-epochs)",
        )
    if limits.expected_epochs is not None and epochs < limits.expected_epochs:
        raise MetadataDecodeError(
            Reason.EPOCHS_MISSING,
            f"losses for epochs {epochs + 1}..{limits.expected_epochs} are missing: "
            f"the server asked for {limits.expected_epochs} local epochs",
        )
