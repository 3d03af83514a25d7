"""The private data dir of one step run: ansible.cfg, environment, compiled files, secrets.

Every run gets a fresh directory (ansible-runner's ``env/`` files would otherwise override
later arguments). It is removed after the run; a worker that died leaves its directory to
:func:`sweep_orphans`.
"""

import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from engine.ansible import playbook, streams
from engine.ansible.proctree import MARK
from engine.files import safetree
from engine.playbooks import agent as playbook_agent
from engine.playbooks import broker as playbook_broker

if TYPE_CHECKING:
    from engine.store.settings import Settings

OWNER = "owner.pid"  # the worker process a run dir belongs to
# Beside a contained run's dir: what stopping the run uses (cleanup playbook, inventories,
# ansible.cfg). The sandbox can rewrite its own run dir, and the cleanup runs uncontained.
KEEP = ".keep"
HERE = os.path.dirname(os.path.abspath(__file__))
CONNECTION_PLUGINS = os.path.join(HERE, "connection_plugins")
ACTION_PLUGINS = os.path.join(HERE, "action_plugins")
MARKER = "marker"  # the run's process marker (see engine.ansible.proctree)
SWEEP_LOCK = ".sweep.lock"
INTERNAL_POLL = 0.005  # seconds; Ansible's internal_poll_interval (see ansible_cfg)


def control_path_dir() -> str:
    """A short directory for SSH ControlPath sockets (a socket path has about 100 chars)."""
    return f"/tmp/oj-cp-{os.getuid()}"


def ansible_env(pdd: str, marker: str) -> dict[str, str]:
    """Environment of the ansible-playbook process (added to this process's environment)."""
    bindir = os.path.dirname(sys.executable)
    return {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_CONFIG": os.path.join(pdd, "ansible.cfg"),
        "OPSJOB_STREAM_DIR": os.path.join(pdd, streams.FOLDER),  # see connection_plugins
        MARK: marker,
    }


def ssh_args(settings: "Settings") -> str:
    """The ssh options every run uses: reuse one connection per host, and offer the key
    exchanges the worker is set to (none named: ssh's own)."""
    args = f"-o ControlMaster=auto -o ControlPersist={settings.ssh_control_persist}"
    if settings.ssh_kex_algorithms:
        args += f" -o KexAlgorithms={settings.ssh_kex_algorithms}"
    return args


def ansible_cfg(
    settings: "Settings", pdd: str, connect_timeout: float, contained: bool = False
) -> str:
    """The ansible.cfg of one run: fast and quiet, and nothing read from the user's home.

    A ``contained`` playbook run connects through its broker (engine.playbooks.broker).
    """
    args = ssh_args(settings)
    if contained:
        args += " " + playbook_broker.ssh_options()
    return (
        "[defaults]\n"
        "gathering = explicit\n"
        f"connection_plugins = {CONNECTION_PLUGINS}\n"
        f"action_plugins = {ACTION_PLUGINS}\n"
        f"host_key_checking = {bool(settings.host_key_checking)}\n"
        f"timeout = {int(connect_timeout)}\n"
        "interpreter_python = auto_silent\n"
        "nocolor = true\n"
        "deprecation_warnings = false\n"
        "retry_files_enabled = false\n"
        # How often Ansible's main process looks for finished hosts while it waits: its 1 ms
        # default spends more CPU than the hosts' own work on a short step.
        f"internal_poll_interval = {INTERNAL_POLL}\n"
        f"local_tmp = {os.path.join(pdd, 'tmp')}\n"
        "\n[ssh_connection]\n"
        "pipelining = true\n"
        "usetty = false\n"
        f"ssh_args = {args}\n"
        f"control_path_dir = {control_path_dir()}\n"
        f"ssh_executable = {os.path.join(pdd, streams.WRAPPER)}\n"
    )


def create(
    compiled: playbook.Compiled,
    workdir: str,
    settings: "Settings",
    *,
    connect_timeout: float,
    runner_settings: str,
    marker: str = "",
    contained: bool = False,
) -> str:
    """Make a fresh private data dir under ``workdir`` holding everything ``compiled`` needs.

    A ``contained`` run (a playbook under bubblewrap) gets no key file: its keys are offered
    by its broker's agent, and its inventory names only their public halves."""
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    pdd = tempfile.mkdtemp(prefix="run-", dir=workdir)
    _write_private_file(os.path.join(pdd, MARKER), marker)
    _write_private_file(os.path.join(pdd, OWNER), str(os.getpid()))
    os.makedirs(os.path.join(pdd, "project"), mode=0o700)
    os.makedirs(os.path.join(pdd, "tmp"), mode=0o700)
    files = dict(compiled.files)
    files["project/main.yml"] = compiled.playbook.encode("utf-8")
    files["project/cleanup.yml"] = compiled.cleanup.encode("utf-8")
    files["ansible.cfg"] = ansible_cfg(settings, pdd, connect_timeout, contained).encode("utf-8")
    # runner drops the ``settings`` argument when env/settings is missing, so write the file
    files["env/settings"] = runner_settings.encode("utf-8")
    if streams.WRAPPER not in files:  # a playbook step brings its own
        files[streams.WRAPPER] = streams.ssh_wrapper(os.path.join(pdd, streams.FOLDER)).encode()
    os.makedirs(os.path.join(pdd, streams.FOLDER), mode=0o700)
    _write_files(pdd, files)
    os.chmod(os.path.join(pdd, streams.WRAPPER), 0o700)
    for rel, target in compiled.links.items():
        os.symlink(target, os.path.join(pdd, rel))
    tree = getattr(compiled, "tree", None)
    if tree:  # a playbook step's source, links kept as links
        shutil.copytree(tree, os.path.join(pdd, "project", "src"), symlinks=True)
    _write_secrets(pdd, compiled.secrets, public_only=contained)
    if contained:
        _write_keep(compiled, pdd, settings, connect_timeout)
    return pdd


def _write_keep(
    compiled: playbook.Compiled, pdd: str, settings: "Settings", connect_timeout: float
) -> None:
    """Copy what :func:`cleanup_dir` offers the cleanup to a dir the sandbox does not see."""
    keep = pdd + KEEP
    os.makedirs(os.path.join(keep, "tmp"), mode=0o700)
    files = {
        "project/cleanup.yml": compiled.cleanup.encode("utf-8"),
        "inventory/hosts.yml": compiled.files["inventory/hosts.yml"],
        "ansible.cfg": ansible_cfg(settings, keep, connect_timeout).encode("utf-8"),
    }
    _write_files(keep, files)
    _write_secrets(keep, compiled.secrets, public_only=True)


def _write_files(base: str, files: dict[str, bytes]) -> None:
    """Write ``files`` (path relative to ``base`` -> bytes), making their folders (mode 0700)."""
    for rel, data in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def cleanup_dir(pdd: str) -> str:
    """Where the cleanup of the run of ``pdd`` finds its playbook, inventories and config: the
    run dir itself, or for a contained run the copy beside it that its sandbox never saw."""
    return pdd + KEEP if os.path.isdir(pdd + KEEP) else pdd


def remove(pdd: str) -> None:
    """Remove a run dir and what was kept beside it."""
    shutil.rmtree(pdd, ignore_errors=True)
    shutil.rmtree(pdd + KEEP, ignore_errors=True)


def sweep_orphans(workdir: str, stop: Callable[[str, str], object] | None = None) -> int:
    """Remove run dirs (key files included) left by a worker process that died mid-run.

    ``stop(pdd, marker)`` is called first, to end what is left of the run. Return how many
    were removed. Only this host's processes are checked: ``workdir`` is local. One sweep of
    this host works at a time, so none reports a dir done while another still stops its run.
    """
    if not os.path.isdir(workdir):
        return 0
    lock: int | None
    try:
        lock = os.open(os.path.join(workdir, SWEEP_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        lock = None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _sweep_orphans(workdir, stop)
    finally:
        if lock is not None:
            os.close(lock)


def _sweep_orphans(workdir: str, stop: Callable[[str, str], object] | None) -> int:
    removed = 0
    for name in os.listdir(workdir) if os.path.isdir(workdir) else []:
        pdd = os.path.join(workdir, name)
        try:  # a pulled tree shares this folder: never follow what it may have put there
            with safetree.open_path(os.path.join(pdd, OWNER)) as f:
                pid = int(f.read(32).strip())
        except (OSError, ValueError):
            continue  # not a run dir, or one being created right now
        try:
            os.kill(pid, 0)
            continue  # its worker is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if stop is not None:
            try:
                with safetree.open_path(os.path.join(pdd, MARKER)) as f:
                    marker = f.read(64).decode("ascii", "replace").strip()
            except (OSError, ValueError):
                marker = ""
            stop(pdd, marker)
        remove(pdd)
        removed += 1
    for name in os.listdir(workdir):  # a keep whose run dir is gone (a crash between the two)
        if name.endswith(KEEP) and not os.path.exists(os.path.join(workdir, name[: -len(KEEP)])):
            shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
    return removed


def _write_private_file(path: str, text: str) -> None:
    """Write ``text`` to a new file that only this user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _write_secrets(
    pdd: str, secrets: Sequence[tuple[str, playbook.Secret]], public_only: bool = False
) -> None:
    """Write the credentials of this run's hosts into ``pdd``: one key file per credential and
    an inventory that points the hosts at them (all mode 0600, gone with ``pdd``).
    ``public_only`` writes the public half instead: ssh then takes the key from the agent.

    A host with a credential gets its own SSH master connections (a control path dir per
    credential), so no run ever rides a connection another credential opened.
    """
    if not secrets:
        return
    folder = os.path.join(pdd, "secrets")
    os.makedirs(folder, mode=0o700)
    hostvars: dict[str, dict[str, str]] = {}
    for name, secret in secrets:
        conn = {"ansible_control_path_dir": os.path.join(control_path_dir(), secret.ident)}
        if secret.ssh_key:
            key = os.path.join(folder, secret.ident + (".pub" if public_only else ".key"))
            if not os.path.exists(key):
                _write_private_file(key, _public(secret.ssh_key) if public_only else secret.ssh_key)
            conn["ansible_ssh_private_key_file"] = key
        if secret.become_password:
            conn["ansible_become_password"] = secret.become_password
        hostvars[name] = conn
    # values are written !unsafe: Ansible never templates them
    _write_private_file(_secret_inventory(pdd), playbook.inventory_yaml(hostvars, {}))


def _public(private_key: str) -> str:
    key = playbook_agent.load_key(private_key)
    return playbook_agent.public_line(key) + "\n" if key is not None else ""


def _secret_inventory(pdd: str) -> str:
    return os.path.join(pdd, "inventory", "secrets.yml")


def inventories(pdd: str) -> list[str] | str:
    """The run's inventory sources: the hosts, then their credentials (which win)."""
    main = os.path.join(pdd, "inventory", "hosts.yml")
    secret = _secret_inventory(pdd)
    return [main, secret] if os.path.exists(secret) else main
