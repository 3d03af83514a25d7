"""Real parts that tests break on purpose: a private redis-server, a throwaway PostgreSQL
database, and a small tmpfs that fills up."""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import psycopg
import pytest
import redis

from tests.httpclient import free_port

PG_ADMIN = os.environ.get("OPSJOB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class RedisServer:
    """A redis-server of the test's own on a free port, which the test stops and restarts."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="opsjob-redis-")
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        binary = shutil.which("redis-server") or pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def pg_url():
    """A throwaway PostgreSQL database of the test's own."""
    name = f"opsjob_fault_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def small_disk(size="8m"):
    """A tmpfs of ``size`` mounted for the test (or a loop-device image); skip with the reason
    when this machine allows neither."""
    where = tempfile.mkdtemp(prefix="opsjob-disk-")
    attempts = []
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        attempts.append(f"tmpfs: {mounted.stderr.strip()}")
        image = where + ".img"
        steps = [
            ["truncate", "-s", size.replace("m", "M"), image],
            ["mkfs.ext4", "-q", image],
            ["mount", "-o", "loop", image, where],
        ]
        for step in steps:
            out = subprocess.run(step, capture_output=True, text=True)
            if out.returncode != 0:
                attempts.append(f"loop image: {out.stderr.strip()}")
                os.rmdir(where)
                pytest.skip("cannot mount a small filesystem here: " + "; ".join(attempts))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)
        if os.path.exists(where + ".img"):
            os.unlink(where + ".img")


def fill(path, leave=0):
    """Fill the filesystem of ``path`` with a ballast file, leaving about ``leave`` bytes."""
    ballast = os.path.join(path, "ballast")
    with open(ballast, "ab") as f:
        block = b"\0" * 65536
        try:
            while True:
                st = os.statvfs(path)
                free = st.f_bavail * st.f_frsize
                if free <= leave:
                    break
                f.write(block[: max(1, min(len(block), free - leave))])
                f.flush()
        except OSError:
            pass
    return ballast
