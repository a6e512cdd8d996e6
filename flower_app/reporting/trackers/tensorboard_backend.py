"""TensorBoard: event files in one folder per Flower run, without TensorFlow."""

import math
import time
from collections.abc import Sequence
from pathlib import Path

from flower_app.protocol.files import output_folder
from flower_app.protocol.text import printable
from flower_app.reporting.trackers.convert import Scalar, Text, cell


class TensorBoardBackend:
    """TensorBoard event files in one folder per Flower run.

    Written with TensorBoard's own event writer and protos (the package
    `tensorboard`), so no ML framework is needed.
    """

    def __init__(self, log_dir: Path, params: dict[str, str] | None = None) -> None:
        """Write event files into `log_dir`; `params`: the run config, as text."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        folder = output_folder(log_dir)
        for earlier in folder.glob("events.out.tfevents.*"):
            if earlier.is_symlink() or earlier.is_file():  # a link, never its target
                earlier.unlink()  # exporting again replaces the run, not adds one
        self.log_dir = folder
        self.writer = EventFileWriter(str(folder))
        if params:
            self._table("run_config", ("key", "value"), params)
            self._hparams(params)

    def scalars(self, values: Sequence[Scalar]) -> None:
        """Add each scalar at its step, at the time of its record."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        for name, value, step, when in values:
            entry = Summary.Value(tag=name, simple_value=value)
            self._add(Summary(value=[entry]), step, when / 1000)
        self.writer.flush()

    def texts(self, values: Sequence[Text]) -> None:
        """Add each text (Markdown) at its step, at the time of its record."""
        from tensorboard.plugins.text.summary_v2 import text_pb

        for name, text, step, when in values:
            self._add(text_pb(f"{name}/text_summary", text), step, when / 1000)
        self.writer.flush()

    def units(self, units: dict[str, str]) -> None:
        """Write the units as a Markdown table under the tag "units"."""
        self._table("units", ("field", "unit"), units)

    def _table(self, tag: str, columns: tuple[str, str], rows: dict[str, str]) -> None:
        """Write a two-column Markdown table as the text summary `tag`."""
        from tensorboard.plugins.text.summary_v2 import text_pb

        lines = "\n".join(f"| {cell(k)} | {cell(v)} |" for k, v in sorted(rows.items()))
        table = f"| {columns[0]} | {columns[1]} |\n| --- | --- |\n{lines}"
        self._add(text_pb(f"{tag}/text_summary", table), 0, time.time())

    def _hparams(self, params: dict[str, str]) -> None:
        """Write the run config as the run's hyperparameters (the HParams tab)."""
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb

        values = {printable(key, 200): _hparam(text) for key, text in params.items()}
        self._add(hparams_pb(values, start_time_secs=time.time()), 0, time.time())

    def _add(self, summary: object, step: int, wall_time: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.writer.add_event(Event(wall_time=wall_time, step=step, summary=summary))

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        """Close the event file."""
        self.writer.close()


def _hparam(text: str) -> bool | float | str:
    """Read a run-config value as an HParams value: a number, a flag or text."""
    if text in {"True", "False"}:
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return number
    return printable(text, 500)
