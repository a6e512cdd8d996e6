"""Numbers print as ECMAScript's String(number) does, on both sides of each form.

The expected texts are what a JavaScript engine prints (ECMA-262,
Number::toString): positional from 1e-6 up to below 1e21, exponential
outside; Python's repr differs at 1e16 and above and below 1e-4.
"""

import math

import pytest

from flower_app.protocol.canonical_json import format_number, number_text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (0.0001, "0.0001"),
        (0.00001, "0.00001"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-1.5e-7, "-1.5e-7"),
        (123e-20, "1.23e-18"),
        (9999999999999998.0, "9999999999999998"),
        (1e16, "10000000000000000"),
        (-1e16, "-10000000000000000"),
        (12345678901234567.0, "12345678901234568"),
        (1e20, "100000000000000000000"),
        (1.5e20, "150000000000000000000"),
        (1e21, "1e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
    ],
)
def test_a_number_prints_as_ecmascript_prints_it(number: float, text: str) -> None:
    assert format_number(number) == text
    assert number_text(number) == text


def test_nan_and_the_infinities_have_names_but_no_json() -> None:
    assert number_text(math.nan) == "NaN"
    assert number_text(math.inf) == "Infinity"
    assert number_text(-math.inf) == "-Infinity"
    with pytest.raises(ValueError, match="JSON has no"):
        format_number(math.inf)
