"""Ride out a queue outage: one line when it starts, then exponential backoff, one line a try.

Without this, every huey worker thread logs a traceback each time it polls a Redis that is
down (hundreds a second). Here the first failure opens an outage; while it lasts only one
thread at a time tries the queue, after 1, 2, 4, ... seconds (at most ``MAX_DELAY``), and
each try writes one line. The first success closes the outage with one more line.
"""

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from huey import RedisHuey
from huey.consumer import Consumer, Scheduler

from engine.store.faults import first_line, is_connection_error, redact

log = logging.getLogger("opsjob.queue")

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
CONNECT_TIMEOUT = 5  # seconds to open a connection to the queue
READ_TIMEOUT = 10  # seconds a reply may take (a blocking read waits 1 s): a frozen server fails


class Outage:
    """Whether the queue is reachable, and when to try it next while it is not."""

    def __init__(
        self, url: str, first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY
    ) -> None:
        self.url = redact(url)
        self.first_delay, self.max_delay = first_delay, max_delay
        self.lock = threading.Lock()
        self.since: float | None = None  # monotonic start of the outage; None while up
        self.attempt = 0
        self.next_try = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def turn(self) -> int | None:
        """Return a token if this thread may use the queue now; else wait (≤ 1 s) and return
        None. While the queue is down only one thread at a time gets a turn."""
        with self.lock:
            if self.since is None:
                return 0
            wait = self.next_try - time.monotonic()
            if wait <= 0:
                self.next_try = time.monotonic() + self._delay()
                return self.attempt
        time.sleep(min(1.0, wait))
        return None

    def failed(self, exc: Exception, token: int = 0) -> None:
        """Record that a use of the queue with ``token`` failed with ``exc``."""
        with self.lock:
            now = time.monotonic()
            if self.since is None:
                self.since, self.attempt = now, 1
                log.warning(
                    "queue %s is unreachable: %s; trying again in %.0f s",
                    self.url,
                    first_line(exc),
                    self._delay(),
                )
            elif token == self.attempt:
                self.attempt += 1
                log.warning(
                    "queue %s still unreachable (try %d, down %.0f s): %s; next try in %.0f s",
                    self.url,
                    self.attempt,
                    now - self.since,
                    first_line(exc),
                    self._delay(),
                )
            else:
                return  # a call that was under way when the outage began
            self.next_try = now + self._delay()

    def succeeded(self) -> None:
        """Record that the queue answered; close the outage if one is open."""
        if self.since is None:
            return
        with self.lock:
            if self.since is not None:
                log.warning(
                    "queue %s is reachable again after %.0f s",
                    self.url,
                    time.monotonic() - self.since,
                )
                self.since, self.attempt = None, 0

    def _delay(self) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(0, self.attempt - 1))


class GuardedRedisHuey(RedisHuey):
    """RedisHuey whose consumer side waits out outages instead of failing in a loop."""

    def __init__(self, name: str, url: str) -> None:
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=READ_TIMEOUT
        )
        super().__init__(name, connection_pool=pool, results=False)
        self.outage = Outage(url)

    def _guarded(self, call: Callable[[], Any], idle: Any) -> Any:
        token = self.outage.turn()
        if token is None:
            return idle
        try:
            value = call()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self.outage.failed(exc, token)
            return idle
        self.outage.succeeded()
        return value

    def dequeue(self) -> Any:
        return self._guarded(super().dequeue, None)

    def read_schedule(self, timestamp: datetime.datetime | None = None) -> list[Any]:
        if self.outage.down:
            return []  # the worker threads probe; the scheduler only waits
        return self._guarded(lambda: super(GuardedRedisHuey, self).read_schedule(timestamp), [])

    def create_consumer(self, **options: Any) -> "GuardedConsumer":
        return GuardedConsumer(self, **options)

    def check(self) -> bool:
        """Ping the queue once; report a failure as the start of an outage. Return success."""
        try:
            self.storage.conn.ping()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self.outage.failed(exc)
            return False
        self.outage.succeeded()
        return True


class GuardedScheduler(Scheduler):
    """Skip the periodic enqueues while the queue is down (they would only fail)."""

    def enqueue_periodic_tasks(self, now: datetime.datetime) -> None:
        if getattr(self.huey, "outage", None) is not None and self.huey.outage.down:
            return
        return super().enqueue_periodic_tasks(now)


class GuardedConsumer(Consumer):
    scheduler_class = GuardedScheduler
