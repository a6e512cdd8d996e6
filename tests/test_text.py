"""Client text is escaped and cut at its limit, on both sides of the limit."""

from flower_app.protocol.text import LIMIT, printable


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
