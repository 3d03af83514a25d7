"""Real step runs through ansible-runner against the loopback SSH nodes.

The nodes are this machine, so what a step leaves "on a node" is visible here too.
"""

import glob
import grp
import os
import pwd
import re
import shlex
import signal
import stat
import subprocess
import time
import uuid

import pytest

from engine.ansible.action_plugins.opsjob_node import remote_command
from engine.ansible.nodescripts import OUTPUT_KEEP as KEEP
from engine.ansible.nodescripts import run_script
from engine.ansible.playbook import Host, compile_cmd, compile_scp
from engine.ansible.proctree import kill_local_tree
from engine.ansible.runner import execute
from engine.store.settings import Settings
from tests.sshnodes import SshNodes


@pytest.fixture
def run(tmp_path):
    """Execute a compiled step with fresh settings; return the outcome."""
    settings = Settings(home=str(tmp_path))

    def go(compiled, **kw):
        outcome = execute(compiled, str(tmp_path / "runs"), settings, **kw)
        assert os.listdir(tmp_path / "runs") == []  # the private data dir is gone
        return outcome

    return go


def hosts(nodes, *addresses):
    return [Host(a, nodes.conn_vars(a)) for a in addresses]


def processes(needle):
    """Pids whose command line contains ``needle`` (bytes, NUL-separated argv)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def run_leftovers(run_id, wait=2.0):
    """Files a run left in /tmp on the nodes, after giving the node-side wrappers time."""
    deadline = time.monotonic() + wait
    while True:
        left = glob.glob(f"/tmp/.opsjob-{run_id}-*")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def local_run_processes(runs_dir):
    """Local processes of runs made under ``runs_dir``, SSH master connections aside."""
    needle = f"ANSIBLE_CONFIG={runs_dir}/".encode()
    left = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in env and b"[mux]" not in cmd and cmd:
            left.append((entry.name, cmd))
    return left


SHOW = r"""echo "node=$(echo "$SSH_CONNECTION" | cut -d' ' -f3) argc=$#"
for a in "$@"; do echo "arg=$a"; done
echo "app=$wk_app tree=$wk_treeid"
"""


def test_cmd_runs_on_three_nodes_with_argv_and_env(ssh_nodes, run):
    nodes = ssh_nodes.addresses[:3]
    finished, logs = [], []
    c = compile_cmd(
        hosts(ssh_nodes, *nodes),
        SHOW,
        "shell",
        argv="one 'two words' \"$HOME\"",
        env={"wk_app": "web app", "wk_treeid": "1"},
        timeout=20,
    )
    o = run(c, on_host_result=finished.append, on_log=logs.append)
    assert o.status == "ok" and o.failed_hosts == [] and o.error == ""
    assert list(o.hosts) == nodes
    for node in nodes:
        r = o.hosts[node]
        assert r.status == "ok" and r.rc == 0 and r.stderr == ""
        assert (
            r.output
            == r.stdout
            == (f"node={node} argc=3\narg=one\narg=two words\narg=/root\napp=web app tree=1\n")
        )
        assert o.started <= r.start <= r.end <= o.ended
    assert sorted(r.host for r in finished) == sorted(nodes)
    assert "TASK [opsjob: run]" in "".join(logs)
    assert run_leftovers(c.run_id) == []


def test_failed_and_unreachable_nodes_are_reported(ssh_nodes, run):
    good, bad = ssh_nodes.addresses[:2]
    script = f'case "$SSH_CONNECTION" in *" {bad} "*) echo broken >&2; exit 3;; esac\necho fine\n'
    targets = hosts(ssh_nodes, good, bad) + [Host("down", ssh_nodes.conn_vars(ssh_nodes.dead))]
    o = run(compile_cmd(targets, script, "shell", timeout=20))
    assert o.status == "failed" and o.failed_hosts == [bad, "down"]
    assert (o.hosts[good].status, o.hosts[good].stdout) == ("ok", "fine\n")
    assert (o.hosts[bad].status, o.hosts[bad].rc, o.hosts[bad].stderr) == ("failed", 3, "broken\n")
    assert o.hosts["down"].status == "unreachable" and o.hosts["down"].rc is None
    assert "Connection refused" in o.hosts["down"].msg


def test_become_runs_as_the_step_user(ssh_nodes, run):
    o = run(
        compile_cmd(
            hosts(ssh_nodes, ssh_nodes.addresses[0]),
            "id -un; echo $HOME",
            "shell",
            become_user=ssh_nodes.become_user,
            timeout=20,
        )
    )
    assert o.status == "ok", o.hosts
    home = pwd.getpwnam(ssh_nodes.become_user).pw_dir
    assert o.hosts[ssh_nodes.addresses[0]].stdout == f"{ssh_nodes.become_user}\n{home}\n"


def test_a_node_without_sudo_runs_a_step_for_its_login_user(tmp_path, run):
    """A node whose sessions find no sudo runs a ``user: root`` step as root (the login user)
    without sudo, and a step for another account still tries to become it."""
    shadow = tmp_path / "nosudo"
    shadow.mkdir()
    (shadow / "sudo").write_text("#!/bin/sh\necho 'sudo: not found' >&2\nexit 127\n")
    (shadow / "sudo").chmod(0o755)
    os.chmod(tmp_path, 0o755)
    nodes = SshNodes(path=f"{shadow}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    try:
        (node,) = nodes.ensure(1)
        assert "sudo: not found" in nodes.ssh(node, "sudo true").stderr  # the node has no sudo
        o = run(compile_cmd(hosts(nodes, node), "id -un", "shell", become_user="root", timeout=20))
        assert (o.status, o.hosts[node].stdout) == ("ok", "root\n"), o.hosts
        o = run(
            compile_cmd(
                hosts(nodes, node), "id -un", "shell", become_user=nodes.become_user, timeout=20
            )
        )
        assert o.status == "failed" and "sudo: not found" in o.hosts[node].stderr, o.hosts
    finally:
        nodes.stop()


def test_node_timeout_kills_the_remote_command(ssh_nodes, run):
    marker = f"41.{uuid.uuid4().int % 10**6:06d}"
    node = ssh_nodes.addresses[0]
    t0 = time.monotonic()
    c = compile_cmd(hosts(ssh_nodes, node), f"echo started; sleep {marker}", "shell", timeout=2)
    o = run(c)
    assert time.monotonic() - t0 < 8
    r = o.hosts[node]
    assert o.status == "failed" and r.status == "timeout" and r.rc == 124, r
    assert r.stdout == "started\n" and "timeout: sending signal TERM" in r.stderr
    assert processes(f"sleep\0{marker}".encode()) == []
    assert run_leftovers(c.run_id) == []


SCRIPTS = {
    "python": "import os, sys\nprint(sys.argv[1:], os.environ['wk_app'])\n",
    "perl": 'print "[\'" . join("\', \'", @ARGV) . "\'] $ENV{wk_app}\\n";\n',
    "php": '<?php echo "[\'" . implode("\', \'", array_slice($argv, 1)) . "\'] " . '
    "getenv('wk_app') . \"\\n\";\n",
    "auto": "#!/bin/sh\necho \"['$1', '$2'] $wk_app\"\n",
}


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_script_types(ssh_nodes, run, kind):
    assert os.path.exists(f"/usr/bin/{kind if kind != 'auto' else 'env'}") or kind in (
        "python",
        "shell",
    ), f"{kind} is not installed: run `make system-deps`"
    node = ssh_nodes.addresses[1]
    o = run(
        compile_cmd(
            hosts(ssh_nodes, node),
            SCRIPTS[kind],
            kind,
            argv="a 'b c'",
            env={"wk_app": "x"},
            timeout=20,
        )
    )
    assert o.status == "ok", o.hosts[node]
    assert o.hosts[node].stdout == "['a', 'b c'] x\n"


def test_user_text_is_never_jinja(ssh_nodes, run, tmp_path):
    token = uuid.uuid4().hex[:12]
    marker = f"/tmp/opsjob-pwned-{token}"
    evil = "{{ lookup('pipe','touch " + marker + "') }}"
    node = ssh_nodes.addresses[0]
    script = (
        "#!/bin/bash\n"
        f"echo {shlex.quote(evil)}\n"
        'printf "arg=%s\\n" "$@"\n'
        'printf "env=%s\\n" "$wk_evil"\n'
    )
    c = compile_cmd(
        hosts(ssh_nodes, node),
        script,
        "shell",
        argv=shlex.quote(evil),
        env={"wk_evil": evil},
        timeout=20,
    )
    o = run(c)
    assert o.status == "ok", o.hosts[node]
    assert o.hosts[node].stdout == f"{evil}\narg={evil}\nenv={evil}\n"
    # a path with the same text: copied to a destination path with it too
    src = tmp_path / "src" / evil
    src.mkdir(parents=True)
    (src / "f.txt").write_text("payload")
    dst = tmp_path / "dst" / evil
    s = compile_scp(
        hosts(ssh_nodes, node)[0], f"{src}/f.txt", hosts(ssh_nodes, node), f"{dst}/", timeout=20
    )
    o = run(s)
    assert o.status == "ok", (o.source, o.hosts)
    assert (dst / "f.txt").read_text() == "payload"
    assert not os.path.exists(marker)


def test_scp_file_to_two_nodes_with_owner_and_mode(ssh_nodes, run, tmp_path):
    src, dst = ssh_nodes.addresses[0], ssh_nodes.addresses[1:3]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.conf").write_bytes(b"key=1\n\x00binary\xff")
    c = compile_scp(
        hosts(ssh_nodes, src)[0],
        f"{tmp_path}/src/app.conf",
        hosts(ssh_nodes, *dst),
        f"{tmp_path}/out/",
        chown=f"{ssh_nodes.become_user}:{ssh_nodes.become_user}",
        chmod="640",
        timeout=20,
    )
    o = run(c)
    assert o.status == "ok" and o.source.status == "ok", (o.source, o.hosts)
    assert [r.status for r in o.hosts.values()] == ["ok", "ok"]
    target = tmp_path / "out" / "app.conf"
    assert target.read_bytes() == b"key=1\n\x00binary\xff"
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert pwd.getpwuid(st.st_uid).pw_name == ssh_nodes.become_user
    assert grp.getgrgid(st.st_gid).gr_name == ssh_nodes.become_user
    assert sorted(os.listdir(tmp_path / "out")) == ["app.conf"]  # no staging dir left
    assert run_leftovers(c.run_id) == []


def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames:
            out[os.path.normpath(os.path.join(rel, name))] = None
        for name in filenames:
            with open(os.path.join(dirpath, name)) as f:
                out[os.path.normpath(os.path.join(rel, name))] = f.read()
    return out


def test_scp_directory_sync_rules_and_delete(ssh_nodes, run, tmp_path):
    src, dst = hosts(ssh_nodes, *ssh_nodes.addresses[:2])
    source = tmp_path / "src" / "site"
    (source / "css").mkdir(parents=True)
    (source / "index.html").write_text("new index")
    (source / "css" / "a.css").write_text("a")
    mirror = tmp_path / "mirror"
    (mirror / "old").mkdir(parents=True)
    (mirror / "old" / "stale.txt").write_text("stale")
    (mirror / "index.html").write_text("old index")

    # "site/" syncs the contents into "mirror" (which gets a trailing slash); extras stay
    o = run(compile_scp(src, f"{source}/", [dst], str(mirror), chmod="u=rwX,go=rX", timeout=20))
    assert o.status == "ok", (o.source, o.hosts)
    assert _tree(mirror) == {
        "css": None,
        "css/a.css": "a",
        "index.html": "new index",
        "old": None,
        "old/stale.txt": "stale",
    }
    assert stat.S_IMODE((mirror / "css" / "a.css").stat().st_mode) == 0o644

    # with scp_delete the destination mirrors the source exactly
    o = run(
        compile_scp(
            src,
            f"{source}/",
            [dst],
            f"{mirror}/",
            delete=True,
            chown=ssh_nodes.become_user,
            timeout=20,
        )
    )
    assert o.status == "ok", (o.source, o.hosts)
    assert _tree(mirror) == {"css": None, "css/a.css": "a", "index.html": "new index"}
    assert pwd.getpwuid((mirror / "css" / "a.css").stat().st_uid).pw_name == ssh_nodes.become_user

    # "site" without a slash to a "dir/" destination lands under its basename
    o = run(compile_scp(src, str(source), [dst], f"{tmp_path}/under/", timeout=20))
    assert o.status == "ok", (o.source, o.hosts)
    assert _tree(tmp_path / "under") == {
        "site": None,
        "site/css": None,
        "site/css/a.css": "a",
        "site/index.html": "new index",
    }


def test_scp_from_a_local_file(ssh_nodes, run, tmp_path):
    blob = tmp_path / "store" / "0f1e2d"
    blob.parent.mkdir()
    blob.write_bytes(b"release 1.2\n")
    node = ssh_nodes.addresses[3]
    c = compile_scp(
        None,
        "release.txt",
        hosts(ssh_nodes, node),
        f"{tmp_path}/opt/",
        local_source=str(blob),
        timeout=20,
    )
    o = run(c)
    assert o.status == "ok" and o.source is None, o.hosts
    target = tmp_path / "opt" / "release.txt"
    assert target.read_bytes() == b"release 1.2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_scp_missing_source_fails_every_destination(ssh_nodes, run, tmp_path):
    src, dst = hosts(ssh_nodes, *ssh_nodes.addresses[:2])
    o = run(compile_scp(src, f"{tmp_path}/nope.txt", [dst], f"{tmp_path}/out/", timeout=20))
    assert o.status == "failed" and o.source.status == "failed"
    assert "no such file or directory" in o.source.stderr
    assert o.hosts[dst.name].status == "failed"
    assert o.hosts[dst.name].msg.startswith(f"source {src.name} failed:")
    assert "no such file or directory" in o.hosts[dst.name].msg


def _cancel_when(predicate):
    state = {}

    def should_cancel():
        if "at" not in state and predicate():
            state["at"] = time.monotonic()
        return "at" in state

    return should_cancel, state


def test_cancel_stops_local_and_remote_work_promptly(ssh_nodes, run, tmp_path):
    marker = f"300.{uuid.uuid4().int % 10**6:06d}"
    needle = f"sleep\0{marker}".encode()
    nodes = ssh_nodes.addresses[:2]
    should_cancel, state = _cancel_when(lambda: len(processes(needle)) >= 2)
    c = compile_cmd(hosts(ssh_nodes, *nodes), f"sleep {marker}", "shell", timeout=600)
    o = run(c, should_cancel=should_cancel)
    took = time.monotonic() - state["at"]
    assert o.status == "canceled" and [r.status for r in o.hosts.values()] == ["canceled"] * 2
    assert took < 2.5, took
    assert processes(needle) == []
    assert local_run_processes(tmp_path / "runs") == []
    assert run_leftovers(c.run_id) == []


def test_cancel_before_the_remote_command_starts_still_stops_it(ssh_nodes, run, tmp_path):
    marker = f"300.{uuid.uuid4().int % 10**6:06d}"
    needle = f"sleep\0{marker}".encode()
    logs = []
    should_cancel, _ = _cancel_when(lambda: "TASK [opsjob: run]" in "".join(logs))
    c = compile_cmd(
        hosts(ssh_nodes, *ssh_nodes.addresses[2:4]), f"sleep {marker}", "shell", timeout=600
    )
    o = run(c, should_cancel=should_cancel, on_log=logs.append)
    assert o.status == "canceled"
    time.sleep(1.5)  # a wrapper that was already on its way has had time to start
    assert processes(needle) == []
    assert local_run_processes(tmp_path / "runs") == []
    # at most the cancel marks of wrappers that never started are left behind
    left = run_leftovers(c.run_id, wait=0)
    assert all(p.endswith(".cancel") for p in left), left
    for path in left:
        os.remove(path)


def test_a_failing_callback_stops_the_run_with_an_error(ssh_nodes, run):
    a, b = ssh_nodes.addresses[:2]
    needle = f"sleep {500 + uuid.uuid4().int % 400}"  # a command line no other test runs
    script = f'case "$SSH_CONNECTION" in *" {a} "*) true;; *) {needle};; esac'

    def broken(result):  # fails once a ended, while b still runs
        raise RuntimeError("log store down")

    o = run(compile_cmd(hosts(ssh_nodes, a, b), script, "shell"), on_host_result=broken)
    assert o.status == "error" and "log store down" in o.error
    # b may have run its command: its outcome is unknown, and it was stopped on its node
    assert o.hosts[b].status == "unknown"
    assert processes(needle.encode()) == []


def test_runner_errors_become_an_error_outcome(ssh_nodes, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    o = execute(
        compile_cmd(hosts(ssh_nodes, ssh_nodes.addresses[0]), "true", "shell"),
        str(blocker),
        Settings(home=str(tmp_path)),
    )
    assert o.status == "error" and o.error.startswith("ansible-runner failed:")
    assert o.hosts[ssh_nodes.addresses[0]].status == "failed"


def test_kill_local_tree_spares_only_runners_child_and_ssh_masters():
    marker = uuid.uuid4().hex
    env = dict(os.environ, OPSJOB_RUN_MARK=marker)
    # our child (runner's pexpect child) starts a worker in its own session and an SSH master
    child = subprocess.Popen(
        [
            "bash",
            "-c",
            ("setsid sleep 61.1 & (exec -a 'ssh: /tmp/x [mux]' sleep 61.2) & sleep 61.3; wait"),
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 5
        while not (
            processes(b"sleep\x0061.1")
            and processes(b"[mux]\x0061.2")
            and processes(b"sleep\x0061.3")
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        mux = processes(b"[mux]\x0061.2")
        kill_local_tree(marker)
        time.sleep(0.1)
        assert processes(b"sleep\x0061.1") == [] and processes(b"sleep\x0061.3") == []
        assert processes(b"[mux]\x0061.2") == mux and child.poll() is None
    finally:
        child.kill()
        child.wait()
        for pid in processes(b"[mux]\x0061.2"):
            os.kill(pid, signal.SIGKILL)


def _sessions(log, since=0):
    """``{node address: [session kinds]}`` from a VERBOSE sshd log (one per command or sftp),
    counting the sessions logged after character ``since``."""
    node_of, found, at = {}, {}, 0
    for line in log.splitlines(keepends=True):
        at += len(line)
        m = re.match(r"Connection from \S+ port (\d+) on (\S+) port", line)
        if m:
            node_of[m.group(1)] = m.group(2)
        m = re.match(r"Starting session: (command|subsystem 'sftp') for .* port (\d+) id", line)
        if m and at > since:
            found.setdefault(node_of[m.group(2)], []).append(m.group(1).split()[0])
    return found


def test_a_step_starts_one_remote_command_per_host_and_an_scp_target_one_transfer(tmp_path):
    """The floor: each remote command pays the node's shell start-up files, so a cmd step
    runs one per host, and an scp target receives one file and runs one command."""
    nodes = SshNodes(log_level="VERBOSE")
    try:
        a, b, c = nodes.ensure(3)
        settings = Settings(home=str(tmp_path))
        runs = str(tmp_path / "runs")
        step = compile_cmd(hosts(nodes, a, b, c), "echo '{{ x }}' $1", "shell", argv="y")
        outcome = execute(step, runs, settings)
        assert outcome.status == "ok", outcome.hosts
        assert {r.stdout for r in outcome.hosts.values()} == {"{{ x }} y\n"}
        assert _sessions(nodes.log()) == {n: ["command"] for n in (a, b, c)}
        seen = len(nodes.log())
        src = tmp_path / "src.txt"
        src.write_text("payload\n")
        step = compile_scp(hosts(nodes, a)[0], str(src), hosts(nodes, b, c), f"{tmp_path}/d/")
        assert execute(step, runs, settings).status == "ok"
        assert (tmp_path / "d" / "src.txt").read_text() == "payload\n"
        sessions = _sessions(nodes.log(), since=seen)
        assert sessions[b] == sessions[c] == ["subsystem", "command"], sessions
        assert sessions[a] == ["command", "subsystem", "command"], sessions  # pack, fetch, tidy
    finally:
        nodes.stop()


def test_the_workers_key_exchange_setting_reaches_ssh(tmp_path):
    """OPSJOB_SSH_KEX_ALGORITHMS is what ssh offers: the node agrees on the one named, and a
    node that offers none of them is unreachable. Fresh nodes: an SSH master left
    by another test would carry its own key exchange."""
    nodes = SshNodes(log_level="DEBUG1")
    try:
        a, b = nodes.ensure(2)
        runs = str(tmp_path / "runs")
        fast = Settings(home=str(tmp_path), ssh_kex_algorithms="curve25519-sha256")
        outcome = execute(compile_cmd(hosts(nodes, a), "echo ok", "shell"), runs, fast)
        assert (outcome.status, outcome.hosts[a].stdout) == ("ok", "ok\n")
        assert "kex: algorithm: curve25519-sha256" in nodes.log()
        assert "kex: algorithm: sntrup761" not in nodes.log()
        old = Settings(home=str(tmp_path), ssh_kex_algorithms="diffie-hellman-group1-sha1")
        outcome = execute(compile_cmd(hosts(nodes, b), "echo ok", "shell"), runs, old)
        assert outcome.hosts[b].status == "unreachable"
        assert "no matching key exchange method found. Their offer: diffie-hellman-group1-sha1" in (
            nodes.log()
        )  # the node saw what ssh offered
    finally:
        nodes.stop()


def test_the_node_command_saves_a_new_private_script_and_runs_it_under_the_login_umask():
    run_id = uuid.uuid4().hex
    path = f"/tmp/.opsjob-{run_id}-c0.sh"
    command = remote_command(run_id, "c0")
    script = b'umask; stat -c %a "$0"; echo "$1"\n'
    try:
        done = subprocess.run(
            ["/bin/bash", "-c", f"umask 022; {command}"], input=script, capture_output=True
        )
        assert (done.returncode, done.stdout) == (0, b"0022\n600\nc0\n"), done.stderr
        with open(path, "w") as f:  # planted before the run: never overwritten, never run
            f.write("echo planted\n")
        done = subprocess.run(["/bin/bash", "-c", command], input=script, capture_output=True)
        assert done.returncode != 0 and b"planted" not in done.stdout
        assert b"cannot overwrite existing file" in done.stderr
        with open(path) as f:
            assert f.read() == "echo planted\n"
    finally:
        if os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize("extra", [-1, 0, 1, KEEP, KEEP + 1, 3 * KEEP])
def test_the_node_passes_on_output_whole_up_to_twice_the_cap_and_cuts_beyond(tmp_path, extra):
    """Each stream keeps its first and last OUTPUT_KEEP bytes and says when it cut between."""
    size = KEEP + extra
    body = f"head -c {size} /dev/zero | tr '\\000' o; head -c {size} /dev/zero | tr '\\000' e >&2"
    script = tmp_path / "run.sh"
    script.write_text(run_script(uuid.uuid4().hex, 30, body, "shell", "", {}))
    done = subprocess.run(["/bin/bash", str(script), "c0"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr[-300:]
    for out, char in ((done.stdout, b"o"), (done.stderr, b"e")):
        if size <= 2 * KEEP:
            assert out == char * size
        else:
            head, _, rest = out.partition(b"\n[... output cut on the node")
            assert head == rest[rest.index(b"]\n") + 2 :] == char * KEEP
