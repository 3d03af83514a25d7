"""Run one compiled step through ansible-runner: the only module that calls ``ansible_runner``.

``execute()`` writes the compiled files into a fresh private data dir, runs the playbook,
turns runner events into per-host results and log chunks, cancels promptly, and removes the
private data dir afterwards.

Why it is built this way (each point was reproduced on ansible-core 2.19 / runner 2.4.3):
- ``ansible-playbook`` must be on PATH for the runner process, so the venv's bin dir goes first.
- Files runner writes under ``env/`` on a first call override later arguments, so every run gets
  a fresh directory and ``suppress_env_files=True``.
- Without ``cancel_callback`` runner replaces the process's SIGTERM/SIGINT handlers for good,
  so one is always passed.
- Runner drops its ``settings`` argument when ``env/settings`` is missing, and would then look at
  the cancel callback only every 5 s; so the settings go into that file of the fresh directory.
- Runner's cancel kills only the process group of ``ansible-playbook``; its workers live in
  their own sessions and go on. A cancel therefore kills every local process that carries this
  run's marker in its environment, and then runs the cleanup playbook that kills the remote
  process groups (the remote commands run without a tty and would survive otherwise).
- Any other error of the run (a full disk, a failing callback, Ansible ending oddly) is
  handled like a cancel: the nodes' process groups are killed before the step is judged, and
  hosts without a result are ``unknown`` (they may have run the command). The cleanup runs
  ``ansible-playbook`` directly with its output discarded, so it needs no disk space.
- A full disk under the run dir is such an error as soon as it is seen (at each cancel poll):
  Ansible's callback cannot write its events any more, so the hosts' results would be lost
  (it only warns), and the error would surface at the end, after the nodes finished.
"""

import logging
import os
import shlex
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from engine.ansible import playbook, proctree, rundir, streams, warm
from engine.ansible.forks import choose as choose_forks
from engine.ansible.leftovers import stop_remote
from engine.ansible.playbook import Compiled
from engine.ansible.results import HostResult, RunOutcome, _Collector, excerpt
from engine.files import safetree

if TYPE_CHECKING:
    from engine.playbooks.broker import Broker
    from engine.store.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10  # seconds for an SSH connection to a node
POLL = 0.2  # seconds between two looks at the cancel flag
# Seconds a host prints before its output is followed line by line: a host that ends sooner
# has its output logged once, whole, with its result.
LIVE_AFTER = 1.0
DISK_RESERVE = 256 * 1024  # bytes a run needs free on the run dir's disk to record its events
TAIL_BYTES = 64 * 1024  # of ansible-playbook's output read to explain an error
RUNNER_SETTINGS = f'{{"pexpect_timeout": {POLL}, "suppress_ansible_output": true}}\n'

# ---------------------------------------------------------------------------------------------
# The run


def execute(
    compiled: Compiled,
    workdir: str,
    settings: "Settings",
    *,
    on_host_result: Callable[[HostResult], object] | None = None,
    on_log: Callable[[str], object] | None = None,
    should_cancel: Callable[[], object] | None = None,
    on_output: Callable[[str, str], object] | None = None,
    forks: int | None = None,
) -> RunOutcome:
    """Run ``compiled`` (from engine.ansible.playbook) and return a :class:`RunOutcome`.

    ``workdir`` is where the private data dir is made (and removed afterwards); ``settings``
    an :class:`engine.store.settings.Settings`. ``on_host_result(HostResult)`` is called as each
    target host finishes, ``on_log(text)`` with the Ansible output in order, and
    ``should_cancel()`` is polled about five times a second: once it returns true the run is
    stopped locally and on the nodes, and the outcome is ``canceled``. Errors of Ansible or
    ansible-runner never escape: they give an ``error`` outcome. ``on_output(host, lines)``
    gets what a cmd step's hosts print while they run, once they have run LIVE_AFTER s.
    ``forks`` caps the hosts run at once (a step's own cap; None: the worker's choice, see
    engine.ansible.forks).
    """
    started = time.time()
    marker = uuid.uuid4().hex
    collector = _collector(compiled)(compiled, on_host_result, on_log)
    state: dict[str, Any] = {"cancel": False, "callback_error": ""}

    def event_handler(event: dict[str, Any]) -> bool:
        try:
            collector.handle(event)
        except Exception as exc:  # a caller's callback failed: stop the run, report it
            log.exception("step run %s: event callback failed", compiled.run_id)
            state["callback_error"] = state["callback_error"] or f"callback failed: {exc}"
            # keep following the hosts (the cleanup needs them), without the callbacks
            collector.on_log = collector.on_host_result = None
        return False  # keep events off the disk; we hold what we need

    def cancel_callback() -> bool:
        _follow(state.get("follow"), collector, on_output)
        if not state["cancel"]:
            try:
                state["cancel"] = bool(should_cancel and should_cancel())
            except Exception as exc:
                log.exception("step run %s: cancel check failed", compiled.run_id)
                state["callback_error"] = f"cancel check failed: {exc}"
            if not state["callback_error"] and _disk_full(workdir):
                # Ansible would lose the hosts' results (it cannot write its events): stop now
                # rather than let the nodes finish work whose outcome cannot be recorded.
                state["callback_error"] = f"[Errno 28] No space left on device: {workdir}"
            if state["callback_error"]:
                state["cancel"] = True
            if state["cancel"]:
                proctree.stop_child(marker)
                proctree.kill_local_tree(marker)
        return state["cancel"]

    hosts = set(compiled.targets) | ({compiled.source} if compiled.source else set())
    forks = choose_forks(len(hosts), int(settings.ansible_forks), forks or 0)
    rounds = -(-len(hosts) // forks)
    per_task = compiled.timeout + playbook.KILL_AFTER + playbook.TASK_GRACE + CONNECT_TIMEOUT
    job_timeout = (rounds * playbook.TASKS_PER_HOST[compiled.kind] + 1) * per_task + 60
    if compiled.kind == "playbook":  # the step's timeout bounds the whole playbook
        job_timeout = compiled.timeout + CONNECT_TIMEOUT
    pdd: str | None
    broker: Broker | None
    pdd = broker = None
    contained = _contained(compiled)
    status: str | None
    error, status, timed_out, launched = "", None, False, False
    try:
        pdd = rundir.create(
            compiled,
            workdir,
            settings,
            connect_timeout=CONNECT_TIMEOUT,
            runner_settings=RUNNER_SETTINGS,
            marker=marker,
            contained=contained,
        )
        if contained:
            broker = _start_broker(compiled, pdd)
            collector.refused = broker.refused  # the hosts fail if the playbook reached out
        if on_output is not None and compiled.kind == "cmd":
            state["follow"] = streams.StreamReader(
                os.path.join(pdd, streams.FOLDER), compiled.targets, after=LIVE_AFTER
            )
        envvars = rundir.ansible_env(pdd, marker)
        options = _playbook_options(compiled, settings, pdd) or (
            warm.runner_options(compiled, pdd, envvars) if settings.ansible_warm else {}
        )
        envvars = options.pop("envvars", envvars)
        launched = True
        runner = _run_playbook(
            compiled,
            pdd,
            envvars,
            forks=forks,
            **options,
            timeout=job_timeout,
            event_handler=event_handler,
            cancel_callback=cancel_callback,
        )
        timed_out = runner.status == "timeout"
        if state["callback_error"]:
            error = state["callback_error"]
        elif state["cancel"]:
            status = "canceled"
        elif timed_out:
            error = f"Ansible did not finish within {job_timeout} s"
        elif runner.status not in ("successful", "failed") or not collector.any_result():
            error = f"ansible-playbook ended {runner.status} (rc {runner.rc}): {_tail(pdd)}"
    except Exception as exc:
        log.exception("step run %s failed", compiled.run_id)
        error = f"ansible-runner failed: {exc}"
    cleanup_seconds = 0.0
    try:
        # Runner only kills ansible-playbook itself; its workers live in their own sessions.
        proctree.kill_local_tree(marker)
        touched = sorted(collector.started_hosts)
        if error and launched:  # events may have been lost: any host may have started
            touched = sorted(hosts)
        if (state["cancel"] or timed_out or error) and launched and touched:
            t0 = time.monotonic()
            agent = broker.agent_path() if broker is not None else None
            stop_remote(cast(str, pdd), settings, touched, agent=agent)
            cleanup_seconds = time.monotonic() - t0
    finally:
        if broker is not None:
            broker.close()
        if pdd is not None:
            rundir.remove(pdd)
    if status == "canceled":
        pending = "canceled"
    elif timed_out:
        pending = "timeout"
    else:
        pending = "unknown" if error and launched else "failed"
    collector.settle(pending, error)
    if error:
        status = "error"
    elif status is None:
        all_ok = all(r.status == "ok" for r in collector.hosts.values())
        status = "ok" if all_ok else "failed"
    return RunOutcome(
        status=status,
        hosts=collector.hosts,
        source=collector.source,
        error=error,
        started=started,
        ended=time.time(),
        cleanup_seconds=cleanup_seconds,
    )


def _collector(compiled: Compiled) -> type[Any]:
    if compiled.kind == "playbook":
        from engine.playbooks.events import PlaybookCollector

        return PlaybookCollector
    return _Collector


def _contained(compiled: Compiled) -> bool:
    """Whether ``compiled`` runs under bubblewrap, with a broker as its only way out."""
    if compiled.kind != "playbook":
        return False
    from engine.playbooks import sandbox as playbook_sandbox

    return playbook_sandbox.contained()


def _start_broker(compiled: Compiled, pdd: str) -> "Broker":
    from engine.playbooks import broker as playbook_broker

    keys = [(secret.ssh_key, secret.ident) for _, secret in compiled.secrets if secret.ssh_key]
    return playbook_broker.start(pdd, compiled.reach, keys)


def _playbook_options(compiled: Compiled, settings: "Settings", pdd: str) -> dict[str, Any]:
    """A playbook step's own arguments, and its containment (engine.playbooks.sandbox)."""
    if compiled.kind != "playbook":
        return {}
    from engine.playbooks import sandbox as playbook_sandbox

    contained = playbook_sandbox.runner_options(settings, pdd, network=compiled.network)
    return {"cmdline": shlex.join(compiled.args), **contained}


def _run_playbook(compiled: Compiled, pdd: str, envvars: dict[str, str], **options: Any) -> Any:
    """Run ``compiled``'s playbook in its private data dir ``pdd`` through ansible-runner, as
    every run here does (fresh env files, quiet); ``options`` add to runner's arguments."""
    import ansible_runner  # here, so that the API process never pays for it

    return ansible_runner.run(
        private_data_dir=pdd,
        playbook=compiled.entry,
        ident="main",
        inventory=rundir.inventories(pdd),
        envvars=envvars,
        suppress_env_files=True,
        quiet=True,
        **options,
    )


def syntax_check(compiled: Compiled, workdir: str, settings: "Settings") -> str:
    """Run ``ansible-playbook --syntax-check`` for a compiled playbook step (touches no node);
    return "" when it passes, else Ansible's complaint."""
    pdd = rundir.create(
        compiled,
        workdir,
        settings,
        connect_timeout=CONNECT_TIMEOUT,
        runner_settings=RUNNER_SETTINGS,
        contained=_contained(compiled),
    )
    try:
        runner = _run_playbook(
            compiled,
            pdd,
            rundir.ansible_env(pdd, uuid.uuid4().hex),
            timeout=120,
            **_playbook_options(compiled, settings, pdd),
        )
        if runner.status == "successful":
            return ""
        return f"syntax check failed: {_tail(pdd) or runner.status}"
    finally:
        rundir.remove(pdd)


def _follow(reader: streams.StreamReader | None, collector: Any, on_output: Any) -> None:
    """Hand on the lines the running hosts printed since the last call (see LIVE_AFTER)."""
    if reader is None:
        return
    try:
        for host, text in reader.poll(list(collector.running)):
            on_output(host, text)
    except Exception:  # following is a courtesy: never let it stop the run
        log.exception("following the output of a step failed")


def _disk_full(path: str) -> bool:
    """Whether the file system of ``path`` has less than DISK_RESERVE bytes left for us."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return free * st.f_frsize < DISK_RESERVE


def _tail(pdd: str) -> str:
    """The end of what ansible-playbook printed. A contained playbook may have replaced any
    part of the run dir's path with a link, so none is followed."""
    try:
        with safetree.open_file(pdd, "artifacts/main/stdout") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL_BYTES))
            text = f.read(TAIL_BYTES).decode("utf-8", "replace")
    except (OSError, safetree.Unsafe):
        return ""
    return excerpt(text.replace("\r\n", "\n").strip(), 2000)
