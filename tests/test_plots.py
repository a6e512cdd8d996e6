"""The plots read at a glance: the scale keeps typical clients visible."""

import pytest

from flower_app.reporting.plots import figures
from flower_app.reporting.run_records import RunRecords
from flower_meta.v1.metadata_pb2 import MetadataLogRecord, TrainProcessMetadata


def _time_axis_scale(times: list[float]) -> str:
    """The y scale of the training-time plot of one round with these times."""
    records = RunRecords()
    for node, seconds in enumerate(times, start=1):
        record = MetadataLogRecord(
            run_id=1, server_round=1, node_id=node, record_key="train_metadata"
        )
        record.accepted.CopyFrom(TrainProcessMetadata(training_time=seconds))
        records.add(record)
    plots = dict(figures(records))
    return str(plots["train_training_time.png"].axes[0].get_yscale())


@pytest.mark.parametrize(
    ("times", "scale"),
    [
        ([0.12, 0.13, 0.11, 0.14, 0.2, 0.15, 0.12, 0.13, 0.12, 1.87], "log"),
        ([1.0] * 9 + [5.0], "linear"),  # the largest is 5 x the median: linear
        ([1.0] * 9 + [5.01], "log"),
        ([0.0] + [1.0] * 8 + [50.0], "linear"),  # 0 s has no place on a log scale
        ([1.0, 1.2, 0.9, 1.1], "linear"),
    ],
)
def test_one_slow_first_call_does_not_flatten_the_rest(
    times: list[float], scale: str
) -> None:
    assert _time_axis_scale(times) == scale
