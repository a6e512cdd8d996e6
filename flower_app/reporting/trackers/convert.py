"""Log records to a tracker's scalars and texts, round by round (any backend).

See the package's docstring for the names and steps; `Backend` is what a
tracker library is asked to do.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from google.protobuf.message import Message

from flower_app.outcomes import statistics as stats
from flower_app.outcomes.model import Outcomes
from flower_app.outcomes.statistics import VALUES_SHOWN
from flower_app.outcomes.stragglers import STRAGGLER_FACTOR, stragglers
from flower_app.protocol import schema
from flower_app.protocol.files import safe_name
from flower_app.protocol.records import written_at
from flower_app.protocol.text import printable

Scalar = tuple[str, float, int, int]
"""(name, value, step, when: milliseconds since the Unix epoch)"""
TRACKED_CLIENTS = 10
"""Clients of a stage whose own values are tracked; the summaries cover all."""
Text = tuple[str, str, int, int]
"""(name, Markdown, step, when: milliseconds since the Unix epoch)"""


class Backend(Protocol):
    """What a tracker library is asked to do."""

    def scalars(self, values: Sequence[Scalar]) -> None:
        """Record scalars."""

    def texts(self, values: Sequence[Text]) -> None:
        """Record texts: Markdown, one per name and step."""

    def units(self, units: dict[str, str]) -> None:
        """Record what each field's numbers are measured in."""

    def close(self, run_dir: Path | None, ended: int | None) -> None:
        """Finish, keeping the run folder's files where the tracker can.

        `ended`: the run's last record's time (ms since the epoch), if known.
        """


BATCH = 1000
"""Scalars sent in one write when a run is replayed: MLflow's most a call."""


class Tracker:
    """Turns metadata log records into a tracker's scalars, round by round."""

    def __init__(self, backend: Backend, straggler_factor: float = STRAGGLER_FACTOR):
        """Send to `backend`; flag stragglers above `straggler_factor` x the median."""
        self.backend = backend
        self.straggler_factor = straggler_factor
        self.outcomes = Outcomes()
        self._offsets: dict[str, int] = defaultdict(int)
        """A series' first step of the next round: the earlier rounds' longest."""
        self._series: dict[tuple[str, int], list[tuple[int, Message, int]]] = (
            defaultdict(list)
        )
        """(stage key, round) -> tracked clients' (node, message, when)."""
        self._pending: list[Scalar] = []
        self._texts: list[Text] = []
        self._tracked: dict[str, set[int]] = defaultdict(set)
        self._units: dict[str, str] = {}
        self._sent_units: dict[str, str] = {}
        self._rounds: dict[tuple[str, int], int] = {}
        self.last: int | None = None
        """The latest record time seen, ms since the Unix epoch."""

    def append(self, record: Message) -> None:
        """Take one record: a client's values now, the round's summary at `flush`.

        `record` is a `MetadataLogRecord` of this build or of a log's own schema.
        """
        key = self.outcomes.add(record)
        at = record.server_round  # type: ignore[attr-defined]
        when = written_at(record) or int(time.time() * 1000)
        self.last = max(self.last or when, when)
        if record.WhichOneof("outcome") == "centralized":
            metrics = self.outcomes.centralized[at]
            self._pending += [
                (f"centralized/{safe_name(k)}", v, at, when) for k, v in metrics.items()
            ]
            return
        if not key:
            return
        stage = self.outcomes.stage(key)
        self._rounds[key, at] = max(self._rounds.get((key, at), when), when)
        node = record.node_id  # type: ignore[attr-defined]
        tracked = self._tracked[key]
        if node not in tracked and len(tracked) < TRACKED_CLIENTS:
            tracked.add(node)
        accepted = stage.round(at).accepted
        meta = accepted[node] if node in tracked and node in accepted else None
        if meta is not None:
            self._client(safe_name(stage.name), node, at, meta, when)
            self._series[key, at].append((node, meta, when))

    def flush(self, batch: int = 0) -> None:
        """Summarise the rounds taken since the last flush; send what waits.

        A summarised round's messages are let go: a tracker holds one round.
        `batch`: send only once at least that many scalars wait (a replay's
        fewer, fuller writes: `BATCH`); `close` sends the rest.
        """
        for (key, at), when in sorted(self._rounds.items()):
            self._series_points(key, at)
            self._summary(key, at, when)
            self.outcomes.stage(key).by_round.pop(at, None)
        self._rounds.clear()
        if len(self._pending) < batch:
            return
        if self._units.items() - self._sent_units.items():
            self.backend.units(dict(self._units))
            self._sent_units = dict(self._units)
        if self._pending:
            self.backend.scalars(self._pending)
            self._pending = []
        if self._texts:
            self.backend.texts(self._texts)
            self._texts = []

    def close(self, run_dir: Path | None = None) -> None:
        """Send what is left and finish."""
        self.flush()
        self.backend.close(run_dir, self.last)

    def _client(self, stage: str, node: int, at: int, meta: Message, when: int) -> None:
        for field in stats.numeric_fields(meta.DESCRIPTOR):
            name = f"{stage}/{safe_name(field.name)}"
            if unit := schema.unit(field):
                self._units[name] = printable(unit, 200)
            if field.is_repeated:
                continue  # at the round's end, when its longest series is known
            if (value := stats.value(meta, field)) is not None:
                self._pending.append((f"{name}/node_{node}", value, at, when))

    def _series_points(self, key: str, at: int) -> None:
        """Send the tracked clients' series of one round, aligned across clients.

        Round `at` of a series starts after the longest series of each
        earlier round (of every client, tracked or not): a step depends on
        the round and the element's index only.
        """
        stage = self.outcomes.stage(key)
        table = stats.columns(stage.round(at).accepted)
        name = safe_name(stage.name)
        tracked = self._series.pop((key, at), [])
        for field in stats.numeric_fields(stage.message_type):
            if not field.is_repeated:
                continue
            step = safe_name(schema.field_spec(field).series or "element")
            series = f"{name}_per_{step}/{safe_name(field.name)}"
            offset = self._offsets[series]
            for node, meta, when in tracked:
                for index, value in enumerate(getattr(meta, field.name), 1):
                    self._pending.append(
                        (f"{series}/node_{node}", float(value), offset + index, when)
                    )
            self._offsets[series] = offset + stats.longest(table, field)

    def _summary(self, key: str, at: int, when: int) -> None:
        stage = self.outcomes.stage(key)
        found = stage.round(at)
        accepted = found.accepted
        counts = {
            "accepted": len(accepted),
            "rejected": len(found.rejected),
            "failed": len(found.failed),
            "stragglers": len(stragglers(stage, at, self.straggler_factor).slow),
        }
        name = safe_name(stage.name)
        self._pending += [
            (f"{name}/{k}", float(v), at, when) for k, v in counts.items()
        ]
        for field in stats.numeric_fields(stage.message_type):
            self._pending += [
                (f"{name}/{safe_name(field.name)}/{what}", value, at, when)
                for what, value in stats.spread(accepted, field).items()
            ]
        for field in stats.other_fields(stage.message_type):
            sent: Counter[str | None] = Counter(
                stats.value_text(meta, field) for meta in accepted.values()
            )
            if sent:
                text = _counts_markdown(sent)
                self._texts.append((f"{name}/{safe_name(field.name)}", text, at, when))


def _counts_markdown(counts: Counter[str | None]) -> str:
    """Tabulate in Markdown how many clients sent each value, most first."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))
    rows = [
        f"| {cell('(not sent)' if value is None else value)} | {count} |"
        for value, count in ranked[:VALUES_SHOWN]
    ]
    if len(ranked) > VALUES_SHOWN:
        rest = sum(count for _, count in ranked[VALUES_SHOWN:])
        rows.append(f"| {len(ranked) - VALUES_SHOWN} other values | {rest} |")
    return "| value | clients |\n| --- | --- |\n" + "\n".join(rows)


def cell(text: str) -> str:
    """Make text one Markdown table cell: no line break, no column bar."""
    return printable(text, 500).replace("|", "\\|")
