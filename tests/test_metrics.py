"""Monitoring: a real `opsjob serve` (two processes) and a real worker after real tasks ran,
read through Prometheus' own text parser; request ids; JSON log lines."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.ops import logformat
from tests.cluster import Cluster, unique
from tests.test_notifications import LOOPBACK, Receiver

pytestmark = pytest.mark.slow

PLUGIN_CMD = "/task/{projectid:int}/plugin_cmd"


def get(url, key=None, headers=None):
    req = urllib.request.Request(url, headers={**(headers or {})})
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def scrape(c):
    status, headers, text = get(c.url + "/metrics", c.key)
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, name, sample=None, **labels):
    """Sum the samples of ``name`` (``sample``: a suffixed series such as ``_count``) whose
    labels include ``labels``."""
    family = families[name]
    wanted = sample or family.name
    return sum(
        s.value
        for s in family.samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    receiver = Receiver()
    c = Cluster(ssh_nodes)
    c.env.update(
        OPSJOB_LOG_FORMAT="json",
        OPSJOB_LOG_LEVEL="INFO",
        OPSJOB_WEBHOOK_ALLOW=LOOPBACK,
        OPSJOB_NOTIFY_RETRIES="0",
    )
    c.run("project", "add", "1", "watched")
    c.reader = c.run("user", "add", "reader", "--project", "1", "--role", "delete")
    c.serve()
    c.worker()
    c.node = ssh_nodes.ensure(2)
    c.add_nodes(1, c.node)
    c.ok("POST", "/project/1", {"webhook": receiver.url + "/hook/secretpath"})
    yield c
    c.close()
    receiver.close()


def run_cmd(c, script, nodes):
    body = {
        "name": unique("m"),
        "node_type": "builtin",
        "node_cont": ",".join(nodes),
        "scripts_type": "shell",
        "scripts_cont": script,
    }
    return c.ok("POST", "/task/1/plugin_cmd", body)["data"]["uuid"]


def test_metrics_after_real_tasks(cluster):
    c = cluster
    good = run_cmd(c, "echo fine", c.node)
    bad = run_cmd(c, "exit 3", c.node[:1])
    assert c.wait(1, good)["status"] == "success" and c.wait(1, bad)["status"] == "fail"
    for _ in range(6):  # spread over both server processes
        c.ok("GET", f"/task/1/{good}")

    def settled():
        m = scrape(c)
        done = value(m, "opsjob_task_duration_seconds", "opsjob_task_duration_seconds_count")
        notes = value(m, "opsjob_notifications", "opsjob_notifications_total")
        alive = value(m, "opsjob_workers_alive")
        return m if done >= 2 and notes >= 2 and alive == 1 else None

    m = wait_for(settled) or scrape(c)
    assert value(m, "opsjob_tasks", project="1", status="success") >= 1
    assert value(m, "opsjob_tasks", project="1", status="fail") >= 1
    assert "opsjob_queue_depth" in m and value(m, "opsjob_queue_depth") >= 0
    durations = "opsjob_task_duration_seconds"
    assert value(m, durations, durations + "_count", status="success") >= 1
    assert value(m, durations, durations + "_count", status="fail") >= 1
    assert value(m, durations, durations + "_bucket", status="success", le="+Inf") >= 1
    steps = "opsjob_step_duration_seconds"
    assert value(m, steps, steps + "_count", kind="cmd", outcome="ok") >= 1
    assert value(m, steps, steps + "_count", kind="cmd", outcome="failed") >= 1
    hosts = "opsjob_host_results"
    assert value(m, hosts, hosts + "_total", status="ok") >= 2
    assert value(m, hosts, hosts + "_total") - value(m, hosts, hosts + "_total", status="ok") >= 1
    notes = "opsjob_notifications"
    assert value(m, notes, notes + "_total", channel="webhook", outcome="ok") >= 2
    assert value(m, "opsjob_workers_alive") == 1
    beats = m["opsjob_worker_heartbeat_timestamp_seconds"].samples
    assert beats and all(time.time() - s.value < 30 for s in beats)
    assert "opsjob_scheduler_fires" in m
    requests = "opsjob_http_request_duration_seconds"
    launched = value(m, requests, requests + "_count", method="POST", route=PLUGIN_CMD)
    assert launched >= 2
    reads = value(m, requests, requests + "_count", route="/task/{projectid:int}/{uuid}")
    assert reads >= 6
    routes = {s.labels["route"] for s in m[requests].samples}
    assert not [r for r in routes if good in r or bad in r], routes  # templates, not paths


def test_metrics_need_an_admin_key(cluster):
    assert get(cluster.url + "/metrics")[0] == 401
    assert get(cluster.url + "/metrics", cluster.reader)[0] == 403


def test_a_killed_worker_stops_counting_as_alive(cluster):
    c = cluster
    assert wait_for(lambda: value(scrape(c), "opsjob_workers_alive") == 1)
    c.stop("worker", signal.SIGKILL)
    try:
        assert value(scrape(c), "opsjob_workers_alive") == 0
    finally:
        c.worker()
    assert wait_for(lambda: value(scrape(c), "opsjob_workers_alive") == 1)


def test_a_new_worker_counts_as_alive_before_its_first_task_ends(cluster):
    c = cluster
    c.stop("worker", signal.SIGKILL)
    assert wait_for(lambda: value(scrape(c), "opsjob_workers_alive") == 0)
    c.worker()
    uuid = run_cmd(c, "sleep 4", c.node[:1])  # its first task: claimed as soon as it starts
    c.wait(1, uuid, statuses=("running",))
    alive = value(scrape(c), "opsjob_workers_alive")
    assert c.ok("GET", f"/task/1/{uuid}")["data"]["status"] == "running"
    assert alive == 1
    c.wait(1, uuid)


def test_request_ids_are_echoed_and_logged_as_json(cluster):
    c = cluster
    status, headers, _ = get(c.url + "/task/1", c.key, {"X-Request-Id": "trace-42.a"})
    assert status == 200 and headers["X-Request-Id"] == "trace-42.a"
    _, headers, _ = get(c.url + "/task/1", c.key, {"X-Request-Id": "bad id\twith spaces"})
    made = headers["X-Request-Id"]
    assert made != "bad id\twith spaces" and len(made) == 32
    _, other, _ = get(c.url + "/task/1", c.key)
    assert other["X-Request-Id"] not in ("", made)
    status, headers, _ = get(c.url + "/nosuchroute", c.key, {"X-Request-Id": "r-404"})
    assert status == 404 and headers["X-Request-Id"] == "r-404"

    uuid = run_cmd(c, "echo logged", c.node[:1])
    c.wait(1, uuid)
    c.call("POST", "/task/1/plugin_cmd", {"node_type": "nope"})  # logged nowhere, a 400
    lines = []
    for path in pathlib.Path(c.home).glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            lines.append(json.loads(line))  # each line is one JSON object, gunicorn's too
    assert lines, c.logs()
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id", "task"} <= line.keys()
    assert any(line["task"] == uuid for line in lines), lines[-20:]
    assert any(line["request_id"] == "trace-42.a" for line in lines), lines[-20:]


def test_json_lines_carry_the_request_id_and_task(capsys):
    import logging

    from engine.store.settings import Settings

    handler = logging.StreamHandler()
    handler.setFormatter(logformat.JsonLines())
    log = logging.getLogger("opsjob.test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        token = logformat.request_id.set("req-1")
        with logformat.for_task("task00000001"):
            log.warning('say "%s"\nnext line', "x")
        logformat.request_id.reset(token)
        log.warning("after")
    finally:
        log.removeHandler(handler)
    first, second = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert first["message"] == 'say "x"\nnext line' and first["level"] == "WARNING"
    assert (first["request_id"], first["task"]) == ("req-1", "task00000001")
    assert (second["request_id"], second["task"]) == ("", "")
    with pytest.raises(Exception, match="OPSJOB_LOG_FORMAT"):
        logformat.configure(Settings(log_format="xml"))
    assert os.environ.get("OPSJOB_LOG_FORMAT") != "xml"


def fires(families):
    return value(families, "opsjob_scheduler_fires", "opsjob_scheduler_fires_total")


def test_scheduler_fires_are_counted(api):
    from engine.insight import metrics
    from engine.schedule import scheduler
    from engine.store.db import database
    from tests.test_scheduler import AT, make_crontab, make_job

    make_crontab(api, make_job(api, "nightly"), "* * * * *")
    scrape_now = lambda: {  # noqa: E731
        f.name: f for f in text_string_to_metric_families(metrics.scrape()[1])
    }
    with database.connection_context():
        before = fires(scrape_now())
        assert len(scheduler.fire(scheduler.minute_id(AT))) == 1
        assert scheduler.fire(scheduler.minute_id(AT)) == []  # fired already: not counted
        assert fires(scrape_now()) == before + 1
    r = api.get("/metrics")
    assert r.status_code == 200 and "opsjob_scheduler_fires_total" in r.text


CHILD = """
import os, sys, types
from prometheus_client import mmap_dict
from engine.insight import metrics
from engine.store.settings import Settings
from tests.faultparts import fill

home, backed = sys.argv[1], sys.argv[2] == "1"
if not backed:  # what prometheus_client does on its own
    metrics._backed_mmaped_dict = lambda: mmap_dict.MmapedDict
metrics.prepare(Settings(home=home))
metrics.observe_request("GET", "/before", 200, 0.01)
fill(home)
# first samples of new kinds after the disk filled: new files and new entries
outcome = types.SimpleNamespace(started=0.0, ended=1.0, status="error", hosts={})
metrics.on_step_finished(None, {"kind": "cmd"}, outcome)
for i in range(200):
    metrics.observe_request("GET", f"/route-{i}-" + "x" * 60, 200, 0.01)
print("alive")
"""


@pytest.mark.parametrize("backed", [False, True], ids=["library", "opsjob"])
def test_metrics_on_a_full_disk_cost_samples_not_the_process(backed, tmp_path):
    """prometheus_client writes samples through a file mapping; a page a full file system
    cannot supply kills the process with SIGBUS. opsjob reserves the space first, so a full
    disk costs samples (logged once), never the worker or an API process."""
    from tests.faultparts import small_disk

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with small_disk("2m") as home:
        out = subprocess.run(
            [sys.executable, str(script), home, "1" if backed else "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    if backed:
        assert out.returncode == 0 and out.stdout.strip() == "alive", out.stderr
        assert out.stderr.count("metrics: cannot record") == 1, out.stderr
    else:  # the failure this guards against, reproduced with the library's own file
        assert out.returncode == -signal.SIGBUS, (out.returncode, out.stderr)
