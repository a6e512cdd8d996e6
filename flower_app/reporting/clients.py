"""Short labels for clients: what tables, plots and legends call a node.

Flower's node ids are 19-20 digit numbers; a label keeps the last six
digits ("…123456"), enough to tell the clients of a run apart and to find
the full id in the report's client table. Ids of up to six digits are
shown whole, and clients of one run whose last digits agree get more of
theirs, so no two of a run's labels are the same.
"""

from collections import defaultdict
from collections.abc import Iterable

DIGITS = 6
"""Last digits a label shows."""


def labels(nodes: Iterable[int]) -> dict[int, str]:
    """Label each node uniquely among `nodes`: node id -> label."""
    found: dict[int, str] = {}
    pending = set(nodes)
    digits = DIGITS
    while pending:
        by_label: dict[str, list[int]] = defaultdict(list)
        for node in pending:
            by_label[_label(node, digits)].append(node)
        pending = set()
        for label, same in by_label.items():
            if len(same) == 1:
                found[same[0]] = label
            else:
                pending.update(same)
        digits += 2
    return found


def _label(node: int, digits: int) -> str:
    text = str(node)
    return text if len(text) <= digits else "…" + text[-digits:]
