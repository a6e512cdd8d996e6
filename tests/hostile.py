"""Hostile and faulty ClientApp replies, for unit tests and a real simulation.

`BAD_INPUTS` tampers with a valid train reply in each way the strategy must
survive; `app` is a ClientApp whose node with partition id k sends the k-th
kind of trouble (partition 0 behaves).
"""

import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from flower_meta.v1.metadata_pb2 import TrainProcessMetadata
from flwr.app import (
    ConfigRecord,
    ConfigRecordValues,
    Context,
    Error,
    Message,
    RecordDict,
)
from flwr.clientapp import ClientApp
from google.protobuf.duration_pb2 import Duration

from flower_app.app import client_app
from flower_app.protocol import codec
from flower_app.protocol.validation import Reason
from tests.conftest import VECTORS
from tests.tutorial_pickle import armed_payload

Tamper = Callable[[RecordDict], None]
ARMED_MARKER = "FLOWER_META_ARMED_MARKER"
"""Environment variable naming the file an armed pickle would create."""
EXPECTED_EPOCHS = 5  # local-epochs in pyproject.toml


def _record(**fields: ConfigRecordValues) -> Tamper:
    def tamper(content: RecordDict) -> None:
        content[codec.RECORD_KEY] = ConfigRecord(fields)

    return tamper


def _payload(payload: bytes, type_url: str = codec.TYPE_URL) -> Tamper:
    return _record(type_url=type_url, meta=payload)


def _message(time: float = 1.0, losses: tuple[float, ...] = (0.3,) * 5) -> Tamper:
    return _payload(
        TrainProcessMetadata(
            training_time=time, training_losses=losses
        ).SerializeToString()
    )


def _drop_record(content: RecordDict) -> None:
    del content[codec.RECORD_KEY]


def _armed(content: RecordDict) -> None:
    _payload(armed_payload(Path(os.environ[ARMED_MARKER])))(content)


_VALID = TrainProcessMetadata(
    training_time=2.0, converged=False, training_losses=[0.5] * EXPECTED_EPOCHS
).SerializeToString()
_DURATION = Duration(seconds=5, nanos=7).SerializeToString()

BAD_INPUTS: list[tuple[str, Tamper, Reason]] = [
    ("no_record", _drop_record, Reason.MISSING_RECORD),
    ("no_meta_key", _record(type_url=codec.TYPE_URL), Reason.MISSING_META),
    ("meta_str", _record(type_url=codec.TYPE_URL, meta="text"), Reason.META_NOT_BYTES),
    ("meta_int", _record(type_url=codec.TYPE_URL, meta=7), Reason.META_NOT_BYTES),
    (
        "meta_list",
        _record(type_url=codec.TYPE_URL, meta=[b"a", b"b"]),
        Reason.META_NOT_BYTES,
    ),
    ("no_type_url", _record(meta=_VALID), Reason.MISSING_TYPE_URL),
    ("empty_bytes", _payload(b""), Reason.MISSING_TRAINING_TIME),
    ("truncated", _payload(_VALID[:-3]), Reason.MALFORMED),
    ("random_bytes", _payload(random.Random(0).randbytes(64)), Reason.MALFORMED),
    (
        "other_message_type",
        _payload(_DURATION, "type.googleapis.com/google.protobuf.Duration"),
        Reason.WRONG_TYPE,
    ),
    ("other_message_mislabelled", _payload(_DURATION), Reason.MISSING_TRAINING_TIME),
    (
        "future_major_version",
        _payload(_VALID, "type.googleapis.com/flower_meta.v2.TrainProcessMetadata"),
        Reason.UNSUPPORTED_VERSION,
    ),
    ("over_size_limit", _payload(b"\x00" * 65_537), Reason.PAYLOAD_TOO_LARGE),
    ("nan_time", _message(time=math.nan), Reason.TRAINING_TIME_OUT_OF_RANGE),
    ("infinite_time", _message(time=math.inf), Reason.TRAINING_TIME_OUT_OF_RANGE),
    ("negative_time", _message(time=-3.0), Reason.TRAINING_TIME_OUT_OF_RANGE),
    ("nan_loss", _message(losses=(0.3, math.nan) * 3), Reason.LOSS_OUT_OF_RANGE),
    ("infinite_loss", _message(losses=(math.inf,) * 5), Reason.LOSS_OUT_OF_RANGE),
    ("missing_epochs", _message(losses=(0.3, 0.2)), Reason.EPOCHS_MISSING),
    ("too_many_epochs", _message(losses=(0.1,) * 5_000), Reason.TOO_MANY_EPOCHS),
    (
        "tutorial_pickle",
        _payload((VECTORS / "pickle_payload.binpb").read_bytes()),
        Reason.MALFORMED,
    ),
    ("armed_pickle", _armed, Reason.MALFORMED),
]

FAILURES = ["raises", "error_reply", "times_out"]
"""Partitions after the bad inputs: ClientApps that fail outright."""
SLEEP_SECONDS = 30.0

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train for real, then misbehave as this node's partition id says."""
    trouble = int(context.node_config["partition-id"]) - 1
    failure = trouble - len(BAD_INPUTS)
    if failure >= 0 and FAILURES[failure] == "raises":
        raise RuntimeError("this ClientApp crashes")
    if failure >= 0 and FAILURES[failure] == "error_reply":
        return Message(Error(code=1, reason="this ClientApp gives up"), reply_to=msg)
    if failure >= 0:
        time.sleep(SLEEP_SECONDS)
    reply = client_app.train(msg, context)
    if 0 <= trouble < len(BAD_INPUTS):
        BAD_INPUTS[trouble][1](reply.content)
    return reply


NUM_NODES = 1 + len(BAD_INPUTS) + len(FAILURES)
