"""Text that came from a client, made safe to show and store.

A type URL, an error reason or a string field is data: printed into a log
line or stored in the metadata log, it must not start a new line, move the
cursor, color the terminal or fill the disk.
"""

LIMIT = 512
"""Characters kept of one piece of client text, escapes included."""


def printable(text: str, limit: int = LIMIT) -> str:
    r"""Escape every non-printable character of `text` and cut it to `limit`.

    Newlines, ANSI escapes, other control characters and lone surrogates
    become Python escapes (`\n`, `\x1b`, `\ud800`); the result is valid
    UTF-8 and says how much was cut.
    """
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    if len(escaped) <= limit and len(text) <= limit:
        return escaped
    return f"{escaped[:limit]}... ({len(text)} characters in all)"
