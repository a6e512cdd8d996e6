"""Hostile and faulty ClientApp replies, for unit tests and a real simulation.

`BAD_INPUTS` tampers with a valid train reply in each way the strategy must
survive, with the outcome it must come to; `app` is a ClientApp whose node
with partition id k sends the k-th kind of trouble (partition 0 behaves).
"""

import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from flwr.app import (
    Array,
    ConfigRecord,
    ConfigRecordValues,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from google.protobuf.duration_pb2 import Duration

from flower_app.app import client_app
from flower_app.client.mod import metadata_mod, report
from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from tests.helpers import VECTORS
from tests.tutorial_pickle import armed_payload

Tamper = Callable[[RecordDict], None]
ARMED_MARKER = "FLOWER_META_ARMED_MARKER"
"""Environment variable naming the file an armed pickle would create."""
EXPECTED_EPOCHS = 5  # local-epochs in pyproject.toml
URL = "type.googleapis.com/flower_meta.v1.TrainProcessMetadata"
KEY = "train_metadata"


class BadInput(NamedTuple):
    """One kind of trouble in a reply, and what the server must make of it."""

    name: str
    tamper: Tamper
    outcome: str
    """"rejected" (metadata refused, update counts) or "failed" (not counted)."""
    reason: str
    """The reason code (rejected) or the start of the reason (failed).

    `{first}` stands for the name of the model's first array."""

    def expected(self, first: str) -> str:
        """The reason, for a model whose first array is named `first`."""
        return self.reason.format(first=first)


def _record(**fields: ConfigRecordValues) -> Tamper:
    def tamper(content: RecordDict) -> None:
        content[KEY] = ConfigRecord(fields)

    return tamper


def _payload(payload: bytes, type_url: str = URL) -> Tamper:
    return _record(type_url=type_url, meta=payload)


def _message(time: float = 1.0, losses: tuple[float, ...] = (0.3,) * 5) -> Tamper:
    meta = TrainProcessMetadata(training_time=time, training_losses=losses)
    return _payload(meta.SerializeToString())


def _drop_record(content: RecordDict) -> None:
    del content[KEY]


def _as_metrics(content: RecordDict) -> None:
    content[KEY] = MetricRecord({"meta": 1.0})


def _second_arrays(content: RecordDict) -> None:
    content["more"] = content.array_records["arrays"]


def _shrunk_model(content: RecordDict) -> None:
    first = next(iter(content.array_records["arrays"]))
    content.array_records["arrays"][first] = Array(np.zeros(1, dtype=np.float32))


def _unloadable_array(content: RecordDict) -> None:
    """Bytes as long as the model's, but no .npy header."""
    arrays = content.array_records["arrays"]
    name, array = next(iter(arrays.items()))
    garbage = b"\x00" * len(array.data)
    arrays[name] = Array(array.dtype, array.shape, array.stype, garbage)


def _truncated_array(content: RecordDict) -> None:
    """The model's own .npy header, then 4 bytes short of its data."""
    arrays = content.array_records["arrays"]
    name, array = next(iter(arrays.items()))
    arrays[name] = Array(array.dtype, array.shape, array.stype, array.data[:-4])


def _lying_header(content: RecordDict) -> None:
    """A .npy header of another shape, same element count, declared as the model's."""
    arrays = content.array_records["arrays"]
    name, array = next(iter(arrays.items()))
    other = Array(array.numpy().reshape(1, -1))
    arrays[name] = Array(array.dtype, array.shape, array.stype, other.data)


def _armed(content: RecordDict) -> None:
    _payload(armed_payload(Path(os.environ[ARMED_MARKER])))(content)


_VALID = TrainProcessMetadata(
    training_time=2.0, converged=False, training_losses=[0.5] * EXPECTED_EPOCHS
).SerializeToString()
_DURATION = Duration(seconds=5, nanos=7).SerializeToString()

BAD_INPUTS = [
    BadInput("no_record", _drop_record, "rejected", "missing_record"),
    BadInput("no_meta_key", _record(type_url=URL), "rejected", "missing_meta"),
    BadInput(
        "meta_str", _record(type_url=URL, meta="text"), "rejected", "meta_not_bytes"
    ),
    BadInput("meta_int", _record(type_url=URL, meta=7), "rejected", "meta_not_bytes"),
    BadInput(
        "meta_list", _record(type_url=URL, meta=[b"a"]), "rejected", "meta_not_bytes"
    ),
    BadInput("no_type_url", _record(meta=_VALID), "rejected", "missing_type_url"),
    BadInput(
        "forged_log_line",
        _payload(_VALID, URL + "\nINFO :      round 1 node 1: forged"),
        "rejected",
        "invalid_type_url",
    ),
    BadInput(
        "ansi_type_url",
        _payload(_VALID, "\x1b[2J\x1b[31m"),
        "rejected",
        "invalid_type_url",
    ),
    BadInput(
        "huge_type_url",
        _payload(_VALID, "t" * 1_000_000),
        "rejected",
        "invalid_type_url",
    ),
    BadInput("empty_bytes", _payload(b""), "rejected", "missing_training_time"),
    BadInput("truncated", _payload(_VALID[:-3]), "rejected", "malformed"),
    BadInput(
        "random_bytes",
        _payload(random.Random(0).randbytes(64)),
        "rejected",
        "malformed",
    ),
    BadInput(
        "other_message_type",
        _payload(_DURATION, "type.googleapis.com/google.protobuf.Duration"),
        "rejected",
        "wrong_type",
    ),
    BadInput(
        "other_message_mislabelled",
        _payload(_DURATION),
        "rejected",
        "missing_training_time",
    ),
    BadInput(
        "future_major_version",
        _payload(_VALID, "type.googleapis.com/flower_meta.v2.TrainProcessMetadata"),
        "rejected",
        "unsupported_version",
    ),
    BadInput(
        "over_size_limit", _payload(b"\x00" * 65_537), "rejected", "payload_too_large"
    ),
    BadInput(
        "nan_time", _message(time=math.nan), "rejected", "training_time_out_of_range"
    ),
    BadInput(
        "infinite_time",
        _message(time=math.inf),
        "rejected",
        "training_time_out_of_range",
    ),
    BadInput(
        "negative_time", _message(time=-3.0), "rejected", "training_time_out_of_range"
    ),
    BadInput(
        "nan_loss",
        _message(losses=(0.3, math.nan) * 3),
        "rejected",
        "loss_out_of_range",
    ),
    BadInput(
        "infinite_loss",
        _message(losses=(math.inf,) * 5),
        "rejected",
        "loss_out_of_range",
    ),
    BadInput(
        "missing_epochs", _message(losses=(0.3, 0.2)), "rejected", "epochs_missing"
    ),
    BadInput(
        "too_many_epochs",
        _message(losses=(0.1,) * 5_000),
        "rejected",
        "too_many_epochs",
    ),
    BadInput(
        "tutorial_pickle",
        _payload((VECTORS / "pickle_payload.binpb").read_bytes()),
        "rejected",
        "malformed",
    ),
    BadInput("armed_pickle", _armed, "rejected", "malformed"),
    BadInput(
        "metadata_as_metrics", _as_metrics, "failed", "needs exactly one MetricRecord"
    ),
    BadInput(
        "two_array_records", _second_arrays, "failed", "needs exactly one ArrayRecord"
    ),
    BadInput("other_model_shape", _shrunk_model, "failed", "arrays differ"),
    BadInput(
        "unloadable_array", _unloadable_array, "failed", "array '{first}' does not load"
    ),
    BadInput(
        "truncated_array", _truncated_array, "failed", "array '{first}' does not load"
    ),
    BadInput("npy_header_lies", _lying_header, "failed", "arrays differ"),
    BadInput(
        "nan_late_in_a_long_series",
        _message(losses=(0.3,) * 299 + (math.nan,)),
        "rejected",
        "loss_out_of_range",
    ),
]

FAILURES = ["raises", "error_reply"]
"""Partitions after the bad inputs: ClientApps that fail outright."""


def _trouble(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Misbehave as this node's partition id says, around the real ClientApp."""
    trouble = int(context.node_config["partition-id"]) - 1
    failure = trouble - len(BAD_INPUTS)
    if failure in range(len(FAILURES)) and FAILURES[failure] == "raises":
        raise RuntimeError("this ClientApp crashes\nwith a second line")
    if failure in range(len(FAILURES)):
        return Message(Error(code=1, reason="this ClientApp gives up"), reply_to=msg)
    reply = call_next(msg, context)
    if 0 <= trouble < len(BAD_INPUTS):
        BAD_INPUTS[trouble].tamper(reply.content)
    return reply


NUM_NODES = 1 + len(BAD_INPUTS) + len(FAILURES) + 1
"""The last partition's own metadata breaks a rule: its node refuses to send it."""


def _breaks_a_rule(
    msg: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """In the last partition, report a negative loss, as a buggy train function."""
    reply = call_next(msg, context)
    if int(context.node_config["partition-id"]) == NUM_NODES - 1:
        report(training_losses=[-1.0] * EXPECTED_EPOCHS)
    return reply


app = ClientApp(mods=[_trouble, metadata_mod, _breaks_a_rule])
app.train()(client_app.train)

RELEASE = "FLOWER_META_RELEASE"
"""Environment variable naming the file whose creation releases the silent node."""
RELEASE_CAP = 600.0
"""Seconds the silent node waits at most, should its test never release it."""


def _silent(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Partition 1 answers only once the test has released it."""
    if int(context.node_config["partition-id"]) == 1:
        release = Path(os.environ[RELEASE])
        waited = 0.0
        while not release.exists() and waited < RELEASE_CAP:
            time.sleep(0.1)
            waited += 0.1
    return call_next(msg, context)


silent_app = ClientApp(mods=[_silent, metadata_mod])
silent_app.train()(client_app.train)
