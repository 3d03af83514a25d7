"""A real opsjob deployment for end-to-end tests: `opsjob serve` and `opsjob worker`
processes sharing one database, reached over HTTP, running steps on loopback SSH nodes."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from tests.httpclient import call, free_port, wait_until_up

OPSJOB = os.path.join(os.path.dirname(sys.executable), "opsjob")
TERMINAL = ("success", "fail", "refuse")


class Cluster:
    """Processes of one opsjob deployment, plus helpers to drive it over HTTP."""

    def __init__(self, nodes, database_url=None, queue_url="", lease=60, home=None):
        self.nodes = nodes
        self.home = home or tempfile.mkdtemp(prefix="opsjob-e2e-")
        self.env = {
            **os.environ,
            "OPSJOB_HOME": self.home,
            "OPSJOB_DATABASE_URL": database_url or f"sqlite:///{self.home}/opsjob.db",
            "OPSJOB_QUEUE_URL": queue_url,
            "OPSJOB_TASK_LEASE": str(lease),
            "OPSJOB_LOG_LEVEL": "WARNING",
        }
        self.procs = {}
        self.url = None
        self.run("init")
        self.key = self.run("user", "add", "root", "--admin")

    def run(self, *args):
        out = subprocess.run(
            [OPSJOB, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def serve(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        proc = self.spawn("api", "serve", "--port", str(port), "--workers", "2")
        wait_until_up(self.url, proc)

    def spawn(self, name, *args, env=None):
        log = open(os.path.join(self.home, f"{name}.log"), "ab")
        proc = subprocess.Popen(
            [OPSJOB, *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def worker(self, name="worker", workers=4, env=None):
        return self.spawn(
            name,
            "worker",
            "--workers",
            str(workers),
            *([] if name == "worker" else ["--no-scheduler"]),
            env=env,
        )

    def stop(self, name, sig=signal.SIGTERM):
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def close(self):
        for name in list(self.procs):
            self.stop(name)

    # -- HTTP

    def call(self, method, path, body=None, key=None):
        return call(method, self.url + path, key or self.key, body)

    def ok(self, method, path, body=None, key=None):
        status, data = self.call(method, path, body, key)
        assert status == 200 and data["stat"] is True, (status, data)
        return data

    def add_nodes(self, projectid, addresses, names=None, credential=None, hostvars=None):
        """Attach loopback nodes to a project, with the connection vars that reach them (plus
        ``hostvars``); with a ``credential`` (its id), the machines log in with it instead of
        the key file."""
        for name, address in zip(names or addresses, addresses, strict=False):
            conn = self.nodes.conn_vars(address)
            dropped = ("ansible_host",)
            if credential is not None:
                dropped += ("ansible_ssh_private_key_file", "ansible_user")
            body = {
                "name": f"{name}::{address}" if name != address else address,
                "hostvars": {
                    **{k: v for k, v in conn.items() if k not in dropped},
                    **(hostvars or {}),
                },
            }
            if credential is not None:
                body["credential"] = credential
            self.ok("POST", f"/nodelist/{projectid}", body)

    def wait(self, projectid, uuid, statuses=TERMINAL, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.call("GET", f"/task/{projectid}/{uuid}")
            if status == 200 and body["data"]["status"] in statuses:
                return body["data"]
            time.sleep(0.1)
        raise TimeoutError(
            f"task {uuid} did not reach {statuses}: {json.dumps(body)}\n{self.logs()}"
        )

    def logs(self):
        out = []
        for name in os.listdir(self.home):
            if name.endswith(".log"):
                with open(os.path.join(self.home, name), errors="replace") as f:
                    out.append(f"== {name}\n{f.read()[-4000:]}")
        return "\n".join(out)


@contextlib.contextmanager
def running(ssh_nodes, projects, nodes=3, worker_env=None, **options):
    """A served cluster with a worker (``worker_env`` added to its environment), ``projects``
    ({id: name}) and ``nodes`` loopback nodes attached to the first project (``c.attached``)."""
    c = Cluster(ssh_nodes, **options)
    try:
        for pid, name in projects.items():
            c.run("project", "add", str(pid), name)
        c.serve()
        c.worker(env=worker_env)
        c.attached = ssh_nodes.ensure(nodes)
        c.add_nodes(next(iter(projects)), c.attached)
        yield c
    finally:
        c.close()


def unique(prefix="t"):
    """A name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def cmd_step(script, nodes=(), *, name="step", node_type="builtin", argv="", **fields):
    """A cmd step running shell ``script`` on ``nodes`` (a list, or a group id / text)."""
    node_cont = ",".join(nodes) if isinstance(nodes, (list, tuple)) else str(nodes)
    return {
        "plugin_type": "cmd",
        "name": name,
        "node_type": node_type,
        "node_cont": node_cont,
        "scripts_type": "shell",
        "scripts_cont": script,
        "scripts_argv": argv,
        **fields,
    }
