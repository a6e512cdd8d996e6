"""Rules the wire format cannot express, and the one error every reader raises.

The schema's rules and reason codes are documented in proto/README.md and
shared with the TypeScript and C++ readers in examples/. `Limits` adds the
server's own policy: how large a payload and how many epochs it accepts.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    TrainInstructions,
    TrainProcessMetadata,
)
from google.protobuf.message import Message


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
    MISSING_EVALUATION_FIELD = "missing_evaluation_field"
    EVALUATION_OUT_OF_RANGE = "evaluation_out_of_range"
    INVALID_INSTRUCTIONS = "invalid_instructions"


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


def validate(message: Message, limits: Limits) -> None:
    """Raise `MetadataDecodeError` unless `message` obeys its schema's rules."""
    if isinstance(message, TrainProcessMetadata):
        _validate_train(message, limits)
    elif isinstance(message, EvaluateProcessMetadata):
        _validate_evaluate(message)
    elif isinstance(message, TrainInstructions):
        _validate_instructions(message)


def _finite_at_least(value: float, low: float) -> bool:
    return math.isfinite(value) and value >= low


def _validate_train(meta: TrainProcessMetadata, limits: Limits) -> None:
    if not meta.HasField("training_time"):
        raise MetadataDecodeError(
            Reason.MISSING_TRAINING_TIME,
            "training_time is missing; every report needs it",
        )
    time = meta.training_time
    if not 0 <= time < math.inf:  # also false for NaN
        raise MetadataDecodeError(
            Reason.TRAINING_TIME_OUT_OF_RANGE,
            f"training_time must be finite and >= 0 seconds, got {time}",
        )
    losses = meta.training_losses
    if len(losses) > limits.max_epochs:
        raise MetadataDecodeError(
            Reason.TOO_MANY_EPOCHS,
            f"{len(losses)} epochs exceed the limit of {limits.max_epochs} "
            "(run config max-epochs)",
        )
    if limits.expected_epochs is not None and len(losses) < limits.expected_epochs:
        raise MetadataDecodeError(
            Reason.EPOCHS_MISSING,
            f"losses for epochs {len(losses) + 1}..{limits.expected_epochs} are "
            f"missing: the server asked for {limits.expected_epochs} local epochs",
        )
    for loss in losses:
        if not 0 <= loss < math.inf:  # also false for NaN
            _reject_losses(losses)


def _reject_losses(losses: Iterable[float]) -> None:
    """Raise for the first loss out of range, naming its epoch."""
    for epoch, loss in enumerate(losses, start=1):
        if not 0 <= loss < math.inf:
            raise MetadataDecodeError(
                Reason.LOSS_OUT_OF_RANGE,
                f"training_losses[epoch_{epoch}] must be finite and >= 0, got {loss}",
            )


def _validate_evaluate(meta: EvaluateProcessMetadata) -> None:
    for name in ("evaluation_time", "loss", "accuracy"):
        if not meta.HasField(name):
            raise MetadataDecodeError(
                Reason.MISSING_EVALUATION_FIELD,
                f"{name} is missing; every report needs it",
            )
    in_range = (
        _finite_at_least(meta.evaluation_time, 0)
        and _finite_at_least(meta.loss, 0)
        and 0 <= meta.accuracy <= 1
    )
    if not in_range:
        raise MetadataDecodeError(
            Reason.EVALUATION_OUT_OF_RANGE,
            f"need evaluation_time and loss finite and >= 0, accuracy in [0, 1]; got "
            f"{meta.evaluation_time}, {meta.loss}, {meta.accuracy}",
        )


def _validate_instructions(instructions: TrainInstructions) -> None:
    in_range = (
        instructions.local_epochs >= 1
        and instructions.batch_size >= 1
        and math.isfinite(instructions.learning_rate)
        and instructions.learning_rate > 0
        and _finite_at_least(instructions.convergence_tolerance, 0)
    )
    if not in_range:
        raise MetadataDecodeError(
            Reason.INVALID_INSTRUCTIONS,
            "need local_epochs >= 1, batch_size >= 1, learning_rate > 0 and "
            f"convergence_tolerance >= 0 (all finite); got {instructions}",
        )
