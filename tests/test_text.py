"""Client text is escaped and cut at its limit, on both sides of the limit."""

import pytest

from flower_app.protocol.text import LIMIT, error_text, printable


def test_the_default_limit_is_512_characters() -> None:
    assert LIMIT == 512
    assert printable("a" * 512) == "a" * 512
    assert printable("a" * 513) == "a" * 512 + "... (513 characters in all)"


def test_printable_text_up_to_the_limit_is_kept_as_it_is() -> None:
    assert printable("abc", 3) == "abc"
    assert printable("abcd", 3) == "abc... (4 characters in all)"


def test_escapes_count_toward_the_limit() -> None:
    assert printable("\nab", 4) == "\\nab"  # 4 characters once escaped
    assert printable("\nabc", 4) == "\\nab... (4 characters in all)"
    assert printable("\x1b[31m", 10) == "\\x1b[31m"


def test_a_long_text_is_cut_even_when_its_start_is_printable() -> None:
    assert printable("abcd\n", 3) == "abc... (5 characters in all)"


def test_a_lone_surrogate_is_escaped() -> None:
    assert printable("\ud800x") == "\\ud800x"


RAY_REASON = (
    "<class 'ray.exceptions.RayTaskError(ClientAppException)'>:<'\x1b[36mray::"
    'ClientAppActor.run()\x1b[39m (pid=1, ip=192.0.2.2)\n  File "x.py", line 3\n'
    "    raise ValueError('peak_memory_mib: got 1000000')\n"
    "flwr.clientapp.client_app.ClientAppException: \nException ClientAppException "
    "occurred. Message: peak_memory_mib: got 1000000'>"
)


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (
            RAY_REASON,
            "peak_memory_mib: got 1000000 (RayTaskError(ClientAppException))",
        ),
        (
            "<class 'ZeroDivisionError'>:<'division by zero'>",
            "division by zero (ZeroDivisionError)",
        ),
        ("gave up", "gave up"),
        ("\x1b[31mred\x1b[0m\nline", r"red\nline"),
        ("<class 'X'>:<'a\x07b'>", r"a\x07b (X)"),
    ],
)
def test_an_error_reason_leads_with_the_exceptions_own_message(
    reason: str, text: str
) -> None:
    assert error_text(reason) == text


def test_an_error_reason_is_bounded() -> None:
    text = error_text("<class 'X'>:<'" + "y" * 5000 + "'>", limit=40)
    assert text == "y" * 40 + "... (5004 characters in all)"
