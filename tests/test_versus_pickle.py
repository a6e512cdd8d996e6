"""The tutorial's pickle, kept here only as the baseline this project replaces.

Two claims: the protobuf payload is at most half pickle's size, and a pickle
payload sent as metadata is refused without ever being unpickled.
"""

import pickle
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord

from flower_app import codec
from flower_app.strategy import CustomFedAdagrad
from flower_app.validation import MetadataDecodeError
from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.conftest import reply_from, sample_metadata, train_content


@dataclass
class TutorialTrainProcessMetadata:
    """The tutorial's dataclass, field for field."""

    training_time: float
    converged: bool
    training_losses: dict[str, float]


@pytest.mark.parametrize("epochs", [2, 10, 100, 1000])
def test_payload_is_at_most_half_of_pickle(epochs: int) -> None:
    rng = random.Random(epochs)
    losses = [rng.uniform(0.01, 3.0) for _ in range(epochs)]
    time, converged = rng.uniform(1, 500), True
    ours = TrainProcessMetadata(
        training_time=time, converged=converged, training_losses=losses
    ).SerializeToString()
    tutorial = pickle.dumps(
        TutorialTrainProcessMetadata(
            time, converged, {f"epoch_{i}": x for i, x in enumerate(losses, 1)}
        )
    )
    print(f"{epochs} epochs: protobuf {len(ours)} B, pickle {len(tutorial)} B")
    assert len(ours) <= 0.5 * len(tutorial)


class _RunsCodeWhenUnpickled:
    """A pickle whose loading touches a file: stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))


def test_pickle_payload_is_refused_and_never_executed(tmp_path: Path) -> None:
    armed = pickle.dumps(_RunsCodeWhenUnpickled(tmp_path / "unpickled-proof"))
    pickle.loads(armed)  # the tutorial's receiving side would do this
    assert (tmp_path / "unpickled-proof").exists(), "the payload must be armed"

    marker = tmp_path / "executed"
    payload = pickle.dumps(_RunsCodeWhenUnpickled(marker))
    arrays = ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))})
    replies = [
        reply_from(1, train_content(arrays, 10, sample_metadata())),
        reply_from(2, train_content(arrays, 10, None)),
    ]
    replies[1].content[codec.RECORD_KEY] = ConfigRecord(
        {codec.TYPE_URL_KEY: codec.TYPE_URL, codec.FIELD_KEY: payload}
    )

    strategy = CustomFedAdagrad()
    strategy.current_arrays = {"w": np.zeros(3, dtype=np.float32)}
    with pytest.raises(MetadataDecodeError):
        codec.from_reply(replies[1])
    strategy.aggregate_train(1, replies)

    assert not marker.exists(), "unpickling ran the payload's code"
    assert set(strategy.metadata[1]) == {1}
    assert set(strategy.rejected[1]) == {2}
