"""The ClientApp mod around plain quickstart-style functions."""

import hashlib

import pytest
from flwr.app import Context, Error, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flower_app.client.mod import MetadataMod, report
from flower_app.protocol import codec
from flower_app.protocol.rules import Limits
from flower_meta.v1.metadata_pb2 import (
    EvaluateProcessMetadata,
    Rejection,
    TrainProcessMetadata,
)
from tests.helpers import node_context

CONTEXT: Context = node_context(1, 0)


class Ticks:
    """A clock that advances 3 s between the mod's two readings."""

    def __init__(self) -> None:
        self.readings = iter([100.0, 103.0])

    def __call__(self) -> float:
        return next(self.readings)


def _app(body: object, mod: MetadataMod | None = None) -> ClientApp:
    app = ClientApp(mods=[mod or MetadataMod(clock=Ticks())])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        result = body() if callable(body) else None
        if isinstance(result, Message):
            return result
        metrics = MetricRecord({"num-examples": 1})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        report(num_examples=3, loss=0.5, accuracy=1.0)
        return Message(RecordDict({"metrics": MetricRecord({"x": 1.0})}), reply_to=msg)

    return app


def _call(app: ClientApp, kind: str = MessageType.TRAIN) -> Message:
    return app(Message(RecordDict(), dst_node_id=1, message_type=kind), CONTEXT)


def _train_meta(reply: Message) -> TrainProcessMetadata:
    return codec.from_message(TrainProcessMetadata, reply, "train_metadata")


def test_the_mod_times_the_call_and_attaches_what_was_reported() -> None:
    app = _app(lambda: report(training_losses=[0.5, 0.25], converged=True))
    assert _train_meta(_call(app)) == TrainProcessMetadata(
        training_time=3.0, converged=True, training_losses=[0.5, 0.25]
    )


def test_a_reported_duration_is_kept() -> None:
    app = _app(lambda: report(training_time=1.5))
    assert _train_meta(_call(app)).training_time == 1.5


def test_none_leaves_a_field_absent_and_lists_replace() -> None:
    def body() -> None:
        report(converged=True, training_losses=[9.0])
        report(converged=None, training_losses=[1.0, 2.0])

    meta = _train_meta(_call(_app(body)))
    assert not meta.HasField("converged")
    assert list(meta.training_losses) == [1.0, 2.0]


def test_evaluate_replies_carry_evaluation_metadata() -> None:
    reply = _call(_app(None), MessageType.EVALUATE)
    meta = codec.from_message(EvaluateProcessMetadata, reply, "evaluate_metadata")
    assert meta == EvaluateProcessMetadata(
        evaluation_time=3.0, num_examples=3, loss=0.5, accuracy=1.0
    )
    assert "train_metadata" not in reply.content


def test_a_report_that_breaks_a_rule_sends_the_update_and_the_reason() -> None:
    """The reason, the field, the rule in words, the size and hash: no data."""
    reply = _call(_app(lambda: report(training_losses=[-1.0])))
    assert reply.content["metrics"]["num-examples"] == 1  # the update still goes
    sent_record = reply.content[codec.TRAIN_RECORD_KEY]
    on_the_wire = Rejection.FromString(sent_record[codec.META_KEY])  # type: ignore[arg-type]
    report_bytes = TrainProcessMetadata(
        training_time=3.0, training_losses=[-1.0]
    ).SerializeToString()
    assert on_the_wire == Rejection(
        reason="loss_out_of_range",
        detail="training_losses[0]: must be finite and >= 0",
        payload_size=len(report_bytes),
        payload_sha256=hashlib.sha256(report_bytes).digest(),
        type_url="type.googleapis.com/flower_meta.v1.TrainProcessMetadata",
        field_path="training_losses[0]",
        rule_id="double.gte",
    )
    with pytest.raises(codec.Refused) as caught:
        _train_meta(reply)
    refused = caught.value
    assert refused.reason == "loss_out_of_range"
    assert refused.detail == (
        "refused by the node: training_losses[0]: must be finite and >= 0"
    )
    assert refused.payload == b""
    assert refused.payload_size == len(report_bytes)
    assert refused.payload_sha256 == hashlib.sha256(report_bytes).digest()


def test_a_report_over_the_size_limit_is_refused_at_the_node() -> None:
    mod = MetadataMod(clock=Ticks(), limits=Limits(max_payload_bytes=16))
    reply = _call(_app(lambda: report(training_losses=[0.5] * 8), mod))
    with pytest.raises(codec.Refused) as caught:
        _train_meta(reply)
    assert caught.value.reason == "payload_too_large"
    assert caught.value.payload_size == 8 * 8 + 2 + 9  # losses, their tag, the time


def test_a_wrong_field_name_is_a_clear_error() -> None:
    with pytest.raises(AttributeError, match="no_such_field"):
        _call(_app(lambda: report(no_such_field=1)))


def test_error_replies_pass_untouched() -> None:
    def fail() -> Message:
        return Message(Error(code=1, reason="gave up"), reply_to=_probe)

    _probe = Message(RecordDict(), dst_node_id=1, message_type=MessageType.TRAIN)
    reply = _app(fail)(_probe, CONTEXT)
    assert reply.has_error()
    assert reply.error.reason == "gave up"


def test_a_stage_without_a_type_is_left_alone_and_its_reports_ignored() -> None:
    app = _app(None, MetadataMod(evaluate=None, clock=Ticks()))
    reply = _call(app, MessageType.EVALUATE)
    assert "evaluate_metadata" not in reply.content


def test_report_outside_the_mod_says_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match=r"mods=\[metadata_mod\]"):
        report(training_time=1.0)
