"""The plots read at a glance: the scale keeps typical clients visible, the
clients to look at are named, and axes and captions say what is drawn.

Realistic runs come from `tests.crowd` (a jumping loss, a straggler); the
oracle reads their metadata.jsonl with `json` and `statistics`.
"""

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from flower_app.outcomes.model import Outcomes
from flower_app.outcomes.replay import load
from flower_app.protocol.metadata_log import JSON_LOG
from flower_app.reporting.plots import (
    DRAWN_CLIENTS,
    LEGEND_LIMIT,
    NAMED,
    figures,
    plot_names,
    write_plots,
)
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)
from tests.crowd import EXAMPLES, jumper, node_ids, straggler, write_crowd


def _time_axis_scale(times: list[float]) -> str:
    """The y scale of the training-time plot of one round with these times."""
    records = Outcomes()
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
        ([1.0] * 5 + [10.0] * 4 + [40.0], "linear"),  # 4 x the median (10)
    ],
)
def test_one_slow_first_call_does_not_flatten_the_rest(
    times: list[float], scale: str
) -> None:
    assert _time_axis_scale(times) == scale


def _crowd(clients: int, rounds: int = 3) -> Outcomes:
    """`clients` a round, each with its own time and 4 losses of its own."""
    records = Outcomes()
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


def _band_of(
    axes: Axes, median_label: str = "clients' median"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x and median of the median line, and the band's outline, of a plot."""
    (band,) = [c for c in axes.collections if isinstance(c, PolyCollection)]
    (median,) = [line for line in axes.lines if line.get_label() == median_label]
    xs, ys = median.get_data()
    return np.asarray(xs), np.asarray(band.get_paths()[0].vertices), np.asarray(ys)


@pytest.mark.parametrize("clients", [DRAWN_CLIENTS + 1, 200])
def test_beyond_the_cap_a_number_is_drawn_as_the_clients_band(clients: int) -> None:
    records = _crowd(clients)
    axes = dict(figures(records))["train_training_time.png"].axes[0]
    points = [c for c in axes.collections if not isinstance(c, PolyCollection)]
    drawn = sum(np.asarray(c.get_offsets()).shape[0] for c in points)
    assert drawn <= 3 * NAMED  # the named few, not every client
    xs, vertices, median = _band_of(axes, "round's median")
    assert list(xs) == [1, 2, 3]
    for server_round in (1, 2, 3):
        times = [(n * 7919 % 101) / 10 + server_round for n in range(1, clients + 1)]
        low, mid, high = np.percentile(times, [10, 50, 90])
        assert median[server_round - 1] == pytest.approx(mid)
        at = vertices[np.isclose(vertices[:, 0], server_round), 1]
        assert min(at) == pytest.approx(low)
        assert max(at) == pytest.approx(high)
    labels = axes.get_legend_handles_labels()[1]
    assert f"10-90% of clients (over {DRAWN_CLIENTS} a round)" in labels


def test_at_the_cap_every_client_is_a_point() -> None:
    axes = dict(figures(_crowd(DRAWN_CLIENTS)))["train_training_time.png"].axes[0]
    assert not [c for c in axes.collections if isinstance(c, PolyCollection)]
    drawn = sum(np.asarray(c.get_offsets()).shape[0] for c in axes.collections)
    assert drawn == 3 * DRAWN_CLIENTS


def test_beyond_the_cap_series_are_drawn_as_the_clients_band() -> None:
    clients = DRAWN_CLIENTS + 1
    axes = dict(figures(_crowd(clients, rounds=2)))["train_training_losses.png"].axes[0]
    xs, _, median = _band_of(axes)
    assert len(xs) == 8  # 4 epochs in each of 2 rounds
    first = [1 / (n + 0 + 1) for n in range(1, clients + 1)]  # round 1, epoch 1
    assert median[0] == pytest.approx(np.median(first))
    assert f"10-90% of the {clients} clients" in axes.get_legend_handles_labels()[1]


def test_a_thousand_rounds_get_readable_ticks() -> None:
    axes = dict(figures(_crowd(2, rounds=1000)))["train_training_losses.png"].axes[0]
    assert len(axes.get_xticks()) <= 20


def _crowd_run(tmp_path: Path, clients: int) -> tuple[Outcomes, list[dict[str, Any]]]:
    """A realistic run of `clients`, loaded, and its metadata.jsonl read with json."""
    folder = write_crowd(tmp_path / "run", clients)
    lines = (folder / JSON_LOG).read_text().splitlines()
    return load(folder), [json.loads(line) for line in lines]


def _named(axes: Axes) -> list[str]:
    """The legend's entries that name a client (not a median, band or rest)."""
    legend = axes.get_legend()
    assert legend is not None
    return [
        text.get_text()
        for text in legend.get_texts()
        if text.get_text().startswith("…")
    ]


def _short(node: int) -> str:
    return "…" + str(node)[-6:]


def _drawn(figure: Figure) -> Axes:
    FigureCanvasAgg(figure).draw()  # type: ignore[no-untyped-call]  # ticks and their labels are made on drawing
    return figure.axes[0]


@pytest.mark.parametrize("clients", [2, 10, LEGEND_LIMIT])
def test_up_to_the_legend_limit_every_client_is_named(
    tmp_path: Path, clients: int
) -> None:
    records, _ = _crowd_run(tmp_path, clients)
    for name, figure in figures(records):
        if name != "train_converged.png":
            axes = figure.axes[0]
            assert sorted(_named(axes)) == sorted(map(_short, node_ids(clients)))
            legend = axes.get_legend()
            assert legend is not None
            assert legend.get_title().get_text() == f"{clients} clients"
            colours = [
                to_hex(line.get_color())
                for line in axes.get_lines()
                if str(line.get_label()).startswith("…")
            ]
            assert len(set(colours)) == len(colours)  # no two clients alike


@pytest.mark.parametrize("clients", [LEGEND_LIMIT + 1, 30, DRAWN_CLIENTS, 100])
def test_beyond_it_the_clients_to_look_at_are_named(
    tmp_path: Path, clients: int
) -> None:
    records, lines = _crowd_run(tmp_path, clients)
    drawn = dict(figures(records))
    time_axes = drawn["train_training_time.png"].axes[0]
    loss_axes = drawn["train_training_losses.png"].axes[0]
    assert _named(time_axes)[0] == _short(straggler(clients))  # farthest first
    assert _named(loss_axes)[0] == _short(jumper(clients))
    for axes in (time_axes, loss_axes):
        assert len(_named(axes)) == NAMED
        legend = axes.get_legend()
        assert legend is not None
        assert legend.get_title().get_text() == (
            f"{clients} clients\nnamed: the {NAMED} farthest\nfrom the median"
        )
    # The straggler's round-2 point is where its record puts it, in colour.
    (slow,) = [
        line["accepted"]["trainingTime"]
        for line in lines
        if line.get("recordKey") == "train_metadata"
        and line["nodeId"] == str(straggler(clients))
        and line["serverRound"] == 2
    ]
    (x,) = [
        x
        for c in time_axes.collections
        if c.get_label() == _short(straggler(clients))
        for x, y in np.asarray(c.get_offsets())
        if y == slow
    ]
    assert x == pytest.approx(2, abs=0.16)  # in round 2, not beside it


def test_the_median_line_is_the_median_of_the_records(tmp_path: Path) -> None:
    records, lines = _crowd_run(tmp_path, 30)
    axes = dict(figures(records))["train_training_time.png"].axes[0]
    (median,) = [line for line in axes.lines if line.get_label() == "round's median"]
    by_round: dict[int, list[float]] = {}
    for line in lines:
        if line.get("recordKey") == "train_metadata":
            by_round.setdefault(line["serverRound"], []).append(
                line["accepted"]["trainingTime"]
            )
    xs, ys = median.get_data()
    assert np.asarray(xs).tolist() == [1, 2, 3]
    assert np.asarray(ys).tolist() == [
        statistics.median(by_round[r]) for r in (1, 2, 3)
    ]


def test_a_field_with_one_value_everywhere_gets_no_plot(tmp_path: Path) -> None:
    records, lines = _crowd_run(tmp_path, 10)
    examples = {
        line["evaluated"]["numExamples"] for line in lines if "evaluated" in line
    }
    assert examples == {EXAMPLES}
    names = plot_names(records)
    assert "evaluate_num_examples.png" not in names
    assert "evaluate_loss.png" in names  # a field that varies is drawn


def test_an_integer_field_gets_whole_number_ticks() -> None:
    records = Outcomes()
    for node, examples in enumerate([143, 143, 144, 144], start=1):
        record = MetadataLogRecord(
            server_round=1, node_id=node, record_key="evaluate_metadata"
        )
        record.evaluated.CopyFrom(
            EvaluateProcessMetadata(num_examples=examples, loss=0.1 * node)
        )
        records.add(record)
    drawn = dict(figures(records))
    ticks = _drawn(drawn["evaluate_num_examples.png"]).get_yticks()
    assert len(ticks) >= 2
    assert all(tick == int(tick) for tick in ticks)
    loss_ticks = _drawn(drawn["evaluate_loss.png"]).get_yticks()
    assert any(tick != int(tick) for tick in loss_ticks)  # a float keeps fractions


def test_a_log_scale_is_labelled_in_plain_numbers(tmp_path: Path) -> None:
    records, _ = _crowd_run(tmp_path, 30)  # the straggler: 8 x its usual time
    axes = _drawn(dict(figures(records))["train_training_time.png"])
    assert axes.get_yscale() == "log"
    low, high = axes.get_ylim()
    shown = [
        label.get_text()
        for label, tick in zip(axes.get_yticklabels(), axes.get_yticks(), strict=True)
        if low <= tick <= high and label.get_text()
    ]
    assert len(shown) >= 3, shown  # more than one tick per decade
    assert all(float(text) > 0 for text in shown), shown  # "2", not "$10^{0}$"


def test_captions_say_what_a_plot_shows_with_its_unit(tmp_path: Path) -> None:
    records, _ = _crowd_run(tmp_path, 10)
    drawn = write_plots(records, tmp_path / "report")
    captions = {plot.path.name: plot.caption for plot in drawn}
    assert captions["train_training_time.png"] == (
        "train stage: training_time (s): each client's value per round "
        "(hollow: its first report) and the round's median."
    )
    assert captions["train_converged.png"] == (
        "train stage: converged: how many clients said true, false or nothing, "
        "per round."
    )
    assert captions["train_training_losses.png"].startswith(
        "train stage: training_losses (nats/example): each client's values epoch"
    )
    assert all(plot.path.is_file() for plot in drawn)
