"""Prometheus metrics of every opsjob process on a machine, served together by any API process.

API processes and workers are separate processes, so ``prometheus_client`` runs in its
multiprocess mode: each process writes its samples to files under ``PROMETHEUS_MULTIPROC_DIR``
(default ``$OPSJOB_HOME/metrics/<host name>``) and a scrape adds them up. Each process start
marks the processes that are gone as dead (their live gauges are dropped, their counters kept);
when no process that wrote there is alive, the directory starts empty. Figures that hold across
processes (tasks by status and project, queue depth) are counted at scrape time.
"""

import functools
import glob
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from peewee import fn

from engine.run import events
from engine.store.models import Task, database

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

    from engine.ansible.results import RunOutcome
    from engine.store.settings import Settings

log = logging.getLogger(__name__)

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CHOSEN_ENV = "OPSJOB_METRICS_DIR_CHOSEN"  # marks DIR_ENV as set by opsjob, not by the operator
ALIVE_WITHIN = 30.0  # seconds: a worker whose last heartbeat is older does not count as alive
FINAL = ("success", "fail", "refuse")
SECONDS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_m: dict[str, Any] = {}  # name -> metric, built once per process by prepare()
_state = {"warned": False}


def directory(settings: "Settings") -> str:
    """Return this machine's metrics directory for ``settings``; a ``PROMETHEUS_MULTIPROC_DIR``
    the operator set wins (one an opsjob parent process chose for its own home does not)."""
    given = os.environ.get(DIR_ENV)
    if given and given != os.environ.get(CHOSEN_ENV):
        return given
    return os.path.join(os.path.abspath(settings.home), "metrics", socket.gethostname())


def _pid_of(path: str) -> int | None:
    match = re.search(r"_(\d+)\.db$", path)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead(path: str) -> set[int]:
    """Drop the live gauges of every process gone from ``path``; return the pids still alive."""
    from prometheus_client import multiprocess

    alive: set[int]
    dead: set[int]
    alive, dead = set(), set()
    for name in glob.glob(os.path.join(path, "*.db")):
        pid = _pid_of(name)
        if pid is not None:
            (alive if _alive(pid) else dead).add(pid)
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return alive


def process_gone(pid: int) -> None:
    """Mark server process ``pid`` dead (gunicorn's ``child_exit`` hook, as the library asks)."""
    from prometheus_client import multiprocess

    if os.environ.get(DIR_ENV):
        multiprocess.mark_process_dead(pid, os.environ[DIR_ENV])


@functools.cache
def _backed_mmaped_dict():
    """prometheus_client's mapped sample file, with each page given disk space before it is
    written. A write through a mapping into a page the file system cannot supply (a full disk,
    a tmpfs at its size) kills the whole process with SIGBUS; reserving the space first turns
    that into an OSError, which the guards below log."""
    from prometheus_client import mmap_dict

    class BackedMmapedDict(mmap_dict.MmapedDict):
        def __init__(self, filename, read_mode=False):
            if not read_mode:
                with open(filename, "a+b") as f:
                    size = max(os.fstat(f.fileno()).st_size, mmap_dict._INITIAL_MMAP_SIZE)
                    os.posix_fallocate(f.fileno(), 0, size)
            super().__init__(filename, read_mode)

        def _init_value(self, key):
            needed = self._used + len(key.encode("utf-8")) + 32  # entry: length, key, 2 doubles
            capacity = self._capacity
            while needed > capacity:
                capacity *= 2
            if capacity != self._capacity:  # the current capacity was reserved already
                os.posix_fallocate(self._f.fileno(), 0, capacity)
            super()._init_value(key)

    return BackedMmapedDict


def prepare(settings: "Settings") -> None:
    """Put this process's metrics in multiprocess mode under ``settings`` and build them (once)."""
    if _m:
        return
    path = directory(settings)
    os.makedirs(path, exist_ok=True)
    if os.environ.get(DIR_ENV) != path:
        os.environ[DIR_ENV] = os.environ[CHOSEN_ENV] = path
    from prometheus_client import values

    # looked up there each time a file is opened (the stubs forbid replacing a class)
    values.MmapedDict = _backed_mmaped_dict()  # type: ignore[misc]
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # imported before the directory was set
    if not mark_dead(path) - {os.getpid()}:  # nothing here is alive: a fresh start
        for name in glob.glob(os.path.join(path, "*.db")):
            os.remove(name)
    _build()


def _build() -> None:
    from prometheus_client import Counter, Gauge, Histogram

    _m.update(
        request=Histogram(
            "opsjob_http_request_duration_seconds",
            "API request latency by method, route template and status.",
            ["method", "route", "status"],
            buckets=REQUEST_SECONDS,
        ),
        task=Histogram(
            "opsjob_task_duration_seconds",
            "Run time of finished tasks by final status.",
            ["status"],
            buckets=SECONDS,
        ),
        step=Histogram(
            "opsjob_step_duration_seconds",
            "Run time of step runs by kind (cmd, scp, playbook) and outcome.",
            ["kind", "outcome"],
            buckets=SECONDS,
        ),
        hosts=Counter("opsjob_host_results", "Per-host outcomes of step runs.", ["status"]),
        notifications=Counter(
            "opsjob_notifications",
            "Notification delivery attempts by channel and outcome.",
            ["channel", "outcome"],
        ),
        fires=Counter("opsjob_scheduler_fires", "Tasks the scheduler started from crontabs."),
        heartbeat=Gauge(
            "opsjob_worker_heartbeat_timestamp_seconds",
            "Unix time of each live worker process's last heartbeat.",
            ["worker"],
            multiprocess_mode="liveall",
        ),
    )


def register(huey: Any, settings: "Settings") -> None:
    """Build this process's metrics and follow task events (a queue extension)."""
    prepare(settings)
    events.subscribe("task_changed", on_task_changed)
    events.subscribe("step_finished", on_step_finished)


# -- observing (in memory: a write into this process's mapped file) -----------------------------


def _never_fails(observe: Callable[..., None]) -> Callable[..., None]:
    """Let no failure to count (a metrics directory removed under a process) reach a request
    or a run: it is logged once per process."""

    @functools.wraps(observe)
    def guarded(*args: Any) -> None:
        if not _m:
            return
        try:
            observe(*args)
        except Exception as exc:
            if not _state["warned"]:
                _state["warned"] = True
                log.warning("metrics: cannot record %s: %s", observe.__name__, exc)

    return guarded


@_never_fails
def observe_request(method: str, route: str, status: int | str, seconds: float) -> None:
    """Count one API request."""
    _m["request"].labels(method, route, str(status)).observe(seconds)


@_never_fails
def on_task_changed(uuid: str, status: str) -> None:
    if status not in FINAL:
        return
    row = Task.select(Task.runtime).where(Task.uuid == uuid).first()
    if row is not None:
        _m["task"].labels(status).observe(row.runtime or 0.0)


@_never_fails
def on_step_finished(task: Any, step: Mapping[str, Any], outcome: "RunOutcome") -> None:
    seconds = max(0.0, (outcome.ended or 0.0) - (outcome.started or 0.0))
    _m["step"].labels(step.get("kind", ""), outcome.status).observe(seconds)
    for result in outcome.hosts.values():
        _m["hosts"].labels(result.status).inc()


@_never_fails
def notification(channel: str, outcome: str) -> None:
    """Count one notification attempt."""
    _m["notifications"].labels(channel, outcome).inc()


@_never_fails
def fired() -> None:
    """Count one task the scheduler started."""
    _m["fires"].inc()


@_never_fails
def heartbeat(worker: str) -> None:
    """Say that this worker process is alive now."""
    _m["heartbeat"].labels(worker).set(time.time())


# -- scraping -----------------------------------------------------------------------------------


class _Counted:
    """Figures counted from the database and the queue when scraped."""

    def __init__(self, metrics_dir: str) -> None:
        self.metrics_dir = metrics_dir

    def collect(self) -> Iterator["GaugeMetricFamily"]:
        from prometheus_client.core import GaugeMetricFamily

        tasks = GaugeMetricFamily(
            "opsjob_tasks",
            "Tasks in the database by project and status.",
            labels=["project", "status"],
        )
        database.connect(reuse_if_open=True)  # the request's connection, closed with it
        rows: Any = (  # tuples, which peewee's stubs do not tell
            Task.select(Task.projectid, Task.status, fn.COUNT(Task.id))
            .group_by(Task.projectid, Task.status)
            .tuples()
        )
        for projectid, status, count in rows:
            tasks.add_metric([str(projectid), status], count)
        yield tasks
        depth = _queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "opsjob_queue_depth", "Messages waiting in the task queue.", value=depth
            )


def _queue_depth() -> int | None:
    from engine.run import queue

    try:
        return queue.huey().pending_count()
    except Exception as exc:  # the scrape still answers; /readyz says what is down
        log.warning("metrics: queue depth unknown: %s", exc)
        return None


def _workers_alive(families: list[Any]) -> "GaugeMetricFamily":
    from prometheus_client.core import GaugeMetricFamily

    cutoff = time.time() - ALIVE_WITHIN
    alive = 0
    for family in families:
        if family.name == "opsjob_worker_heartbeat_timestamp_seconds":
            alive = sum(1 for s in family.samples if s.value >= cutoff)
    return GaugeMetricFamily(
        "opsjob_workers_alive",
        f"Worker processes on this machine with a heartbeat in the last {ALIVE_WITHIN:.0f} s.",
        value=alive,
    )


def scrape() -> tuple[str, str]:
    """Return ``(content type, text)``: every process's metrics plus the counted figures."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ[DIR_ENV]
    mark_dead(path)  # a killed worker stops counting as alive at once
    files = CollectorRegistry()
    MultiProcessCollector(files, path=path)
    families = list(files.collect())

    class _Gathered:
        def collect(self) -> Iterator[Any]:
            yield from families
            yield _workers_alive(families)

    registry = CollectorRegistry()
    registry.register(_Gathered())
    registry.register(_Counted(path))
    return CONTENT_TYPE_LATEST, generate_latest(registry).decode()
