"""How a step spreads over its hosts: in batches, and how many at a time within one.

``rolling`` is a space-separated list of batch sizes, the last one repeating:

- ``10``: ten hosts; ``10%``: a tenth of the step's hosts (rounded up);
- ``+5``: five more than the batch before; ``*2``: twice the batch before.

So ``1 10% *2`` runs one host, then a tenth of the hosts, then batches that double. Empty: every
host at once (no rollout). ``max_fail`` is how many failed hosts the rollout tolerates, as a
count (``0``: any failure stops it) or a percentage of the hosts it rolls over (``10%``); when more
fail, the later batches do not run. With ``rolling_pause`` the step waits for ``control=next``
between two batches. ``forks`` caps how many hosts run at once (0: the worker's choice).
"""

import math
from collections.abc import Sequence
from typing import Any

from engine.errors import InvalidInput
from engine.store.validate import Field

ABSOLUTE = r"[1-9][0-9]{0,5}%?"
RELATIVE = r"[+*][1-9][0-9]{0,5}"
EXPRESSION = rf"{ABSOLUTE}(?: +(?:{ABSOLUTE}|{RELATIVE}))*"
MAX_FAIL = r"[0-9]{1,6}%?"
MAX_FORKS = 1000

FIELDS = {
    "rolling": Field(default="", pattern=EXPRESSION, max_len=100),
    "max_fail": Field(default="0", pattern=MAX_FAIL, max_len=7),
    "rolling_pause": Field(bool, default=False),
    "forks": Field(int, default=0, minimum=0, maximum=MAX_FORKS),
}
NAMES = tuple(FIELDS)


def check(values: dict[str, Any]) -> None:
    """Check the rolling fields of a step (already cleaned by :data:`FIELDS`) in place:
    percentages are at most 100, and ``rolling_pause`` is stored as 0/1."""
    for part in values["rolling"].split():
        if part.endswith("%") and int(part[:-1]) > 100:
            raise InvalidInput(f"rolling: {part} is more than 100%")
    fail = values["max_fail"]
    if fail.endswith("%") and int(fail[:-1]) > 100:
        raise InvalidInput(f"max_fail: {fail} is more than 100%")
    if not fail.endswith("%"):
        values["max_fail"] = str(int(fail))
    values["rolling_pause"] = int(values["rolling_pause"])


def sizes(total: int, expression: str) -> list[int]:
    """The batch sizes ``expression`` gives for ``total`` hosts (summing to ``total``)."""
    parts = expression.split()
    out: list[int] = []
    left, previous = total, 0
    while left > 0:
        part = parts[min(len(out), len(parts) - 1)]
        if part.endswith("%"):
            size = math.ceil(total * int(part[:-1]) / 100)
        elif part[0] == "+":
            size = previous + int(part[1:])
        elif part[0] == "*":
            size = previous * int(part[1:])
        else:
            size = int(part)
        size = min(max(1, size), left)
        out.append(size)
        left -= size
        previous = size
    return out


def batches(names: Sequence[str], expression: str) -> list[list[str]]:
    """Split ``names`` (in step order) into the batches ``expression`` describes; one batch of
    all of them when it is empty."""
    if not expression.strip():
        return [list(names)] if names else []
    out, start = [], 0
    for size in sizes(len(names), expression):
        out.append(list(names[start : start + size]))
        start += size
    return out


def too_many_failed(failed: int, total: int, max_fail: str) -> bool:
    """Whether ``failed`` of ``total`` hosts is more than ``max_fail`` tolerates."""
    if max_fail.endswith("%"):
        return failed * 100 > int(max_fail[:-1]) * total
    return failed > int(max_fail or 0)


def rolls(step: dict[str, Any]) -> bool:
    """Whether ``step`` (a planned step) runs its hosts in batches."""
    return bool(str(step.get("rolling") or "").strip())
