"""Retention benchmark: prune 50,000 tasks spread over 120 days while the API serves requests.

Fills a database with tasks finished over the last 120 days (a few still running or waiting),
each with its steps, host results, a log and a notification attempt, plus console commands.
Starts `opsjob serve` on it and keeps clients busy with a mix of reads and writes: first
without a prune (the baseline), then while `engine.ops.retention.prune` deletes what is older than
90 days. Prints the database size before and after, the prune's time and what it deleted, and
the API's p50/p99 latency in both phases with their ratio.

    .venv/bin/python -m bench.retention                     # SQLite file in a temp directory
    .venv/bin/python -m bench.retention --database-url postgresql://postgres@127.0.0.1:5432/b

A PostgreSQL database must be empty.
"""

import argparse
import datetime
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from peewee import chunked

from engine.ops import retention
from engine.store import schema
from engine.store.db import database, is_sqlite, open_database
from engine.store.models import CmdLog, HostResult, LogChunk, NotifyLog, Subtask, Task
from engine.store.settings import Settings
from tests.httpclient import call, free_port, wait_until_up

BIN = os.path.dirname(sys.executable)
DAYS = 120
LIVE = ("running", "waiting")


def _insert(model, rows):
    for batch in chunked(rows, 500):
        model.insert_many(batch).execute()


def fill(count, seed=11):
    """Insert ``count`` tasks with their rows, finish times spread evenly over ``DAYS``."""
    rng = random.Random(seed)
    now = datetime.datetime.now().replace(microsecond=0)
    output = "".join(f"deploy step line {n}\n" for n in range(15))  # ~300 characters
    log_text = output * 5
    # ids grow with time, as they do in a real database
    ages = sorted((rng.uniform(0, DAYS * 86400) for _ in range(count)), reverse=True)
    for start in range(0, count, 5000):
        tasks, subs, hosts, chunks, notes = [], [], [], [], []
        for n in range(start, min(count, start + 5000)):
            uuid = f"r{n:011d}"
            finished = now - datetime.timedelta(seconds=ages[n])
            live = rng.random() < 0.03
            tasks.append(
                {
                    "projectid": 1,
                    "uuid": uuid,
                    "name": "bench job",
                    "user": "bench",
                    "status": rng.choice(LIVE) if live else rng.choice(("success", "fail")),
                    "create_time": finished - datetime.timedelta(minutes=2),
                    "starttime": finished - datetime.timedelta(minutes=2),
                    "finishtime": None if live else finished,
                }
            )
            for position in range(2):
                subs.append(
                    {
                        "parent_uuid": uuid,
                        "position": position,
                        "subtask_type": "cmd",
                        "uuid": f"s{n:08d}{position}",
                        "status": "success",
                    }
                )
                hosts.append(
                    {
                        "taskuuid": uuid,
                        "stepuuid": f"s{n:08d}{position}",
                        "host": f"web{position}",
                        "status": "ok",
                        "rc": 0,
                        "stdout": output,
                    }
                )
            chunks.append({"taskuuid": uuid, "offset": 0, "text": log_text})
            notes.append(
                {
                    "taskuuid": uuid,
                    "event": "e",
                    "status": "success",
                    "channel": "webhook",
                    "outcome": "ok",
                    "create_time": finished,
                }
            )
        with database.atomic():
            for model, rows in (
                (Task, tasks),
                (Subtask, subs),
                (HostResult, hosts),
                (LogChunk, chunks),
                (NotifyLog, notes),
            ):
                _insert(model, rows)
    with database.atomic():
        _insert(
            CmdLog,
            [
                {
                    "projectid": 1,
                    "user": "bench",
                    "node": "web0",
                    "cmd": "uptime",
                    "time": now - datetime.timedelta(hours=h),
                }
                for h in range(DAYS * 24)
            ],
        )


def db_size(url):
    """Bytes the database takes: the SQLite file (after a checkpoint), or PostgreSQL's size."""
    with database.connection_context():
        if is_sqlite():
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            return os.path.getsize(url.split(":///", 1)[1])
        return database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]


def load(url, key, uuids, stop, latencies, errors, seed):
    """Send reads and writes until ``stop`` is set; record each request's seconds."""
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        choice = rng.random()
        started = time.monotonic()
        if choice < 0.4:
            status, _ = call("GET", f"{url}/task/1?pagesize=20", key)
        elif choice < 0.7:
            status, _ = call("GET", f"{url}/slave/any/tasklog/{rng.choice(uuids)}", key)
        elif choice < 0.85:
            status, _ = call("GET", f"{url}/task/1/{rng.choice(uuids)}", key)
        else:  # a write: every API write waits for SQLite's one writer
            body = {f"bench{seed}k{n % 50}": str(n)}
            status, _ = call("POST", f"{url}/environment", key, body)
        latencies.append(time.monotonic() - started)
        if status != 200:
            errors.append(status)


def phase(url, key, uuids, clients, until):
    """Run ``clients`` load threads until ``until()`` returns; return (latencies, errors)."""
    stop, latencies, errors = threading.Event(), [], []
    threads = [
        threading.Thread(target=load, args=(url, key, uuids, stop, latencies, errors, i))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        until()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    return latencies, errors


def pct(values, q):
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=50_000)
    p.add_argument("--database-url", default="")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--baseline-seconds", type=float, default=10.0)
    args = p.parse_args(argv)

    home = tempfile.mkdtemp(prefix="opsjob-bench-retention-")
    url = args.database_url or f"sqlite:///{home}/opsjob.db"
    settings = Settings(home=home, database_url=url, retention_days=90)
    open_database(url)
    schema.upgrade()
    started = time.monotonic()
    with database.connection_context():
        fill(args.tasks)
        total = Task.select().count()
        old = Task.select().where(Task.finishtime < retention.cutoff(settings)).count()
    print(f"filled {total} tasks over {DAYS} days in {time.monotonic() - started:.0f} s; ")
    print(f"  {old} finished more than {settings.retention_days} days ago")

    env = {
        **os.environ,
        "OPSJOB_HOME": home,
        "OPSJOB_DATABASE_URL": url,
        "OPSJOB_LOG_LEVEL": "WARNING",
    }
    opsjob = os.path.join(BIN, "opsjob")
    subprocess.run([opsjob, "project", "add", "1", "bench"], env=env, check=True)
    key = subprocess.run(
        [opsjob, "user", "add", "bench", "--admin"], env=env, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    log = open(os.path.join(home, "api.log"), "ab")
    server = subprocess.Popen(
        [opsjob, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(api, server)
        with database.connection_context():
            uuids = [
                r[0] for r in Task.select(Task.uuid).order_by(Task.id.desc()).limit(500).tuples()
            ]
        phase(api, key, uuids, args.clients, lambda: time.sleep(2))  # warm up
        base, base_errors = phase(
            api, key, uuids, args.clients, lambda: time.sleep(args.baseline_seconds)
        )
        before = db_size(url)
        outcome = {}

        def run_prune():
            t0 = time.monotonic()
            outcome["counts"] = retention.prune(settings)
            outcome["seconds"] = time.monotonic() - t0

        during, during_errors = phase(api, key, uuids, args.clients, run_prune)
        after = db_size(url)
    finally:
        server.terminate()
        server.wait(30)

    counts = outcome["counts"]
    print(f"database ({'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}):")
    print(f"  size before the prune   {before / 2**20:8.1f} MiB")
    print(f"  size after the prune    {after / 2**20:8.1f} MiB")
    print(f"prune: {outcome['seconds']:.1f} s, deleted {counts}")
    print(f"API, {args.clients} clients (40% task list, 30% log, 15% task, 15% write):")
    print(
        f"  without a prune   {len(base):6d} requests  p50 {pct(base, 50):7.1f} ms"
        f"  p99 {pct(base, 99):7.1f} ms  errors {len(base_errors)}"
    )
    print(
        f"  during the prune  {len(during):6d} requests  p50 {pct(during, 50):7.1f} ms"
        f"  p99 {pct(during, 99):7.1f} ms  errors {len(during_errors)}"
    )
    print(f"  p99 ratio during / without: {pct(during, 99) / pct(base, 99):.2f}")


if __name__ == "__main__":
    main()
