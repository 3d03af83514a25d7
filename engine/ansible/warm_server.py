"""The warm Ansible controller: ``ansible-playbook`` with its imports done, forked once per run.

``python -m engine.ansible.warm_server SOCKET DIR OWNER`` waits for launchers
(engine.ansible.warm_launcher). The first request's environment and ansible.cfg become this
controller's own (its copy of the config, with the run dir replaced by DIR), and Ansible is
imported then. Each request forks a child that takes the launcher's streams, environment and
working directory and runs the playbook CLI. Why the child can be trusted with another run:
- Ansible reads ansible.cfg and most ``ANSIBLE_*`` variables once, at import. So a request
  whose environment (per-run variables aside) or whose config (the run dir aside) differs
  from the controller's is refused, and the launcher runs the cold way. The two per-run
  config values (local_tmp, ssh_executable) reach the child through environment variables
  (ANSIBLE_LOCAL_TEMP, ANSIBLE_SSH_EXECUTABLE); the ssh plugin reads its options at run time,
  and the local temp dir is made again in the child.
- No callback plugin is loaded here: ansible-runner's awx_display reads the run's artifact
  dir from the environment when the child loads it.
- engine.ansible.proctree finds a run's processes by its marker in /proc/<pid>/environ, which
  shows the environment a process was started with. The controller is started with a large
  placeholder variable; the child moves the C environment to the heap and writes the run's
  environment over that area, so the child and the Ansible workers it forks carry the marker.
- The launcher lives as long as the run: when its end of the socket closes (runner killed it,
  or anyone did), the child and every process of its run are killed.
The controller ends when its owner (the worker process OWNER) retires it (a line on our stdin)
and its runs ended. When the owner itself dies, however it dies (SIGKILL included: our stdin
closes without that line, and the process is watched through a pidfd too), the controller
kills its runs and ends at once: their tasks are lost with their worker. Either way it
removes its folder as it ends.
"""

import atexit
import ctypes
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import traceback
from collections.abc import Mapping
from typing import Any, cast

from engine.ansible.proctree import MARK, kill_local_tree

ROOM = "OPSJOB_WARM_ROOM"  # the placeholder variable whose space a child's environment takes
# Environment variables that differ between runs; every other one must match the controller's.
PER_RUN = frozenset(
    {
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
        "ANSIBLE_CONFIG",
        "ANSIBLE_LOCAL_TEMP",
        "ANSIBLE_SSH_EXECUTABLE",
        "AWX_ISOLATED_DATA_DIR",
        "OPSJOB_STREAM_DIR",
        "OPSJOB_WARM_SOCKET",
        MARK,
    }
)
RUN_DIR_KEYS = ("local_tmp", "ssh_executable")  # the only config lines naming the run dir
# Settings read at import whose per-run value comes from a PER_RUN variable: read again.
REREAD = ("DEFAULT_LOCAL_TMP", "CACHE_PLUGIN_CONNECTION")
HANDSHAKE_TIMEOUT = 5  # seconds a launcher has to send its request


def normalized_config(path: str) -> str | None:
    """The text of the ansible.cfg at ``path`` with its run dir replaced by ``@RUN@``, or None
    when the run dir appears elsewhere than in RUN_DIR_KEYS (that value would be stale)."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace(os.path.dirname(path), "@RUN@")
    for line in text.splitlines():
        if "@RUN@" in line and line.split("=", 1)[0].strip() not in RUN_DIR_KEYS:
            return None
    return text


def shared_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a run's environment that must be the same for every run of a controller."""
    return {k: v for k, v in env.items() if k not in PER_RUN and k != ROOM}


class Controller:
    def __init__(self, path: str, folder: str, owner: int) -> None:
        self.folder = folder
        self.owner = owner  # a pidfd of the worker process; readable once it ended
        # the environment and config every run must share, from the first run
        self.env: dict[str, str] | None = None
        self.config: str | None = None
        # pid -> (socket to its launcher, marker)
        self.children: dict[int, tuple[socket.socket, str]] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self.listener.bind(path)
        finally:
            os.umask(old)
        self.listener.listen(64)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> None:
        """Serve launchers until retired with no run left, or until the worker died; then
        remove our folder (on an error it stays: the worker logs our log's tail)."""
        self.loop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def loop(self) -> None:
        owner = True
        while owner or self.children:
            watched = [self.wake_r, self.owner, *(c.fileno() for c, _ in self.children.values())]
            if owner:
                watched += [0, self.listener.fileno()]
            ready, _, _ = select.select(watched, [], [])
            if 0 in ready:
                if not os.read(0, 4096):  # closed without a word: the worker died
                    ready.append(self.owner)
                owner = False  # the worker retires us: take no new run, let these end
                self.listener.close()
            if self.owner in ready:
                self.abandon()
                return
            if owner and self.listener.fileno() in ready:
                self.accept()
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
            self.reap()
            for pid, (conn, marker) in list(self.children.items()):
                if conn.fileno() in ready and not conn.recv(4096):
                    self.kill(pid, marker)  # the launcher is gone: so is its run

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            msg, anc, _, _ = conn.recvmsg(8, socket.CMSG_SPACE(3 * 4))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) // 4 * 4])
            (size,) = struct.unpack("!Q", msg)
            body = b""
            while len(body) < size:
                chunk = conn.recv(min(size - len(body), 1 << 20))
                if not chunk:
                    raise OSError("the launcher closed its request early")
                body += chunk
            request = json.loads(body)
            conn.settimeout(None)
            if len(fds) != 3:
                raise OSError("the launcher sent no standard streams")
            self.start(conn, fds, request)
        except Exception as e:  # the launcher sees its socket close and runs cold
            self.note(f"request failed: {e}")
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)

    def start(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        env = request["env"]
        why = self.refusal(env)
        if why:
            self.note(why)
            conn.sendall(b"cold\n")
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = self.child(conn, fds, request)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[pid] = (conn, env.get(MARK, ""))

    def refusal(self, env: dict[str, str]) -> str:
        """Why a run with ``env`` cannot run here ("" when it can); adopt the first one."""
        if not env.get(MARK) or "ANSIBLE_CONFIG" not in env:
            return "no run marker or config"
        if not {"ANSIBLE_LOCAL_TEMP", "ANSIBLE_SSH_EXECUTABLE"} <= env.keys():
            return "the per-run config values are not in the environment"
        config = normalized_config(env["ANSIBLE_CONFIG"])
        if config is None:
            return "ansible.cfg names the run dir in a value read only at start"
        if self.env is None:
            self.adopt(shared_env(env), config)
        if shared_env(env) != self.env:
            adopted = cast(dict[str, str], self.env)  # set by adopt() above
            changed = sorted(set(shared_env(env).items()) ^ set(adopted.items()))
            return f"environment differs: {', '.join(sorted({k for k, _ in changed}))}"
        if config != self.config:
            return "ansible.cfg differs"
        return ""

    def adopt(self, env: dict[str, str], config: str) -> None:
        """Take the first run's environment and config as ours, and import Ansible."""
        cfg = os.path.join(self.folder, "ansible.cfg")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(config.replace("@RUN@", self.folder))
        os.makedirs(os.path.join(self.folder, "tmp"), mode=0o700, exist_ok=True)
        os.environ.clear()
        os.environ.update(env, ANSIBLE_CONFIG=cfg)
        try:
            import ansible.cli.playbook  # noqa: F401  (the point of this process)

            if any("awx_display" in name for name in sys.modules):
                raise RuntimeError("a callback plugin was loaded in the warm controller")
        except BaseException as e:  # half an import is no controller: end, be restarted
            self.note(f"importing Ansible failed: {e!r}")
            raise SystemExit(1) from None
        prime()
        self.env, self.config = env, config

    def child(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> int:
        """Become ansible-playbook for one run; return its exit status."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        self.listener.close()
        for fd in (self.wake_r, self.wake_w, self.owner):
            os.close(fd)
        for other, _ in self.children.values():
            other.close()
        env = request["env"]
        os.environ.clear()
        os.environ.update(env)
        if not take_proc_environ(env):
            conn.sendall(b"cold\n")
            return 0
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:
            os.close(fd)
        os.chdir(request["cwd"])
        for stream in (sys.stdout, sys.stderr):
            cast(io.TextIOWrapper, stream).reconfigure(line_buffering=True)
        atexit._clear()  # the controller's exit handlers are not this run's
        from ansible import constants as C

        for name in REREAD:
            setattr(C, name, C.config.get_config_value(name))
        conn.sendall(f"run {os.getpid()}\n".encode())
        conn.close()
        sys.argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
        sys.argv += request["argv"]
        from ansible.cli.playbook import main

        try:
            main(list(sys.argv))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        return code

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn, _ = self.children.pop(pid, (None, None))
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                reply = f"signal {os.WTERMSIG(status)}\n"
            else:
                reply = f"exit {os.waitstatus_to_exitcode(status)}\n"
            try:
                conn.sendall(reply.encode())
            except OSError:
                pass
            conn.close()

    def abandon(self) -> None:
        """The worker died: end its runs (their tasks are lost with it)."""
        for pid, (conn, marker) in list(self.children.items()):
            self.kill(pid, marker)
            conn.close()
        self.children.clear()
        self.listener.close()

    def kill(self, pid: int, marker: str) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if marker:
            kill_local_tree(marker)

    def note(self, text: str) -> None:
        """Say why a run went the cold way (the worker logs the first such note)."""
        with open(os.path.join(self.folder, "cold.txt"), "a", encoding="utf-8") as f:
            f.write(text + "\n")


# Plugins every cmd or scp run loads; loading them here parses their documentation once.
# Vars plugins are left out: their loader caches what ``get`` returns (here a class).
PRIMED = {
    "connection": ("ssh", "local"),
    "shell": ("sh",),
    "become": ("sudo",),
    "action": ("opsjob_node", "raw"),  # what cmd and scp steps and their cleanup run
    "strategy": ("linear",),
    "inventory": ("host_list", "script", "auto", "yaml", "ini", "toml"),
    "cache": ("memory", "jsonfile"),
}
ALL_LOADED = ("connection", "shell", "become")  # as ansible's PlaybookExecutor.run loads them


def prime() -> None:
    """Set up the collection loader and load the common plugins (never a callback plugin:
    those read the run's environment when loaded). A failure here only costs speed."""
    import warnings

    from ansible.plugins import loader

    loader.init_plugin_loader([])
    # the CLI of each run sets it up again and finds it done: that is expected here
    warnings.filterwarnings("ignore", message="AnsibleCollectionFinder has already been")
    for kind, names in PRIMED.items():
        for name in names:
            try:
                getattr(loader, f"{kind}_loader").get(name, class_only=True)
            except Exception as e:
                print(f"priming {kind} plugin {name} failed: {e!r}", file=sys.stderr)
    # Every playbook run starts by loading all of these (to know their settings): about a
    # tenth of a second of documentation parsing per run unless it was done here.
    for kind in ALL_LOADED:
        try:
            list(getattr(loader, f"{kind}_loader").all(class_only=True))
        except Exception as e:
            print(f"priming the {kind} plugins failed: {e!r}", file=sys.stderr)


def take_proc_environ(env: Mapping[str, str]) -> bool:
    """Write ``env`` over the environment area this process was started with, so that
    /proc/<pid>/environ shows it (in this process and in those it forks). Return False when
    it does not fit. ``os.environ`` must already hold ``env``: the C environment then lives
    on the heap, and nothing points into the old area any more."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51)
    data = b"".join(os.fsencode(k) + b"=" + os.fsencode(v) + b"\0" for k, v in env.items())
    if not start or len(data) > end - start:
        return False
    ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)
    return True


def watch_owner(pid: int, folder: str) -> int:
    """A pidfd of our parent, worker process ``pid``. When it is gone already, remove our
    folder and exit."""
    try:
        fd = os.pidfd_open(pid)
        if os.getppid() == pid:  # else it died before the pidfd was open, and the pid was reused
            return fd
    except ProcessLookupError:
        pass
    shutil.rmtree(folder, ignore_errors=True)
    sys.exit("the worker that started this controller is gone")


def main(argv: list[str]) -> None:
    path, folder, owner = argv
    if ROOM not in os.environ:
        sys.exit("the warm controller needs its placeholder environment")
    Controller(path, folder, watch_owner(int(owner), folder)).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
