"""report.html read as a person reads it: the whole run config as it was
typed (TOML), whole-number ticks for counts, one colour per client in every
plot, the run id in the title, words spelt right."""

import json
import shutil
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from flower_app.outcomes.replay import RUN_CONFIG, load
from flower_app.reporting.html import toml_text
from flower_app.reporting.plots import COLORS, colours, figures, plural
from flower_app.reporting.report import write_report
from tests.crowd import write_crowd


@pytest.mark.parametrize(
    ("value", "spelt"),
    [
        (True, "true"),
        (False, "false"),
        (16, "16"),
        (0.1, "0.1"),
        (1.0, "1.0"),
        (1e-05, "1e-05"),
        (float("inf"), "inf"),
        ("digits", '"digits"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),
    ],
)
def test_run_config_values_are_spelt_as_in_toml(value: object, spelt: str) -> None:
    assert toml_text(value) == spelt


def test_the_run_config_is_shown_in_full_unscrolled_as_typed(tmp_path: Path) -> None:
    run = write_crowd(tmp_path / "7", 3)
    config = {f"key-{n:02}": n for n in range(30)} | {
        "json-log": True,
        "dataset": "digits",
        "learning-rate": 0.1,
    }
    (run / RUN_CONFIG).write_text(json.dumps(config))
    write_report(run)
    page = (run / "report" / "report.html").read_text()
    section = page.split("<h2>Run config</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.startswith("<div><table>")  # no scroll box
    assert section.count("<tr>") == 1 + len(config)
    assert "<td class=text>json-log</td><td class=text>true</td>" in section
    assert (
        "<td class=text>dataset</td><td class=text>&quot;digits&quot;</td>" in section
    )
    assert "<td class=text>learning-rate</td><td>0.1</td>" in section
    assert "@media print { .scroll { max-height: none; overflow: visible; } }" in page


def test_the_title_names_the_run_id_wherever_the_folder_was_copied(
    tmp_path: Path,
) -> None:
    copied = shutil.copytree(write_crowd(tmp_path / "7", 3), tmp_path / "from-alice")
    write_report(Path(copied))
    page = (Path(copied) / "report" / "report.html").read_text()
    assert "<h1>Flower run 7: metadata report</h1>" in page


def test_counts_are_ticked_in_whole_numbers_at_20_clients(tmp_path: Path) -> None:
    drawn = dict(figures(load(write_crowd(tmp_path / "7", 20))))
    figure = drawn["train_converged.png"]
    FigureCanvasAgg(figure).draw()  # type: ignore[no-untyped-call]
    ticks = figure.axes[0].get_yticks()
    assert len(ticks) > 2
    assert all(tick == int(tick) for tick in ticks), ticks


def _colour(handle: object) -> str:
    """The colour a legend entry shows: a scatter's edge, a curve's line."""
    if isinstance(handle, PathCollection):
        edge = handle.get_edgecolor()[0]
        assert not isinstance(edge, float)
        return str(to_hex(edge))
    assert isinstance(handle, Line2D), handle
    colour = handle.get_color()
    assert isinstance(colour, str)  # drawn with a named colour
    return str(to_hex(colour))


@pytest.mark.parametrize("clients", [5, 12, 20, 60])
def test_a_client_has_one_colour_in_every_plot(tmp_path: Path, clients: int) -> None:
    seen: dict[str, set[str]] = {}
    for _, figure in figures(load(write_crowd(tmp_path / "7", clients))):
        legend = figure.axes[0].get_legend()
        if legend is None:
            continue
        named = {
            text.get_text(): _colour(handle)
            for text, handle in zip(
                legend.get_texts(), legend.legend_handles, strict=True
            )
            if text.get_text().startswith("…")  # not the median, the rest, the band
        }
        assert len(set(named.values())) == len(named), named  # apart in a plot
        for label, colour in named.items():
            seen.setdefault(label, set()).add(colour)
    assert seen
    assert all(len(found) == 1 for found in seen.values()), seen  # one each
    used = [colour for found in seen.values() for colour in found]
    assert len(used) == len(set(used)), seen  # a colour names one client


def test_plot_mates_never_share_a_colour_and_the_first_twelve_keep_the_palette() -> (
    None
):
    assert list(colours([[1, 2, 3]]).values())[:3] == [
        "tab:blue",
        "tab:orange",
        "tab:red",
    ]
    groups = [[1, 2, 3], [4, 5, 6], [1, 4, 7], [2, 5, 8], [3, 6, 9]]
    found = colours(groups)
    assert len(set(found.values())) == 9  # nine clients, nine colours
    many = [[n, n + 1, n + 2] for n in range(0, 60, 3)]  # 60 clients named
    found = colours(many)
    assert len(set(found.values())) == len(COLORS)
    for group in many:
        assert len({found[node] for node in group}) == len(group)


@pytest.mark.parametrize(
    ("step", "steps"),
    [
        ("epoch", "epochs"),
        ("batch", "batches"),
        ("step", "steps"),
        ("query", "queries"),
        ("day", "days"),
        ("pass", "passes"),
        ("element", "elements"),
    ],
)
def test_a_series_axis_names_its_steps_in_the_plural(step: str, steps: str) -> None:
    assert plural(step) == steps
