"""Policies and shapes shared across rounds and modules cannot change in place."""

import dataclasses

import pytest

from flower_app.client.egress import EgressPolicy
from flower_app.outcomes.stragglers import Stragglers
from flower_app.protocol.rules import DEFAULT_LIMITS, Excused
from flower_app.server.admission import Expected, NpyHeader
from flower_app.server.strategy import EVALUATE, TRAIN, MetadataOptions

SHARED = [
    DEFAULT_LIMITS,
    Excused(),
    EgressPolicy(),
    MetadataOptions(),
    NpyHeader(b"", 0, ()),
    Expected("num-examples", with_arrays=False),
    Stragglers({}, {}),
    TRAIN,
    EVALUATE,
]


@pytest.mark.parametrize("value", SHARED, ids=lambda v: type(v).__name__)
def test_a_shared_value_cannot_change(value: object) -> None:
    first = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, getattr(value, first))
