"""The real `opsjob` command: init, project add, user add, and `serve` under gunicorn."""

import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import fields

import pytest

from tests.httpclient import call, free_port, wait_until_up

OPSJOB = os.path.join(os.path.dirname(sys.executable), "opsjob")


def opsjob(env, *args):
    out = subprocess.run([OPSJOB, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextlib.contextmanager
def bootstrapped_up(env, *options):
    """`opsjob bootstrap`, then `opsjob up` with ``options``; yield (url, admin key)."""
    key = opsjob(env, "bootstrap").split("admin key: ")[1].split()[0]
    port = free_port()
    proc = subprocess.Popen(
        [OPSJOB, "up", "--port", str(port), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url, key
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def finished_log(url, key, uuid, timeout):
    """The task's log once it is done (or as it stands after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        log = call("GET", f"{url}/slave/any/tasklog/{uuid}", key)[1]["data"]
        if log["done"] or time.monotonic() > deadline:
            return log
        time.sleep(0.2)


@pytest.fixture
def env(settings):
    return {**os.environ, "OPSJOB_HOME": settings.home, "OPSJOB_DATABASE_URL": settings.database}


@pytest.fixture
def server(env):
    port = free_port()
    proc = subprocess.Popen(
        [OPSJOB, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_init_is_idempotent(env):
    first = opsjob(env, "init")
    assert first == opsjob(env, "init")
    assert first.startswith("schema version")


def test_serve_end_to_end(env, server):
    opsjob(env, "project", "add", "42", "payments")
    key = opsjob(env, "user", "add", "deployer", "--project", "42", "--role", "write")
    assert key.startswith("oj_")

    status, body = call(
        "POST",
        f"{server}/scripts/42",
        key,
        {"name": "check", "type": "shell", "cont": "test -d /srv"},
    )
    assert status == 200 and body["stat"] is True
    script_id = body["id"]

    job = {
        "name": "release",
        "permanent": 1,
        "data": [
            {
                "plugin_type": "cmd",
                "name": "deploy",
                "user": "root",
                "node_type": "builtin",
                "node_cont": "web1,web2",
                "scripts_type": "shell",
                "scripts_cont": "echo $1",
                "scripts_argv": "$version",
            },
            {
                "plugin_type": "cmd",
                "name": "check",
                "user": "root",
                "node_type": "builtin",
                "node_cont": "web1",
                "scripts_type": "cite",
                "scripts_cont": str(script_id),
            },
        ],
    }
    status, body = call("POST", f"{server}/jobs/42", key, job)
    assert status == 200 and body["data"] is True
    uuid = body["uuid"]

    status, body = call("GET", f"{server}/jobs/42/{uuid}", key)
    assert status == 200
    assert [s["name"] for s in body["data"]["data"]] == ["deploy", "check"]
    assert body["data"]["data"][1]["scripts_cont"] == str(script_id)

    status, body = call("GET", f"{server}/variable/42/{uuid}", key)
    assert status == 200 and [v["name"] for v in body["data"]] == ["version"]

    # the key is bound to project 42 only
    assert call("GET", f"{server}/jobs/1", key)[0] == 403
    assert call("GET", f"{server}/jobs/42")[0] == 401


def test_user_add_rejects_bad_role(env):
    out = subprocess.run(
        [OPSJOB, "user", "add", "x", "--project", "1"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 2 and "--role" in out.stderr


def test_up_runs_the_readme_example(env):
    """`opsjob bootstrap` + `opsjob up`: the demo project runs a command on localhost."""
    with bootstrapped_up(env, "--workers", "1") as (url, key):
        body = {
            "node_type": "builtin",
            "node_cont": "localhost",
            "scripts_type": "shell",
            "scripts_cont": "echo hello from $(hostname)",
        }
        status, r = call("POST", f"{url}/task/1/plugin_cmd", key, body)
        assert status == 200, r
        log = finished_log(url, key, r["data"]["uuid"], 60)
        assert log["status"] == "success" and "hello from" in log["log"]


# What each setting cannot mean: negative counts and sizes, zero where zero means nothing,
# fractions, words for numbers, unknown words, and text that would reach a command line.
NONSENSE = {
    "OPSJOB_TASK_LEASE": ["-1", "0", "1.5", "soon"],
    "OPSJOB_ANSIBLE_FORKS": ["-1", "2x"],
    "OPSJOB_MAX_UPLOAD": ["-1", "1e9"],
    "OPSJOB_NOTIFY_RETRIES": ["-1", "many"],
    "OPSJOB_INVENTORY_TIMEOUT": ["-1", "0", "0.5"],
    "OPSJOB_RETENTION_DAYS": ["-1", "0.5", "-0.5"],
    "OPSJOB_MAX_LOG_BYTES": ["-1", "10MB"],
    "OPSJOB_HOST_KEY_CHECKING": ["maybe", "2"],
    "OPSJOB_ANSIBLE_WARM": ["warm"],
    "OPSJOB_LOG_LEVEL": ["LOUD"],
    "OPSJOB_LOG_FORMAT": ["xml"],
    "OPSJOB_SSH_CONTROL_PERSIST": ["60s -o ProxyCommand=x", "-1", "forever"],
    "OPSJOB_SSH_KEX_ALGORITHMS": ["curve25519-sha256 -oProxyCommand=x", "a,,b", "a;b"],
}


def test_every_numeric_setting_is_in_the_nonsense_table():
    from engine.store.settings import Settings

    numeric = {f.metadata["env"] for f in fields(Settings) if f.type in (int, bool, "int", "bool")}
    assert numeric <= set(NONSENSE)


@pytest.mark.parametrize(
    "name, value", [(name, value) for name, values in NONSENSE.items() for value in values]
)
def test_a_setting_refuses_what_it_cannot_mean(name, value):
    from engine.errors import InvalidInput
    from engine.store.settings import Settings

    with pytest.raises(InvalidInput) as e:
        Settings.from_env({name: value})
    assert e.value.info.startswith(f"{name}: must be ") and repr(value) in e.value.info


def test_settings_take_what_they_mean():
    from engine.store.settings import Settings

    s = Settings.from_env(
        {
            "OPSJOB_RETENTION_DAYS": "0",
            "OPSJOB_MAX_LOG_BYTES": "0",
            "OPSJOB_HOST_KEY_CHECKING": "Yes",
            "OPSJOB_ANSIBLE_WARM": "off",
            "OPSJOB_LOG_LEVEL": "debug",
            "OPSJOB_LOG_FORMAT": "JSON",
            "OPSJOB_SSH_CONTROL_PERSIST": "1h30m",
            "OPSJOB_SSH_KEX_ALGORITHMS": "^mlkem768x25519-sha256,curve25519-sha256",
        }
    )
    assert (s.retention_days, s.max_log_bytes, s.host_key_checking, s.ansible_warm) == (
        0,
        0,
        True,
        False,
    )
    assert (s.log_level, s.log_format, s.ssh_control_persist) == ("DEBUG", "json", "1h30m")
    assert s.ssh_kex_algorithms == "^mlkem768x25519-sha256,curve25519-sha256"


@pytest.mark.parametrize("value", ["-1", "0.5"])
def test_a_negative_retention_stops_the_command_naming_the_setting(tmp_path, value):
    env = {**os.environ, "OPSJOB_HOME": str(tmp_path), "OPSJOB_RETENTION_DAYS": value}
    out = subprocess.run([OPSJOB, "prune"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "opsjob: OPSJOB_RETENTION_DAYS: must be an integer"
        + (" of at least 0" if value == "-1" else "")
        + f", not {value!r}"
    )
    assert not os.path.exists(tmp_path / "opsjob.db")  # refused before anything was touched


def test_two_ups_on_one_machine_start_and_stop_cleanly(tmp_path):
    """Each `opsjob up` keeps gunicorn's control socket under its own OPSJOB_HOME: a second
    server on the machine neither takes the first one's socket nor removes it when it stops."""
    import signal
    import stat

    ups = []
    try:
        for name in ("one", "two"):
            home = tmp_path / name
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOB_")}
            env.update(OPSJOB_HOME=str(home), OPSJOB_LOG_LEVEL="WARNING")
            port = free_port()
            log = open(tmp_path / f"{name}.log", "wb")
            proc = subprocess.Popen(
                [OPSJOB, "up", "--port", str(port), "--workers", "1", "--task-workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            ups.append((home, f"http://127.0.0.1:{port}", proc, tmp_path / f"{name}.log"))
        for _, url, proc, _ in ups:
            wait_until_up(url, proc, path="/healthz")
        sockets = [home / f"gunicorn-{url.rsplit(':', 1)[1]}.ctl" for home, url, _, _ in ups]
        deadline = time.monotonic() + 20  # the arbiter opens it beside its workers, not before
        for path in sockets:
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert stat.S_ISSOCK(os.stat(path).st_mode), path
        (home, url, first, log), (_, other_url, second, other_log) = ups
        os.kill(first.pid, signal.SIGTERM)
        assert first.wait(timeout=30) == 0, log.read_text()
        assert not os.path.exists(sockets[0]) and os.path.exists(sockets[1])
        assert call("GET", other_url + "/healthz")[0] == 200
        os.kill(second.pid, signal.SIGTERM)
        assert second.wait(timeout=30) == 0, other_log.read_text()
        for _, _, _, path in ups:
            text = path.read_text()
            assert "Traceback" not in text and "control socket" not in text, text
    finally:
        for _, _, proc, _ in ups:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_make_run_installs_what_a_playbook_step_needs():
    """`make run` depends on run-deps, which installs bubblewrap (and git, ssh) when missing."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "Makefile")) as f:
        rules = {
            line.split(":", 1)[0]: line.split(":", 1)[1].split()
            for line in f
            if re.match(r"[a-z-]+:", line) and ":=" not in line
        }
    assert "run-deps" in rules["run"] and "run-deps" in rules["system-deps"]
    dry = subprocess.run(
        ["make", "-n", "-C", root, "run-deps"], capture_output=True, text=True, check=True
    ).stdout
    assert "command -v bwrap" in dry and "install -y -qq bubblewrap" in dry


def test_a_playbook_step_runs_on_the_demo_machine_of_a_bootstrapped_home(tmp_path):
    """What `make run` gives: `opsjob bootstrap` + `opsjob up`; a playbook step from the file
    store runs on project 1's `localhost`, contained by bubblewrap."""
    from types import SimpleNamespace

    from tests.test_playbook_steps import tar_gz, upload

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOB_")}
    env["OPSJOB_HOME"] = str(tmp_path / "var")
    with bootstrapped_up(env, "--workers", "1", "--task-workers", "1") as (url, key):
        secret = os.path.join(env["OPSJOB_HOME"], "secret.key")
        assert os.path.exists(secret)
        playbook = (
            "- hosts: all\n  tasks:\n"
            "    - name: say hello\n"
            "      ansible.builtin.command: echo hello from {{ inventory_hostname }}\n"
            f"    - ansible.builtin.stat: {{path: {secret}}}\n"
            "      register: home\n"
            "    - name: the home is out of sight\n"
            "      ansible.builtin.assert: {that: not home.stat.exists}\n"
        )
        upload(SimpleNamespace(url=url, key=key), "site.tar.gz", tar_gz({"site.yml": playbook}))
        step = {
            "plugin_type": "playbook",
            "name": "demo playbook",
            "node_type": "builtin",
            "node_cont": "localhost",
            "source": "fileserver:site.tar.gz",
            "playbook": "site.yml",
        }
        body = {"name": "demo", "permanent": 1, "data": [step]}
        status, r = call("POST", f"{url}/jobs/1", key, body)
        assert status == 200, r
        status, r = call("POST", f"{url}/task/1/job", key, {"jobuuid": r["uuid"]})
        assert status == 200, r
        log = finished_log(url, key, r["uuid"], 120)
        assert log["status"] == "success", log["log"]
        assert "say hello" in log["log"] and "failed=0" in log["log"], log["log"]
