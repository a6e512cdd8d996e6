"""Against the tutorial's pickle: half the size, and a pickle is never unpickled."""

import random
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.serverapp.strategy import FedAdagrad

from flower_app.protocol import codec
from flower_app.protocol.rules import MetadataDecodeError, Reason
from flower_app.server.strategy import MetadataStrategy
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import reply_from, sample_metadata, train_content
from tests.tutorial_pickle import armed_payload, tutorial_payload, tutorial_receive


@pytest.mark.parametrize("epochs", [2, 10, 100, 1000])
def test_payload_is_at_most_half_of_pickle(epochs: int) -> None:
    rng = random.Random(epochs)
    meta = TrainProcessMetadata(
        training_time=rng.uniform(1, 500),
        converged=True,
        training_losses=[rng.uniform(0.01, 3.0) for _ in range(epochs)],
    )
    ours, tutorial = meta.SerializeToString(), tutorial_payload(meta)
    print(f"{epochs} epochs: protobuf {len(ours)} B, pickle {len(tutorial)} B")
    assert len(ours) <= 0.5 * len(tutorial)


def test_pickle_payload_is_refused_and_never_executed(tmp_path: Path) -> None:
    tutorial_receive(armed_payload(tmp_path / "unpickled-proof"))
    assert (tmp_path / "unpickled-proof").exists(), "the payload must be armed"

    marker = tmp_path / "executed"
    payload = armed_payload(marker)
    arrays = ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))})
    replies = [
        reply_from(1, train_content(arrays, 10, sample_metadata())),
        reply_from(2, train_content(arrays, 10, None)),
    ]
    replies[1].content[codec.TRAIN_RECORD_KEY] = ConfigRecord(
        {codec.TYPE_URL_KEY: codec.TRAIN_TYPE_URL, codec.META_KEY: payload}
    )
    with pytest.raises(MetadataDecodeError) as caught:
        codec.from_message(TrainProcessMetadata, replies[1], codec.TRAIN_RECORD_KEY)
    assert caught.value.reason == Reason.MALFORMED

    strategy = MetadataStrategy(FedAdagrad())
    strategy.strategy.current_arrays = {"w": np.zeros(3, dtype=np.float32)}
    strategy.aggregate_train(1, replies)

    assert not marker.exists(), "unpickling ran the payload's code"
    assert set(strategy.reports[1].accepted) == {1}
    assert set(strategy.reports[1].rejected) == {2}
