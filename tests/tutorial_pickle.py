"""The tutorial's pickle: the baseline this project replaces, used only by tests.

Tests use it to measure pickle's payload size and to build pickle payloads,
one of them armed, that the strategy must refuse without unpickling.
"""

import pickle
from dataclasses import dataclass
from pathlib import Path

from flower_meta.v1.metadata_pb2 import TrainProcessMetadata


@dataclass
class TutorialTrainProcessMetadata:
    """The tutorial's dataclass, field for field."""

    training_time: float
    converged: bool
    training_losses: dict[str, float]


def tutorial_payload(meta: TrainProcessMetadata) -> bytes:
    """What the tutorial's ClientApp sends for the same facts."""
    losses = {f"epoch_{i}": loss for i, loss in enumerate(meta.training_losses, 1)}
    return pickle.dumps(
        TutorialTrainProcessMetadata(meta.training_time, meta.converged, losses)
    )


class _RunsCodeWhenUnpickled:
    """Unpickling this touches a file: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))


def armed_payload(marker: Path) -> bytes:
    """A pickle payload whose unpickling creates `marker`."""
    return pickle.dumps(_RunsCodeWhenUnpickled(marker))


def tutorial_receive(payload: bytes) -> object:
    """What the tutorial's strategy does with the bytes: `pickle.loads`."""
    return pickle.loads(payload)
