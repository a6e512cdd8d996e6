"""A regular expression matching exactly the decimal integers of a closed range.

proto3 JSON writes a 64-bit integer as a string ("9007199254740993"), which
JSON Schema's `minimum` and `maximum` do not compare; a pattern does. The
range is split into runs that share a prefix and end in whole digit ranges
(`12[5-9]`, `1[3-9][0-9]`, ...), as range-to-regex generators do; each
number is written as canonical JSON writes it: no sign for 0 and above, no
leading zeros, no "-0".
"""


def integer_pattern(low: int, high: int) -> str:
    """Return `^(...)$` matching the decimal text of each integer in [low, high]."""
    if low > high:
        raise ValueError(f"an empty range: {low} > {high}")
    parts = []
    if low < 0:
        parts += [f"-{part}" for part in _pieces(max(1, -high), -low)]
    if high >= 0:
        parts += _pieces(max(0, low), high)
    return f"^({'|'.join(parts)})$"


def _pieces(low: int, high: int) -> list[str]:
    """Patterns of the non-negative integers in [low, high], 0 <= low <= high."""
    return [_piece(start, stop) for start, stop in _runs(low, high)]


def _runs(low: int, high: int) -> list[tuple[int, int]]:
    """Split [low, high] into runs each one `_piece` can write."""
    stops = {high}
    nines = 1
    stop = _fill_nines(low, nines)
    while low <= stop < high:
        stops.add(stop)
        nines += 1
        stop = _fill_nines(low, nines)
    zeros = 1
    stop = _fill_zeros(high + 1, zeros) - 1
    while low < stop <= high:
        stops.add(stop)
        zeros += 1
        stop = _fill_zeros(high + 1, zeros) - 1
    runs, start = [], low
    for stop in sorted(stops):
        runs.append((start, stop))
        start = stop + 1
    return runs


def _fill_nines(number: int, count: int) -> int:
    """Return `number` with its last `count` digits 9 (99.. if it has fewer)."""
    text = str(number)
    if count >= len(text):
        return int("9" * count)
    return int(text[:-count] + "9" * count)


def _fill_zeros(number: int, count: int) -> int:
    """Return `number` with its last `count` digits 0."""
    return number - number % int(10**count)


def _piece(start: int, stop: int) -> str:
    """Write a run: the same number of digits, a common prefix, digit ranges."""
    tokens = [
        a if a == b else f"[{a}-{b}]"
        for a, b in zip(str(start), str(stop), strict=True)
    ]
    run = 0
    while run < len(tokens) and tokens[len(tokens) - 1 - run] == "[0-9]":
        run += 1
    head = "".join(tokens[: len(tokens) - run])
    return head + ("[0-9]" if run == 1 else f"[0-9]{{{run}}}" if run else "")
