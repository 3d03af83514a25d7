"""The cap on one task's stored log (``OPSJOB_MAX_LOG_BYTES``): keep its head and its tail.

The first half of the cap is stored as it comes. Past it, a notice is stored and further output
is held in memory, where only its last half-cap characters are kept; when the worker's turn at
the task ends, a line saying how much was cut and then that tail are stored. Memory and storage
stay bounded however much a step prints. Offsets stay contiguous, so readers that tail a log
by offset never see a gap.
"""

from collections import deque

HELD = (
    "\n[log over {limit} characters (OPSJOB_MAX_LOG_BYTES): output from here on is held back "
    "and only its last {tail} characters are kept; they follow when the task ends or waits]\n"
)
CUT = "[... {cut} characters cut ...]\n"


class LogCap:
    """Decide what of a task's log is stored now, what is held as its tail, and what is cut."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = limit - limit // 2
        self.tail_limit = limit // 2
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.cut = 0
        self.over = False

    def admit(self, stored: int, text: str) -> str:
        """Return the part of ``text`` to store now, given ``stored`` characters already
        stored or buffered; hold the rest as the tail."""
        if self.limit <= 0:
            return text
        if self.over:
            self._hold(text)
            return ""
        room = self.head - stored
        if len(text) <= room:
            return text
        self.over = True
        room = max(0, room)
        self._hold(text[room:])
        return text[:room] + HELD.format(limit=self.limit, tail=self.tail_limit)

    def _hold(self, text: str) -> None:
        self.tail.append(text)
        self.tail_size += len(text)
        while self.tail_size > self.tail_limit:
            excess = self.tail_size - self.tail_limit
            first = self.tail[0]
            if len(first) <= excess:
                self.tail.popleft()
                dropped = len(first)
            else:
                self.tail[0] = first[excess:]
                dropped = excess
            self.tail_size -= dropped
            self.cut += dropped

    def release(self) -> str:
        """Return what was held back (a line saying how much was cut, then the tail), once."""
        if not self.tail and not self.cut:
            return ""
        text = (CUT.format(cut=self.cut) if self.cut else "") + "".join(self.tail)
        self.tail, self.tail_size, self.cut = deque(), 0, 0
        return text
