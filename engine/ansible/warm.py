"""The warm path of a step run: ``ansible-playbook`` forked from a controller that has
Ansible imported already, still started and watched by ansible-runner.

Runner starts engine.ansible.warm_launcher instead of ``ansible-playbook`` (its ``binary``);
the launcher hands the run to this worker process's controller (engine.ansible.warm_server)
and relays its exit status. A controller serves one configuration: one per ansible.cfg (the
run dir aside) and environment, started on first use. A controller that ended is started
again at the next run; when it cannot be started the runs go the cold way, and the log says
so once. The launcher itself runs cold whenever the controller cannot take its run.
Playbook steps always run cold: their containment (engine.playbooks.sandbox) wraps
the ``ansible-playbook`` process in bubblewrap, which a forked controller child cannot honour.
"""

import atexit
import hashlib
import itertools
import logging
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from engine.ansible import streams
from engine.ansible.warm_launcher import SOCKET
from engine.ansible.warm_server import PER_RUN, ROOM

if TYPE_CHECKING:
    from engine.ansible.playbook import Compiled

log = logging.getLogger(__name__)

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "warm_launcher.py")
ROOM_SIZE = 64 * 1024  # bytes of environment a run may have on the warm path
START_WAIT = 5.0  # seconds a new controller has to listen
MAX_FAILURES = 3  # controllers that failed to start before this process stops trying

_lock = threading.Lock()
_controllers: dict[Any, "_Controller"] = {}
_state: dict[str, Any] = {"failures": 0, "said": set(), "swept": False}
_serial = itertools.count(1)  # a new folder for each controller: a retired one may still run


def runner_options(compiled: "Compiled", pdd: str, envvars: Mapping[str, str]) -> dict[str, Any]:
    """ansible-runner arguments that run ``compiled`` the warm way (``binary``, ``cmdline``
    and ``envvars``), or {} for the cold way (settings.ansible_warm decides whether to ask)."""
    if compiled.kind == "playbook":
        return {}
    try:
        key = _key(pdd, envvars)
        with _lock:
            controller = _controller(key)
    except Exception:
        log.exception("the warm Ansible controller failed; steps run the cold way")
        return {}
    if controller is None:
        return {}
    controller.check_notes()
    env = {
        **envvars,
        SOCKET: controller.socket,
        "ANSIBLE_LOCAL_TEMP": os.path.join(pdd, "tmp"),
        "ANSIBLE_SSH_EXECUTABLE": os.path.join(pdd, streams.WRAPPER),
    }
    args = ["-I", "-S", LAUNCHER, compiled.entry]
    return {"binary": sys.executable, "cmdline": shlex.join(args), "envvars": env}


def _key(pdd: str, envvars: Mapping[str, str]) -> str:
    """Which controller serves a run: its ansible.cfg (run dir aside) and shared environment."""
    digest = hashlib.sha256()
    with open(os.path.join(pdd, "ansible.cfg"), "rb") as f:
        digest.update(f.read().replace(os.fsencode(pdd), b"@RUN@"))
    env = {**os.environ, **envvars}
    for k in sorted(env):
        if k not in PER_RUN:
            digest.update(f"{k}={env[k]}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _say_once(what: str, text: str, *args: object) -> None:
    if what not in _state["said"]:
        _state["said"].add(what)
        log.warning(text, *args)


def _controller(key: str) -> "_Controller | None":
    """The live controller for ``key``, started when needed; None: go cold."""
    controller = _controllers.get(key)
    if controller is not None and controller.alive():
        return controller
    if controller is not None:
        _say_once(
            "ended",
            "the warm Ansible controller ended (%s); starting it again",
            controller.exit_text(),
        )
        controller.stop()
        del _controllers[key]
    if _state["failures"] >= MAX_FAILURES:
        return None
    for other in list(_controllers):  # one configuration at a time: retire the old one
        _controllers.pop(other).stop()
    if not _state["swept"]:
        _state["swept"] = True
        sweep_stale()
    try:
        controller = _Controller(key)
    except Exception as e:
        _state["failures"] += 1
        _say_once("start", "the warm Ansible controller did not start (%s); running cold", e)
        return None
    _controllers[key] = controller
    return controller


def _base() -> str:
    return f"/tmp/oj-warm-{os.getuid()}"  # short: a socket path has about 100 chars


def sweep_stale() -> int:
    """Remove the folders of controllers whose worker process is gone (a controller removes
    its own when its worker dies; this catches one that was killed too). Return how many."""
    removed = 0
    base = _base()
    for name in os.listdir(base) if os.path.isdir(base) else []:
        pid = name.split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed += 1
    return removed


class _Controller:
    """One controller process of this worker process, and its folder."""

    def __init__(self, key: str) -> None:
        os.makedirs(_base(), mode=0o700, exist_ok=True)
        self.folder = os.path.join(_base(), f"{os.getpid()}-{key}-{next(_serial)}")
        shutil.rmtree(self.folder, ignore_errors=True)
        os.makedirs(self.folder, mode=0o700)
        self.socket = os.path.join(self.folder, "s")
        self.notes = os.path.join(self.folder, "cold.txt")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {k: v for k, v in os.environ.items() if k not in PER_RUN}
        env.update({ROOM: "x" * ROOM_SIZE, "PYTHONPATH": root})
        with open(os.path.join(self.folder, "controller.log"), "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "engine.ansible.warm_server",
                    self.socket,
                    self.folder,
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,  # closed: take no new run (see stop)
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_WAIT
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(self.exit_text())
            time.sleep(0.005)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_text(self) -> str:
        rc = self.proc.poll()
        try:
            with open(os.path.join(self.folder, "controller.log"), "rb") as f:
                tail = f.read()[-300:].decode("utf-8", "replace").strip()
        except OSError:
            tail = ""
        return f"rc {rc}" + (f": {tail}" if tail else "")

    def check_notes(self) -> None:
        """Log, once, why a run went the cold way."""
        if "cold" not in _state["said"] and os.path.exists(self.notes):
            with open(self.notes, encoding="utf-8", errors="replace") as f:
                _say_once("cold", "a step ran the cold way: %s", f.readline().strip())

    def stop(self) -> None:
        """Let the controller end once its runs did (it takes no new one)."""
        try:
            stdin = cast(IO[bytes], self.proc.stdin)  # started with stdin=PIPE
            stdin.write(b"retire\n")  # closed without it, the worker died
            stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            threading.Thread(target=self._reap, daemon=True).start()
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _reap(self) -> None:
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@atexit.register
def _stop_all() -> None:
    with _lock:
        for key in list(_controllers):
            _controllers.pop(key).stop()
