"""The ssh wrapper copies a step's node-script output to its follow file, keeps ssh's exit
status, and leaves every other ssh call alone; the reader hands on whole lines only."""

import os
import shlex
import subprocess
import time

from engine.ansible import streams
from engine.ansible.action_plugins.opsjob_node import remote_command

FAKE_SSH = """#!/bin/bash
# stands in for ssh: prints its last argument's words, then exits with $OJ_RC
for last; do :; done
echo "BECOME-SUCCESS-abcdef"
printf 'one\\ntwo\\npart'
exit "${OJ_RC:-0}"
"""


def wrapper(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o700)
    stream = tmp_path / "stream"
    stream.mkdir()
    script = tmp_path / "oj-ssh"
    script.write_text(streams.ssh_wrapper(str(stream)))
    script.chmod(0o700)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return script, stream, env


def test_the_run_command_is_copied_and_keeps_its_exit_status(tmp_path):
    script, stream, env = wrapper(tmp_path)
    run = "/bin/sh -c " + shlex.quote(remote_command("0123456789abcdef", "c3") + " ; sleep 0")
    out = subprocess.run(
        [script, "-o", "X=1", "node", run], env={**env, "OJ_RC": "7"}, capture_output=True
    )
    assert out.returncode == 7
    assert out.stdout == b"BECOME-SUCCESS-abcdef\none\ntwo\npart"
    assert (stream / "c3").read_bytes() == out.stdout
    assert out.stderr == b""


def test_other_ssh_calls_are_plain(tmp_path):
    script, stream, env = wrapper(tmp_path)
    others = (
        "/bin/sh -c 'chmod u+x /tmp/x/run.sh'",
        "echo ~ && sleep 0",
        "/bin/sh -c " + shlex.quote(remote_command("0123456789abcdef", "u3")),
    )
    for command in others:
        out = subprocess.run([script, "node", command], env=env, capture_output=True)
        assert out.returncode == 0 and out.stdout.endswith(b"part")
    assert os.listdir(stream) == []


def test_the_reader_hands_on_whole_lines_of_hosts_that_print_for_a_while(tmp_path):
    (tmp_path / "c0").write_bytes(b"BECOME-SUCCESS-xyz\nfirst\nsec")
    (tmp_path / "c1").write_bytes(b"other\n")
    reader = streams.StreamReader(str(tmp_path), ["web1", "web2"], after=0.3)
    assert reader.poll(["web1", "web2"]) == []  # just started printing: maybe a short command
    time.sleep(0.35)
    assert reader.poll({"web1"}) == [("web1", "first\n")]
    with open(tmp_path / "c0", "ab") as f:
        f.write("ond \u00e9\n".encode()[:-2])  # a character cut in two
    assert reader.poll({"web1"}) == []
    with open(tmp_path / "c0", "ab") as f:
        f.write("ond \u00e9\n".encode()[-2:])
    assert reader.poll({"web1"}) == [("web1", "second \u00e9\n")]


def test_the_reader_looks_only_at_the_running_hosts(tmp_path, monkeypatch):
    names = [f"h{n}" for n in range(500)]
    for slot in (3, 400):
        (tmp_path / f"c{slot}").write_bytes(b"line\n")
    reader = streams.StreamReader(str(tmp_path), names, after=0)
    looked = []
    stat = streams.os.stat
    monkeypatch.setattr(streams.os, "stat", lambda path: looked.append(path) or stat(path))
    assert reader.poll({"h400", "h7"}) == [("h400", "line\n")]
    assert sorted(looked) == sorted(str(tmp_path / f"c{n}") for n in (7, 400))
    assert reader.poll({"h3"}) == [("h3", "line\n")]  # started later: read from 0


def test_a_local_machine_is_followed_too_and_keeps_its_exit_status(tmp_path):
    import sys

    from engine.ansible.playbook import Host, compile_cmd
    from engine.ansible.runner import execute
    from engine.store.settings import Settings

    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    step = compile_cmd(
        [Host("localhost", local)], "echo a; sleep 4; echo b; exit 3", "shell", timeout=60
    )
    got = []
    outcome = execute(
        step,
        str(tmp_path / "runs"),
        Settings(home=str(tmp_path)),
        on_output=lambda host, text: got.append((time.monotonic(), host, text)),
    )
    ended = time.monotonic()
    result = outcome.hosts["localhost"]
    assert (result.status, result.rc, result.stdout) == ("failed", 3, "a\nb\n")
    assert got and got[0][1:] == ("localhost", "a\n"), got
    assert ended - got[0][0] > 1.5  # handed on while the host still slept
