"""Compare gunicorn server models on the same database, in the same run: requests per second
on ``GET /task/1/<uuid>`` (with wrk), and how long an ordinary GET takes while slow clients
hold connections open (they send one header line every second).

    python -m bench.servers [--seconds 10] [--connections 16] [--slow 8]

Needs Debian's ``wrk``. Each model runs 2 worker processes, as ``opsjob serve`` does.
"""

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from tests.httpclient import call, free_port, wait_until_up

BIN = os.path.dirname(sys.executable)
MODELS = {
    "sync": ["-k", "sync", "api.server.app:get_app()"],
    "gthread (8 threads)": ["-k", "gthread", "--threads", "8", "api.server.app:get_app()"],
    "uvicorn + a2wsgi": ["-k", "api.server.asgi.Worker", "api.server.asgi:get_asgi_app()"],
}


def _opsjob(env, *args):
    out = subprocess.run(
        [os.path.join(BIN, "opsjob"), *args], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _slow_client(port, stop):
    """Send a request's header lines one per second, never finishing it."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /task/1 HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(1.0):
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return


def _timed_get(url, key):
    started = time.monotonic()
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        urllib.request.urlopen(req, timeout=30).read()
    except OSError:
        return 30.0
    return time.monotonic() - started


@contextlib.contextmanager
def served(argv, env, workers=2, probe="/openapi.json"):
    """Run ``gunicorn -w workers <argv>`` on a free port; yield its base URL and the pid of
    its gunicorn once ``probe`` answers, then stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [os.path.join(BIN, "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_up(url, proc, path=probe)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()


def wrk(url, key, seconds, connections, counted=False):
    """Return the requests per second wrk reaches on GET ``url`` (checking every answer); with
    ``counted``, also the number of requests it made."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {key}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    if bad:
        raise RuntimeError(f"{url}: {bad.group(1)} answers were not 2xx")
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    return (rate, int(re.search(r"([0-9]+) requests in", out).group(1))) if counted else rate


def measure(name, argv, env, key, uuid, args):
    with served(argv, env) as (url, _):
        rps = wrk(f"{url}/task/1/{uuid}", key, args.seconds, args.connections)
        port = int(url.rsplit(":", 1)[1])
        stop = threading.Event()
        slow = [
            threading.Thread(target=_slow_client, args=(port, stop), daemon=True)
            for _ in range(args.slow)
        ]
        for t in slow:
            t.start()
        time.sleep(1.0)
        waits = [_timed_get(f"{url}/task/1/{uuid}", key) for _ in range(5)]
        stop.set()
        return {"model": name, "requests/s": rps, "GET with slow clients (max s)": max(waits)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--slow", type=int, default=8)
    args = p.parse_args()
    home = tempfile.mkdtemp(prefix="opsjob-bench-")
    env = {**os.environ, "OPSJOB_HOME": home, "OPSJOB_LOG_LEVEL": "WARNING"}
    env.pop("OPSJOB_DATABASE_URL", None)
    _opsjob(env, "init")
    key = _opsjob(env, "user", "add", "bench", "--admin")
    _opsjob(env, "project", "add", "1", "bench")
    # One task to read: launched through a served API, never run (no worker).
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(BIN, "opsjob"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        base = f"http://127.0.0.1:{port}"
        call("POST", f"{base}/nodelist/1", key, {"name": "10.0.0.1"})
        status, body = call(
            "POST",
            f"{base}/task/1/plugin_cmd",
            key,
            {
                "node_type": "builtin",
                "node_cont": "10.0.0.1",
                "scripts_type": "shell",
                "scripts_cont": "true",
            },
        )
        assert status == 200, body
        uuid = body.get("uuid") or body["data"]["uuid"]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
    results = [measure(name, argv, env, key, uuid, args) for name, argv in MODELS.items()]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
