"""The warm Ansible controller (engine.ansible.warm): runs forked from it see their own
configuration, die with their launcher, are found by their marker, and fall back to the cold
way when the controller is gone.
"""

import dataclasses
import os
import shutil
import signal
import threading
import time

import ansible_runner
import pytest

from engine.ansible import proctree, rundir, runner, warm
from engine.ansible.leftovers import stop_remote
from engine.ansible.playbook import Host, compile_cmd
from engine.store.settings import Settings

# Runs on the worker host (local connection): what the run's own Ansible process sees.
PROBE = """- hosts: opsjob_targets
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: >-
          ssh={{ lookup('ansible.builtin.config', 'ssh_executable',
          plugin_type='connection', plugin_name='ssh') }}
          tmp={{ lookup('ansible.builtin.pipe', 'ls ' ~ run_tmp) }}
          up={{ lookup('ansible.builtin.pipe', 'ps -o ppid= -p $(ps -o ppid= -p $PPID)') | trim }}
"""


@pytest.fixture
def settings(tmp_path):
    return Settings(home=str(tmp_path))


def controller_pids():
    return {c.proc.pid for c in warm._controllers.values() if c.alive()}


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def run_warm(compiled, pdd, marker, **kw):
    """Run ``compiled``'s playbook in ``pdd`` through ansible-runner, the warm way."""
    options = warm.runner_options(compiled, pdd, rundir.ansible_env(pdd, marker))
    assert options["binary"]
    return ansible_runner.run(
        private_data_dir=pdd,
        playbook="main.yml",
        ident="main",
        inventory=rundir.inventories(pdd),
        suppress_env_files=True,
        quiet=True,
        **options,
        **kw,
    )


def probe(settings, workdir):
    """Run PROBE through the warm path; return (the debug message, the run dir)."""
    local = Host("localhost", {"ansible_connection": "local"})
    compiled = compile_cmd([local], "true", "shell", timeout=20)
    compiled = dataclasses.replace(compiled, playbook=PROBE)
    marker = os.urandom(8).hex()
    pdd = rundir.create(
        compiled, workdir, settings, connect_timeout=10, runner_settings=runner.RUNNER_SETTINGS
    )
    messages = []

    def handler(event):
        res = event.get("event_data", {}).get("res", {})
        if "msg" in res:
            messages.append(res["msg"])

    r = run_warm(
        compiled,
        pdd,
        marker,
        extravars={"run_tmp": os.path.join(pdd, "tmp")},
        event_handler=handler,
    )
    assert r.status == "successful", r.stdout.read()
    return messages[0], pdd


def test_two_warm_runs_each_see_their_own_per_run_config(settings, tmp_path):
    workdir = str(tmp_path / "runs")
    first, pdd1 = probe(settings, workdir)
    second, pdd2 = probe(settings, workdir)
    for msg, pdd in ((first, pdd1), (second, pdd2)):
        values = dict(part.split("=", 1) for part in msg.split())
        assert values["ssh"] == os.path.join(pdd, "bin/oj-ssh")
        assert values["tmp"].startswith("ansible-local-")  # made in this run's own dir
        # the worker that ran the task was forked by a child of the controller
        assert controller_pids() == {int(values["up"])}
    assert pdd1 != pdd2


def test_a_warm_run_is_found_by_its_marker_and_killed_with_its_launcher(
    ssh_nodes, settings, tmp_path
):
    node = ssh_nodes.addresses[0]
    compiled = compile_cmd([Host(node, ssh_nodes.conn_vars(node))], "sleep 77", "shell", timeout=60)
    marker = os.urandom(8).hex()
    pdd = rundir.create(
        compiled,
        str(tmp_path / "runs"),
        settings,
        connect_timeout=10,
        runner_settings=runner.RUNNER_SETTINGS,
        marker=marker,
    )
    done = {}

    def go():
        done["r"] = run_warm(compiled, pdd, marker)

    thread = threading.Thread(target=go)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # the launcher, the forked run and its worker with ssh, all marked
            marked = proctree._marked_pids(marker)
            cmds = [proctree._stat(p) for p in marked]
            if sum(b"ssh" in c[1] for c in cmds if c) >= 1 and len(marked) >= 3:
                break
            assert time.monotonic() < deadline, cmds
            time.sleep(0.1)
        launcher = [p for p, c in zip(marked, cmds, strict=True) if c and b"warm_launcher" in c[1]]
        forked = [p for p in marked if proctree._stat(p)[0] in controller_pids()]
        assert len(launcher) == 1 and len(forked) == 1
        os.kill(launcher[0], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while [p for p in proctree._marked_pids(marker) if b"[mux]" not in proctree._stat(p)[1]]:
            assert time.monotonic() < deadline, "the run outlived its launcher"
            time.sleep(0.05)
        thread.join(30)
        assert done["r"].status == "failed"
    finally:
        stop_remote(pdd, settings)
        shutil.rmtree(pdd, ignore_errors=True)
        thread.join(30)


def test_a_dead_controller_is_restarted_and_the_log_says_so(ssh_nodes, settings, tmp_path, caplog):
    node = ssh_nodes.addresses[0]
    step = compile_cmd([Host(node, ssh_nodes.conn_vars(node))], "echo hi", "shell", timeout=20)
    workdir = str(tmp_path / "runs")
    assert runner.execute(step, workdir, settings).status == "ok"
    (controller,) = warm._controllers.values()
    old = controller.proc.pid
    os.kill(old, signal.SIGKILL)
    controller.proc.wait()
    warm._state["said"].discard("ended")
    assert runner.execute(step, workdir, settings).hosts[node].stdout == "hi\n"
    assert old not in controller_pids() and len(controller_pids()) == 1
    assert "the warm Ansible controller ended" in caplog.text


def test_a_run_goes_cold_when_the_controller_cannot_take_it(
    ssh_nodes, settings, tmp_path, monkeypatch
):
    node = ssh_nodes.addresses[0]
    step = compile_cmd([Host(node, ssh_nodes.conn_vars(node))], "echo $PPID", "shell", timeout=20)
    workdir = str(tmp_path / "runs")
    assert runner.execute(step, workdir, settings).status == "ok"
    (controller,) = warm._controllers.values()
    started = len(children(controller.proc.pid))
    monkeypatch.setattr(controller, "socket", str(tmp_path / "nobody-listens"))
    outcome = runner.execute(step, workdir, settings)
    assert outcome.status == "ok" and outcome.hosts[node].stdout.strip().isdigit()
    assert len(children(controller.proc.pid)) == started  # it never forked for that run


def test_warm_runs_leak_no_descriptors_or_zombies(ssh_nodes, settings, tmp_path):
    node = ssh_nodes.addresses[0]
    step = compile_cmd([Host(node, ssh_nodes.conn_vars(node))], "true", "shell", timeout=20)
    workdir = str(tmp_path / "runs")
    runner.execute(step, workdir, settings)
    (pid,) = controller_pids()
    before = (len(os.listdir("/proc/self/fd")), len(os.listdir(f"/proc/{pid}/fd")))
    for _ in range(15):
        assert runner.execute(step, workdir, settings).status == "ok"
    assert (len(os.listdir("/proc/self/fd")), len(os.listdir(f"/proc/{pid}/fd"))) == before
    assert children(pid) == [] and controller_pids() == {pid}


def test_the_warm_path_can_be_turned_off(ssh_nodes, tmp_path):
    """OPSJOB_ANSIBLE_WARM=false: the step starts ansible-playbook itself, no controller."""
    warm._stop_all()  # a warm run would start one now
    settings = Settings(home=str(tmp_path), ansible_warm=False)
    node = ssh_nodes.addresses[0]
    step = compile_cmd([Host(node, ssh_nodes.conn_vars(node))], "echo cold", "shell")
    outcome = runner.execute(step, str(tmp_path / "runs"), settings)
    assert outcome.status == "ok" and outcome.hosts[node].stdout == "cold\n"
    assert controller_pids() == set()
    outcome = runner.execute(step, str(tmp_path / "runs"), Settings(home=str(tmp_path)))
    assert outcome.status == "ok" and len(controller_pids()) == 1  # and on again by default
