"""Client labels: short, a suffix of the node id, and unique within a run."""

import random

from hypothesis import given
from hypothesis import strategies as st

from flower_app.reporting.clients import labels


def _digits(label: str) -> str:
    return label.removeprefix("…")


def test_short_ids_are_shown_whole_and_long_ones_by_their_last_six_digits() -> None:
    assert labels([7, 123456, 17468050154045164370]) == {
        7: "7",
        123456: "123456",
        17468050154045164370: "…164370",
    }


def test_clients_whose_last_digits_agree_get_more_of_theirs() -> None:
    assert labels([9876511123456, 9876522123456, 3300001654321]) == {
        9876511123456: "…11123456",
        9876522123456: "…22123456",
        3300001654321: "…654321",  # unlike the others', its last six are its own
    }


@given(st.sets(st.integers(min_value=0, max_value=2**64 - 1), max_size=200))
def test_every_label_is_a_unique_suffix_of_its_id(nodes: set[int]) -> None:
    found = labels(nodes)
    assert set(found) == nodes
    assert len(set(found.values())) == len(nodes)
    for node, label in found.items():
        assert str(node).endswith(_digits(label))
        assert label.startswith("…") == (len(str(node)) > len(_digits(label)))


def test_a_thousand_flower_ids_keep_short_labels() -> None:
    rng = random.Random(1)
    nodes = {rng.randrange(10**18, 2**64) for _ in range(1000)}
    found = labels(nodes)
    assert len(set(found.values())) == 1000
    assert max(len(label) for label in found.values()) <= len("…") + 8
