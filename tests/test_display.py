"""Any message shown as its schema says: values, rounding, summaries, egress words."""

from flower_app.outcomes.statistics import summary, value, values
from flower_app.protocol.display import egress_text, shown
from flower_meta.v1.metadata_pb2 import (
    EgressNote,
    EvaluateProcessMetadata,
    MetadataLogRecord,
    TrainProcessMetadata,
)

TRAIN = TrainProcessMetadata.DESCRIPTOR.fields_by_name


def test_digits_round_floats_and_leave_integers_alone() -> None:
    meta = EvaluateProcessMetadata(
        evaluation_time=0.123456, num_examples=12345, loss=1.23456, accuracy=0.5
    )
    found = shown(meta, digits=3)
    assert found == {
        "evaluation_time": 0.123,
        "num_examples": 12345,
        "loss": 1.23,
        "accuracy": 0.5,
    }
    assert isinstance(found["num_examples"], int)


def test_a_string_field_is_shown_escaped_and_cut_at_200() -> None:
    assert shown(MetadataLogRecord(record_key="k" * 200))["record_key"] == "k" * 200
    assert (
        shown(MetadataLogRecord(record_key="k\n" * 150))["record_key"]
        == "k\\n" * 66 + "k\\... (300 characters in all)"
    )


def test_values_skip_clients_that_did_not_report_the_field() -> None:
    reports = [TrainProcessMetadata(training_time=2.0), TrainProcessMetadata()]
    assert values(reports, TRAIN["training_time"]) == [2.0]


def test_value_is_one_message_s_number_or_none() -> None:
    time, losses = TRAIN["training_time"], TRAIN["training_losses"]
    assert value(TrainProcessMetadata(training_time=0.0), time) == 0.0
    assert value(TrainProcessMetadata(), time) is None
    assert value(TrainProcessMetadata(training_losses=[3.0, 0.5]), losses) == 0.5
    assert value(TrainProcessMetadata(), losses) is None
    count = EvaluateProcessMetadata.DESCRIPTOR.fields_by_name["num_examples"]
    assert value(EvaluateProcessMetadata(), count) == 0.0  # implicit presence


def test_a_flag_counts_true_among_those_that_reported() -> None:
    reports = [
        TrainProcessMetadata(converged=True),
        TrainProcessMetadata(converged=False),
        TrainProcessMetadata(),
    ]
    assert summary(reports, TRAIN["converged"]) == "1/2 true (1 not reported)"


def test_a_series_sums_up_as_the_spread_of_its_last_elements() -> None:
    reports = [
        TrainProcessMetadata(training_losses=[1.0, 0.5]),
        TrainProcessMetadata(training_losses=[0.8, 0.25]),
        TrainProcessMetadata(training_losses=[0.1, 0.05, 2.0]),
        TrainProcessMetadata(training_losses=[0.9, 0.3]),
    ]
    # last elements 0.5, 0.25, 2.0, 0.3: median 0.4 (their mean would be 0.7625)
    assert summary(reports, TRAIN["training_losses"]) == (
        "last epoch: min 0.25 | median 0.4 | max 2"
    )


def test_egress_words_bound_what_a_note_names() -> None:
    long = "x" * 100
    cut = "x" * 80 + "... (100 characters in all)"
    assert egress_text(EgressNote(withheld=[long])) == f"withheld {cut}"
    assert egress_text(EgressNote(last_only=[long])) == f"{cut}: last element only"
