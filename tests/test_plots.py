"""The plots read at a glance: the scale keeps typical clients visible."""

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection

from flower_app.reporting.plots import CLIENT_CAP, figures
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


def _crowd(clients: int, rounds: int = 3) -> RunRecords:
    """`clients` a round, each with its own time and 4 losses of its own."""
    records = RunRecords()
    for server_round in range(1, rounds + 1):
        for node in range(1, clients + 1):
            record = MetadataLogRecord(
                server_round=server_round, node_id=node, record_key="train_metadata"
            )
            record.accepted.CopyFrom(
                TrainProcessMetadata(
                    training_time=(node * 7919 % 101) / 10 + server_round,
                    training_losses=[1 / (node + e + server_round) for e in range(4)],
                )
            )
            records.add(record)
    return records


def _band_of(axes: Axes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x and median of the median line, and the band's outline, of a plot."""
    (band,) = [c for c in axes.collections if isinstance(c, PolyCollection)]
    (median,) = [line for line in axes.lines if line.get_label() == "clients' median"]
    xs, ys = median.get_data()
    return np.asarray(xs), np.asarray(band.get_paths()[0].vertices), np.asarray(ys)


@pytest.mark.parametrize("clients", [CLIENT_CAP + 1, 200])
def test_beyond_the_cap_a_number_is_drawn_as_the_clients_band(clients: int) -> None:
    records = _crowd(clients)
    axes = dict(figures(records))["train_training_time.png"].axes[0]
    assert not [c for c in axes.collections if not isinstance(c, PolyCollection)]
    xs, vertices, median = _band_of(axes)
    assert list(xs) == [1, 2, 3]
    for server_round in (1, 2, 3):
        times = [(n * 7919 % 101) / 10 + server_round for n in range(1, clients + 1)]
        low, mid, high = np.percentile(times, [10, 50, 90])
        assert median[server_round - 1] == pytest.approx(mid)
        at = vertices[np.isclose(vertices[:, 0], server_round), 1]
        assert min(at) == pytest.approx(low)
        assert max(at) == pytest.approx(high)
    labels = axes.get_legend_handles_labels()[1]
    assert f"10-90% of clients (over {CLIENT_CAP} a round)" in labels


def test_at_the_cap_every_client_is_a_point() -> None:
    axes = dict(figures(_crowd(CLIENT_CAP)))["train_training_time.png"].axes[0]
    assert not [c for c in axes.collections if isinstance(c, PolyCollection)]
    drawn = sum(np.asarray(c.get_offsets()).shape[0] for c in axes.collections)
    assert drawn == 3 * CLIENT_CAP


def test_beyond_the_cap_series_are_drawn_as_the_clients_band() -> None:
    clients = CLIENT_CAP + 1
    axes = dict(figures(_crowd(clients, rounds=2)))["train_training_losses.png"].axes[0]
    xs, _, median = _band_of(axes)
    assert len(xs) == 8  # 4 epochs in each of 2 rounds
    first = [1 / (n + 0 + 1) for n in range(1, clients + 1)]  # round 1, epoch 1
    assert median[0] == pytest.approx(np.median(first))
    assert f"10-90% of the {clients} clients" in axes.get_legend_handles_labels()[1]


def test_a_thousand_rounds_get_readable_ticks() -> None:
    axes = dict(figures(_crowd(2, rounds=1000)))["train_training_losses.png"].axes[0]
    assert len(axes.get_xticks()) <= 20
