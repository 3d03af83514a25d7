"""A task's log is capped: it keeps its head and tail and says what was cut, on the pure cap,
through the database writer, and end to end with a step that prints far more than the cap."""

import pytest

from engine.store import schema
from engine.store.db import database, open_database
from engine.store.models import LogChunk, Task
from engine.tasklog import logs
from engine.tasklog.logcap import LogCap


def test_the_cap_keeps_head_and_tail_and_counts_the_cut():
    cap = LogCap(100)
    stored = ""
    for n in range(1000):
        stored += cap.admit(len(stored), f"line {n:04d}\n")
    assert stored.startswith("line 0000\n") and "held back" in stored
    head_end = stored.index("\n[log over 100 characters")
    assert head_end <= 50
    released = cap.release()
    assert released.endswith("line 0999\n")
    tail = released.split("characters cut ...]\n", 1)[1]
    assert len(tail) == 50 and tail.endswith("line 0998\nline 0999\n")
    written = 1000 * len("line 0000\n")
    cut = int(released.split("[... ")[1].split(" ")[0])
    assert head_end + cut + len(tail) == written  # nothing lost without being counted
    assert cap.release() == ""  # released once
    assert LogCap(0).admit(10**9, "x" * 10**6) == "x" * 10**6  # 0: no cap


def test_a_small_write_under_the_cap_is_unchanged():
    cap = LogCap(1000)
    assert cap.admit(0, "hello\n") == "hello\n" and cap.release() == ""


@pytest.fixture
def db(settings):
    open_database(settings.database)
    schema.upgrade()
    return settings


def test_the_writer_stores_at_most_the_cap_and_reads_back_contiguously(db):
    with database.connection_context():
        Task.create(projectid=1, uuid="capped", status="running")
    writer = logs.LogWriter("capped", max_chars=10_000)
    for n in range(20_000):  # 200 K characters
        writer.write(f"row {n:05d}\n")
    writer.finish()
    with database.connection_context():
        text = "".join(c.text for c in LogChunk.select().order_by(LogChunk.offset))
        read = logs.read("capped", 0, limit=10**6)["log"]
    assert read == text
    assert len(text) < 10_000 + 400  # the cap plus the two notices
    assert text.startswith("row 00000\n") and text.endswith("row 19999\n")
    assert "characters cut ...]" in text
    # a writer of the next turn (after a wait) keeps appending after what is stored
    again = logs.LogWriter("capped", max_chars=10_000)
    again.line("resumed")
    again.finish()
    with database.connection_context():
        assert logs.read("capped", len(text))["log"].endswith("resumed\n")


@pytest.fixture(scope="module")
def cluster(ssh_nodes):
    from tests.cluster import Cluster

    c = Cluster(ssh_nodes)
    try:
        c.run("project", "add", "1", "one")
        c.serve()
        c.worker(env={"OPSJOB_MAX_LOG_BYTES": "6000"})
        c.node = ssh_nodes.ensure(1)[0]
        c.add_nodes(1, [c.node])
        yield c
    finally:
        c.close()


def run_cmd(c, script):
    uuid = c.ok(
        "POST",
        "/task/1/plugin_cmd",
        {
            "node_type": "builtin",
            "node_cont": c.node,
            "scripts_type": "shell",
            "scripts_cont": script,
        },
    )["data"]["uuid"]
    task = c.wait(1, uuid)
    (row,) = [h for h in c.ok("GET", f"/task/1/{uuid}/hosts")["data"] if h["host"] == c.node]
    return task, c.ok("GET", f"/slave/any/tasklog/{uuid}")["data"], row


@pytest.mark.slow
def test_a_step_that_prints_far_more_than_the_cap(cluster):
    script = 'for i in $(seq 1 12000); do echo "output line $i"; done'  # ~210 K characters
    task, log, row = run_cmd(cluster, script)
    assert task["status"] == "success"
    text = log["log"]
    assert log["done"] and len(text) < 6000 + 400, len(text)
    assert text.startswith("[") and f"task {task['uuid']}" in text.splitlines()[0]
    assert "held back" in text and "characters cut ...]" in text
    assert "output line 12000\n" in text and text.rstrip().endswith("task success")
    stdout = row["stdout"]
    assert 60 * 1024 < len(stdout) < 66 * 1024  # the host's own cap: head and tail
    assert stdout.startswith("output line 1\n") and "output line 12000" in stdout


@pytest.mark.slow
def test_a_step_that_prints_megabytes_keeps_its_exit_status_and_both_ends(cluster):
    # Uncapped, Ansible would carry all of it and ansible-runner drop the whole result
    # (rc and output) past 700,000 characters.
    script = (
        "echo first-line; yes 'endless output' | head -c 5000000; echo last-line\n"
        "echo err-first >&2; yes e | head -c 3000000 >&2; echo err-last >&2; exit 3"
    )
    task, log, row = run_cmd(cluster, script)
    assert task["status"] == "fail"
    assert (row["status"], row["rc"]) == ("failed", 3)
    for stream, first, last in (
        ("stdout", "first-line", "last-line"),
        ("stderr", "err-first", "err-last"),
    ):
        text = row[stream]
        assert text.startswith(first) and text.rstrip().endswith(last), (stream, text[-200:])
        assert "output cut on the node" in text and len(text) < 66 * 1024
