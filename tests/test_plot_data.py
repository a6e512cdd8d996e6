"""The plots' data, read back from the Matplotlib figures: where each point,
curve, bar and tick is, against the records that made them.

Each test builds its records by hand, so the expected positions are
written out here from the plots' documented layout (a round's clients
spread over round +- 0.15 in node order, epoch i of n at round - 1 +
(i + 1) / n, bars stacked from 0), not computed by the plotting code.
"""

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from PIL import Image

from flower_app.outcomes.model import Outcomes
from flower_app.reporting.plots import figures, write_plots
from flower_meta.v1.metadata_pb2 import MetadataLogRecord, TrainProcessMetadata

Reply = Mapping[str, object]


def _records(
    rounds: Sequence[Sequence[Reply]], centralized: dict[int, float] | None = None
) -> Outcomes:
    """Train replies by round (node ids 1, 2, ...), and centralized metrics."""
    records = Outcomes()
    for server_round, replies in enumerate(rounds, start=1):
        for node, fields in enumerate(replies, start=1):
            record = MetadataLogRecord(
                server_round=server_round, node_id=node, record_key="train_metadata"
            )
            record.accepted.CopyFrom(TrainProcessMetadata(**fields))  # type: ignore[arg-type]
            records.add(record)
    for server_round, accuracy in (centralized or {}).items():
        record = MetadataLogRecord(server_round=server_round)
        record.centralized.metrics["training_time"] = accuracy
        records.add(record)
    return records


def _axes(records: Outcomes, name: str) -> Axes:
    figure: Figure = dict(figures(records))[name]
    FigureCanvasAgg(figure).draw()  # type: ignore[no-untyped-call]  # ticks are made on drawing
    return figure.axes[0]


def _times(clients: int, rounds: int, slow: dict[int, float] | None = None) -> Outcomes:
    """Every client 1 s (node n: 1 + n / 1000), `slow` nodes their own time."""
    return _records(
        [
            [
                {"training_time": (slow or {}).get(n, 1 + n / 1000)}
                for n in range(1, clients + 1)
            ]
            for _ in range(rounds)
        ]
    )


def _points(axes: Axes) -> list[tuple[str, float, float, bool, float]]:
    """Every scatter point: (label, x, y, hollow, zorder)."""
    found = []
    for collection in axes.collections:
        if not isinstance(collection, PathCollection):
            continue
        hollow = (
            not np.asarray(collection.get_facecolor()).size
            or (np.asarray(collection.get_facecolor())[:, 3] == 0).all()
        )
        for x, y in np.asarray(collection.get_offsets()):
            found.append(
                (
                    str(collection.get_label()),
                    float(x),
                    float(y),
                    bool(hollow),
                    float(collection.get_zorder()),
                )
            )
    return found


def _legend_named(axes: Axes) -> list[str]:
    """The clients the legend names, in its order (short node ids are whole)."""
    legend = axes.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts() if t.get_text().isdigit()]


def test_every_plot_is_an_800_by_450_png(tmp_path: Path) -> None:
    for drawn in write_plots(_times(3, 2), tmp_path):
        with Image.open(io.BytesIO(drawn.path.read_bytes())) as image:
            assert (image.format, image.size) == ("PNG", (800, 450))


def test_a_rounds_clients_are_spread_evenly_around_it_in_node_order() -> None:
    axes = _axes(_times(4, 2), "train_training_time.png")
    points = sorted((x, y) for _, x, y, _, _ in _points(axes))
    for server_round in (1, 2):
        xs = [x for x, _ in points if abs(x - server_round) < 0.5]
        assert xs == pytest.approx(
            [
                server_round - 0.15,
                server_round - 0.05,
                server_round + 0.05,
                server_round + 0.15,
            ]
        )
        ys = [y for x, y in points if abs(x - server_round) < 0.5]
        assert ys == pytest.approx([1.001, 1.002, 1.003, 1.004])  # node 1 leftmost


def test_a_lone_client_sits_on_its_round() -> None:
    axes = _axes(
        _records(
            [[{"training_time": 1.0}, {"training_time": 2.0}], [{"training_time": 3.0}]]
        ),
        "train_training_time.png",
    )
    assert sorted(x for _, x, _, _, _ in _points(axes)) == pytest.approx(
        [0.85, 1.15, 2.0]
    )


def test_a_clients_first_report_is_hollow_and_later_ones_filled() -> None:
    axes = _axes(_times(2, 3), "train_training_time.png")
    for _, x, _, hollow, _ in _points(axes):
        assert hollow is (round(x) == 1), x


@pytest.mark.parametrize(("clients", "named"), [(12, 12), (13, 3)])
def test_up_to_12_clients_are_each_named_beyond_the_3_farthest(
    clients: int, named: int
) -> None:
    axes = _axes(
        _times(clients, 1, slow={1: 9.0, 2: 7.0, 3: 5.0}), "train_training_time.png"
    )
    assert len(_legend_named(axes)) == named


@pytest.mark.parametrize(("clients", "band"), [(50, False), (51, True)])
def test_beyond_50_clients_a_round_is_a_band(clients: int, band: bool) -> None:
    for name in ("train_training_time.png", "train_training_losses.png"):
        records = _records(
            [
                [
                    {"training_time": 1 + n / 100, "training_losses": [1 / n, 0.5 / n]}
                    for n in range(1, clients + 1)
                ]
            ]
        )
        axes = _axes(records, name)
        bands = [c for c in axes.collections if isinstance(c, PolyCollection)]
        assert bool(bands) is band, name
        if name == "train_training_losses.png" and not band:
            assert len(axes.get_lines()) == clients  # one curve a client


def test_a_crowded_round_has_one_median_line_the_rounds() -> None:
    axes = _axes(_times(60, 2), "train_training_time.png")
    medians = [str(line.get_label()) for line in axes.get_lines()]
    assert medians == ["round's median"]


def test_only_clients_that_leave_the_median_are_named() -> None:
    axes = _axes(
        _records([[{"training_time": 1.0}] * 19 + [{"training_time": 4.0}]]),
        "train_training_time.png",
    )
    named = _legend_named(axes)
    assert named == ["20"]


def test_the_farthest_from_the_median_are_named_farthest_first() -> None:
    # Round 1's median is 10; distances: node 1: 6, node 2: 5, node 3: 7, node 4: 1.
    times = [4.0, 15.0, 17.0, 11.0] + [10.0] * 16
    axes = _axes(
        _records([[{"training_time": t} for t in times]]), "train_training_time.png"
    )
    named = _legend_named(axes)
    assert named == ["3", "1", "2"]


def test_named_clients_are_drawn_above_the_grey_rest() -> None:
    axes = _axes(_times(20, 2, slow={5: 9.0}), "train_training_time.png")
    points = _points(axes)
    grey = {z for label, _, _, _, z in points if label == "other clients"}
    named = {z for label, _, _, _, z in points if label == "5"}
    assert grey
    assert named
    assert min(named) > max(grey)
    order = [str(c.get_label()) for c in axes.collections]
    assert order.index("5") > max(
        i for i, label in enumerate(order) if label == "other clients"
    )
    curves = _axes(
        _records([[{"training_losses": [1.0 + n / 100, 1.0]} for n in range(1, 21)]]),
        "train_training_losses.png",
    )
    lines = curves.get_lines()
    coloured = [i for i, line in enumerate(lines) if str(line.get_label()).isdigit()]
    rest = [i for i in range(len(lines)) if i not in coloured]
    assert (len(coloured), len(rest)) == (3, 17)
    assert min(coloured) > max(rest)
    assert min(lines[i].get_zorder() for i in coloured) > lines[rest[0]].get_zorder()


def test_the_centralized_metric_is_drawn_from_round_1() -> None:
    records = _records(
        [[{"training_time": 1.0}, {"training_time": 2.0}]] * 2,
        centralized={0: 0.1, 1: 0.5, 2: 0.7},
    )
    axes = _axes(records, "train_training_time.png")
    (line,) = [
        line
        for line in axes.get_lines()
        if str(line.get_label()).startswith("centralized")
    ]
    xs, ys = line.get_data()
    assert (list(np.asarray(xs)), list(np.asarray(ys))) == ([1, 2], [0.5, 0.7])


def test_epoch_i_of_n_is_at_round_minus_1_plus_i_over_n() -> None:
    records = _records(
        [
            [
                {"training_losses": [0.9, 0.8, 0.7, 0.6]},
                {"training_losses": [0.5, 0.4]},
            ],
            [
                {"training_losses": [0.3, 0.2, 0.1, 0.05]},
                {"training_losses": [0.5, 0.45]},
            ],
        ]
    )
    axes = _axes(records, "train_training_losses.png")
    curves = {
        str(line.get_label()): np.asarray(line.get_data()).T.ravel().tolist()
        for line in axes.get_lines()
    }
    assert curves["1"] == pytest.approx(
        [
            *(0.25, 0.9, 0.5, 0.8, 0.75, 0.7, 1.0, 0.6),  # round 1: 4 epochs
            *(1.25, 0.3, 1.5, 0.2, 1.75, 0.1, 2.0, 0.05),  # round 2
        ]
    )
    assert curves["2"] == pytest.approx([0.5, 0.5, 1.0, 0.4, 1.5, 0.5, 2.0, 0.45])


@pytest.mark.parametrize("rounds", [20, 21])
def test_up_to_20_rounds_each_round_is_labelled(rounds: int) -> None:
    records = _records(
        [
            [
                {"training_time": 1.0 + r, "training_losses": [0.5, 0.4]},
                {"training_time": 2.0, "training_losses": [0.6, 0.3]},
            ]
            for r in range(rounds)
        ]
    )
    times = _axes(records, "train_training_time.png")
    each = list(times.get_xticks()) == list(range(1, rounds + 1))
    assert each is (rounds == 20)
    losses = _axes(records, "train_training_losses.png")
    labels = [label.get_text() for label in losses.get_xticklabels()]
    if rounds == 20:
        assert list(losses.get_xticks()) == [r - 0.5 for r in range(1, 21)]
        assert labels == [f"round {r}" for r in range(1, 21)]
        boundaries = [
            np.asarray(line.get_xdata())[0]
            for line in losses.get_lines()
            if str(line.get_label()).startswith("_child")
        ]
        assert boundaries == list(range(1, 20))
    else:
        assert "round 1" not in labels
        assert all(tick == int(tick) for tick in times.get_xticks())  # whole rounds


def _shares(flags: Sequence[Sequence[bool | None]]) -> Axes:
    rounds: list[list[Reply]] = [
        [
            {"training_time": 1.0 + n}  # a time apart, so the run is not empty
            | ({} if flag is None else {"converged": flag})
            for n, flag in enumerate(replies)
        ]
        for replies in flags
    ]
    return _axes(_records(rounds), "train_converged.png")


def test_the_converged_bars_count_true_false_and_not_reported_stacked_from_0() -> None:
    axes = _shares([[True, True, False, None], [False, None, None, True]])
    bars = {}
    for container in axes.containers:
        assert isinstance(container, BarContainer)
        bars[container.get_label()] = [
            (p.get_y(), p.get_height()) for p in container.patches
        ]
    assert bars == {
        "true": [(0, 2), (0, 1)],
        "false": [(2, 1), (1, 1)],
        "not reported": [(3, 1), (2, 2)],
    }


def test_a_bar_segment_is_labelled_when_it_holds_5_percent_of_the_round() -> None:
    axes = _shares(
        [
            [True] * 18 + [False] + [None],  # 1 of 20 is 5 %: labelled
            [True] * 38 + [False] * 2,  # 2 of 40: labelled; none reported: no "0"
            [True] * 39 + [False],  # 1 of 40 is 2.5 %: not labelled
        ]
    )
    shown = sorted(text.get_text() for text in axes.texts if text.get_text())
    assert shown == sorted(["18", "1", "1", "38", "2", "39"])


@pytest.mark.parametrize(
    ("values", "labels"),
    [  # decades: from the smallest value to the largest
        ([1.0] * 9 + [100.0], {"1", "2", "5", "10", "20", "50", "100"}),  # 2
        ([1.0] * 9 + [1000.0], {"1", "10", "100", "1000"}),  # 3
        ([0.5] + [1.0] * 8 + [600.0], {"1", "10", "100"}),  # 3.08
    ],
)
def test_a_log_axis_has_1_2_5_ticks_under_3_decades_and_powers_of_10_from_3(
    values: list[float], labels: set[str]
) -> None:
    axes = _axes(
        _records([[{"training_time": t} for t in values]]), "train_training_time.png"
    )
    assert axes.get_yscale() == "log"
    low, high = axes.get_ylim()
    shown = {
        label.get_text()
        for label, tick in zip(axes.get_yticklabels(), axes.get_yticks(), strict=True)
        if low <= tick <= high and label.get_text()
    }
    assert shown == labels
