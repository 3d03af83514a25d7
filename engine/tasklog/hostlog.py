"""What a step writes to the task log about its hosts, readable at a thousand hosts.

While the step runs, a progress line says how many hosts have ended (the first at once, then
at most one line every few seconds); a host still running after a second has its lines logged
live by the worker (``<host>| <line>``). When the step ends, hosts whose status, exit status
and output are the same share one block: ``--- 983 hosts ok rc=0: a, b, ... and 963 more``,
then their output once. Groups that did not succeed come first.
"""

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.ansible.results import HostResult

NAMES_SHOWN = 20  # host names a group's line lists before "and N more"
PROGRESS_EVERY = 5.0  # seconds between two progress lines


def body(r: "HostResult") -> str:
    """The output a host's block shows: its stdout, then (when not ok) its stderr or the
    reason it failed; ends with a newline unless empty."""
    text = r.stdout or ""
    if r.status != "ok" and (r.stderr or r.msg):
        text = text + ("\n" if text and not text.endswith("\n") else "") + (r.stderr or r.msg)
    return text if text.endswith("\n") or not text else text + "\n"


def names(hosts: list[str]) -> str:
    """The first NAMES_SHOWN of ``hosts``, then "and N more"."""
    shown = ", ".join(hosts[:NAMES_SHOWN])
    more = len(hosts) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def grouped(results: Mapping[str, "HostResult"]) -> str:
    """The log text of a step's ended hosts (``{name: HostResult}`` in step order): one block
    per distinct (status, rc, output), failures first, then the larger groups first."""
    groups: dict[tuple[str, int | None, str], list[str]] = {}
    for name, r in results.items():
        groups.setdefault((r.status, r.rc, body(r)), []).append(name)
    order = sorted(groups.items(), key=lambda item: (item[0][0] == "ok", -len(item[1])))
    out = []
    for (status, rc, text), hosts in order:
        count = f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"
        state = status + (f" rc={rc}" if rc is not None else "")
        out.append(f"--- {count} {state}: {names(hosts)}\n{text}")
    return "".join(out)


class Progress:
    """Counts a step's hosts as they end and logs how far it is, now and then."""

    def __init__(
        self,
        write: Callable[[str], None],
        total: int,
        every: float = PROGRESS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.total, self.every, self.clock = write, total, every, clock
        self.ended: dict[str, int] = {}
        self.last: float | None = None

    def host_ended(self, r: "HostResult") -> None:
        """Count ``r``; log a progress line for the first host, then every ``every`` seconds."""
        self.ended[r.status] = self.ended.get(r.status, 0) + 1
        at = self.clock()
        if self.last is not None and at - self.last < self.every:
            return
        self.last = at
        done = sum(self.ended.values())
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.ended.items()))
        self.write(f"... {done} of {self.total} host(s) ended: {counts}\n")
