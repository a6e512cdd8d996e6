"""Text that came from a client, made safe to show and store.

A type URL, an error reason or a string field is data: printed into a log
line or stored in the metadata log, it must not start a new line, move the
cursor, color the terminal or fill the disk.
"""

import re

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


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
"""A terminal escape sequence (colors, cursor moves), as Ray's tracebacks hold."""
_FLOWER_ERROR = re.compile(r"<class '([^']*)'>:<'(.*)'>", re.DOTALL)
"""How Flower words a ClientApp's exception: "<class 'T'>:<'message'>"."""
_WRAPPED = "occurred. Message: "
"""What precedes the ClientApp's own message in Flower's `ClientAppException`."""


def error_text(reason: str, limit: int = LIMIT) -> str:
    r"""Word an error reply's reason with the exception's own message first.

    Flower sends a ClientApp's exception as `<class 'T'>:<'message'>`; in a
    simulation, T is Ray's wrapper and the message a colored traceback that
    ends with the ClientApp's own message. That message comes first, the
    exception class after it; terminal escapes are dropped, the rest goes
    through `printable`. A reason of another form is only made printable.
    """
    text = _ANSI.sub("", reason)
    found = _FLOWER_ERROR.fullmatch(text.strip())
    if found is None:
        return printable(text, limit)
    kind, message = found.groups()
    own = message.rpartition(_WRAPPED)[2].strip()
    return printable(f"{own} ({kind.rpartition('.')[2]})", limit)
