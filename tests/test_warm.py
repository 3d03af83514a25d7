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
from tests.cluster import Cluster

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


def warm_controller_of(worker_pid):
    """The pid of the warm controller a worker process started (None: none runs)."""
    kids = []
    for tid in os.listdir(f"/proc/{worker_pid}/task"):  # a thread of the worker started it
        with open(f"/proc/{worker_pid}/task/{tid}/children") as f:
            kids += [int(p) for p in f.read().split()]
    for pid in kids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"engine.ansible.warm_server" in f.read():
                return pid
    return None


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def local_cluster():
    """A served deployment whose project 1 has one machine, the worker host (local)."""
    c = Cluster(None, lease=60)
    try:
        c.run("project", "add", "1", "warm")
        c.serve()
        local = {"name": "here::127.0.0.1", "hostvars": {"ansible_connection": "local"}}
        c.ok("POST", "/nodelist/1", local)
        yield c
    finally:
        c.close()


def start_sleep(cluster, seconds):
    """Start a cmd task sleeping ``seconds`` on the worker host; wait until it runs."""
    body = {"node_type": "builtin", "node_cont": "here", "scripts_type": "shell"}
    uuid = cluster.ok("POST", "/task/1/plugin_cmd", {**body, "scripts_cont": f"sleep {seconds}"})
    cluster.wait(1, uuid["data"]["uuid"], statuses=("running",))


def doomed_worker_with_controller(cluster, name, seconds):
    """A worker running a warm step; return (its pid, its controller's pid, the folder)."""
    wpid = cluster.worker(name).pid
    start_sleep(cluster, seconds)
    deadline = time.monotonic() + 30
    while (controller := warm_controller_of(wpid)) is None:
        assert time.monotonic() < deadline, "the worker started no warm controller"
        time.sleep(0.1)
    while not sleepers(seconds):  # the run is under way
        assert time.monotonic() < deadline, "the step did not start"
        time.sleep(0.1)
    base = f"/tmp/oj-warm-{os.getuid()}"
    (folder,) = [os.path.join(base, n) for n in os.listdir(base) if n.startswith(f"{wpid}-")]
    return wpid, controller, folder


def test_a_killed_worker_takes_its_warm_controller_and_its_runs_with_it(local_cluster):
    seconds = 900 + int.from_bytes(os.urandom(2)) % 99
    _, controller, folder = doomed_worker_with_controller(local_cluster, "doomed", seconds)
    local_cluster.stop("doomed", sig=signal.SIGKILL)  # its process group: not the controller's
    deadline = time.monotonic() + 10
    while not gone(controller) or os.path.exists(folder) or sleepers(seconds):
        assert time.monotonic() < deadline, (gone(controller), folder, sleepers(seconds))
        time.sleep(0.05)


def test_the_sweep_removes_the_folder_of_a_controller_killed_with_its_worker(local_cluster):
    seconds = 900 + int.from_bytes(os.urandom(2)) % 99
    wpid, controller, folder = doomed_worker_with_controller(local_cluster, "doomed", seconds)
    os.kill(controller, signal.SIGKILL)  # both at once: the controller cannot tidy up
    local_cluster.stop("doomed", sig=signal.SIGKILL)
    assert os.path.isdir(folder)
    local_cluster.worker()  # its sweep, within seconds of its start
    deadline = time.monotonic() + 15
    while os.path.exists(folder):
        assert time.monotonic() < deadline, "the new worker's sweep left the dead one's folder"
        time.sleep(0.1)
    deadline = time.monotonic() + 15
    while sleepers(seconds):  # and ended what was left of the dead worker's run
        assert time.monotonic() < deadline, sleepers(seconds)
        time.sleep(0.1)


def sleepers(seconds):
    """Pids of ``sleep <seconds>`` processes on this host."""
    out = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if f.read() == f"sleep\0{seconds}\0".encode():
                    out.append(int(name))
        except (OSError, ValueError):
            pass
    return out
