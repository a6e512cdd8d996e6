"""Rules the wire format cannot express, and the one error every reader raises.

The rules and their reason codes are documented in the .proto and shared
with the TypeScript and C++ readers in examples/.
"""

import math
from enum import StrEnum

from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata


class Reason(StrEnum):
    """Why metadata was refused: stable codes, the same in every language."""

    MISSING_RECORD = "missing_record"
    MISSING_TYPE_URL = "missing_type_url"
    META_NOT_BYTES = "meta_not_bytes"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED = "malformed"
    MISSING_TRAINING_TIME = "missing_training_time"
    TRAINING_TIME_OUT_OF_RANGE = "training_time_out_of_range"
    LOSS_OUT_OF_RANGE = "loss_out_of_range"


class MetadataDecodeError(ValueError):
    """Training metadata that is missing, undecodable or breaks a rule."""

    def __init__(self, reason: Reason, detail: str) -> None:
        """Carry a stable `reason` code and a `detail` a user can act on."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def validate(meta: TrainProcessMetadata) -> None:
    """Raise `MetadataDecodeError` unless `meta` obeys the schema's rules."""
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
