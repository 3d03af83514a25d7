"""Real SSH nodes on loopback for tests and benchmarks.

Each node is its own loopback address (127.0.0.2 ... 127.0.0.253, then 127.0.1.2 ...
127.0.1.253 and so on: 252 a block, up to 64,512 nodes; 127.0.0.254 is the dead address)
served by private ``sshd`` processes (one per 16 addresses, the most one sshd can listen on)
with their own host key, authorized key and pid file under a temporary directory. The nodes
accept the login user (root) with the client key, and that user can become the local account
``opsdeploy`` through sudo without a password.

In pytest, use the session fixture ``ssh_nodes``. Outside pytest, call ``start_nodes(count)``
or run ``python -m tests.sshnodes --count 50``, which prints the nodes as JSON and serves them
until interrupted.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
LOGIN_USER = "root"
BECOME_USER = "opsdeploy"
DEAD_ADDRESS = "127.0.0.254"
MAX_LISTEN = 16  # sshd's MAX_LISTEN_SOCKS
SUDOERS_DROPIN = "/etc/sudoers.d/opsjob-tests"


PER_BLOCK = 252  # node addresses in each 127.0.<block>.0/24: .2 to .253
BLOCKS = 256


def _address(index):
    """The loopback address of node ``index`` (0-based): 127.0.0.2 to 127.0.0.253, then
    127.0.1.2 to 127.0.1.253, ... (.0, .1, .254 and .255 of every block are left out, so the
    dead address 127.0.0.254 is never a node)."""
    if not 0 <= index < PER_BLOCK * BLOCKS:
        raise ValueError(f"at most {PER_BLOCK * BLOCKS} loopback nodes")
    block, offset = divmod(index, PER_BLOCK)
    return f"127.0.{block}.{offset + 2}"


def _port_free(address, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def _free_port(addresses):
    """Pick a port that is free on every address (and on the dead address)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if all(_port_free(a, port) for a in [*addresses, DEAD_ADDRESS]):
            return port
    raise RuntimeError("no port is free on every loopback node address")


def _run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def ensure_sudo():
    """Install Debian's sudo when it is missing."""
    if shutil.which("sudo"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "sudo"]
    if subprocess.run(install, check=False, env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        _run(install, env=env)


def ensure_become_user():
    """Create the ``opsdeploy`` account (idempotent) and let the login user sudo to it."""
    ensure_sudo()
    if subprocess.run(["id", "-u", BECOME_USER], check=False, capture_output=True).returncode:
        _run(["useradd", "-m", "-s", "/bin/bash", BECOME_USER])
    # A fresh account is locked ("!"); sshd and sudo accept "*" (no password login).
    _run(["usermod", "-p", "*", BECOME_USER])
    rule = f"Defaults:{LOGIN_USER} !requiretty\n{LOGIN_USER} ALL=({BECOME_USER}) NOPASSWD: ALL\n"
    try:
        with open(SUDOERS_DROPIN) as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current != rule:
        tmp = SUDOERS_DROPIN + ".new"
        with open(tmp, "w") as f:
            f.write(rule)
        os.chmod(tmp, 0o440)
        _run(["visudo", "-cf", tmp])
        os.replace(tmp, SUDOERS_DROPIN)


def _children(pid):
    """Direct children of ``pid``, read from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


class SshNodes:
    """A set of loopback SSH nodes served by private sshd processes."""

    user = LOGIN_USER
    become_user = BECOME_USER
    dead = DEAD_ADDRESS

    def __init__(self, workdir=None, rc_files=False, log_level="ERROR", path=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="opsjob-sshd-")
        self.rc_files = rc_files
        self.path = path  # the PATH of every session (None: sshd's default)
        self.log_level = log_level  # VERBOSE logs each session a command or sftp starts
        os.chmod(self.dir, 0o711)  # other accounts must reach the authorized keys file
        self.addresses = []
        self.port = None
        self._daemons = []  # (Popen, config path)
        self.key_path = os.path.join(self.dir, "client_key")
        self._host_key = os.path.join(self.dir, "host_key")
        self._authorized = os.path.join(self.dir, "authorized_keys")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self._host_key])
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key_path])
        shutil.copyfile(self.key_path + ".pub", self._authorized)
        os.chmod(self._authorized, 0o644)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir

    def ensure(self, count):
        """Make sure at least ``count`` nodes run; return the first ``count`` addresses."""
        wanted = [_address(i) for i in range(len(self.addresses), count)]
        if self.port is None:
            self.port = _free_port(wanted)
        elif not all(_port_free(a, self.port) for a in wanted):
            raise RuntimeError(f"port {self.port} is taken on a new node address")
        for start in range(0, len(wanted), MAX_LISTEN):
            self._start_sshd(wanted[start : start + MAX_LISTEN])
        return self.addresses[:count]

    def _start_sshd(self, addresses):
        n = len(self._daemons)
        config = os.path.join(self.dir, f"sshd_{n}.conf")
        lines = [
            f"Port {self.port}",
            *[f"ListenAddress {a}" for a in addresses],
            f"HostKey {self._host_key}",
            f"PidFile {os.path.join(self.dir, f'sshd_{n}.pid')}",
            f"AuthorizedKeysFile {self._authorized}",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "MaxStartups 200:30:400",
            "MaxSessions 100",
            f"LogLevel {self.log_level}",
        ]
        if self.rc_files and os.path.exists(SFTP_SERVER):
            lines.append(f"Subsystem sftp {SFTP_SERVER}")  # Debian's own: through the shell
        else:
            lines.append("Subsystem sftp internal-sftp")
        env = [f"PATH={self.path}"] if self.path else []
        if not self.rc_files:
            # bash sources ~/.bashrc for a command run over ssh only when it is a first-level
            # shell; this machine's root .bashrc is slow (pyenv init) and would dominate
            # every test's timing, so sessions start at level 1 and bash counts itself as
            # level 2. Benchmarks also run nodes as they come (rc_files=True).
            env.append("SHLVL=1")
        if env:
            lines.append("SetEnv " + " ".join(env))  # sshd obeys only the first SetEnv line
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = os.path.join(self.dir, f"sshd_{n}.log")
        proc = subprocess.Popen(
            [SSHD, "-D", "-f", config, "-E", log], stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._daemons.append(proc)
        deadline = time.monotonic() + 10
        pending = list(addresses)
        while pending:
            if proc.poll() is not None:
                with open(log) as f:
                    raise RuntimeError(f"sshd exited with {proc.returncode}: {f.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen on {pending}")
            try:
                socket.create_connection((pending[0], self.port), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.02)
        self.addresses.extend(addresses)

    def log(self):
        """What the nodes' sshd processes logged."""
        out = []
        for n in range(len(self._daemons)):
            with open(os.path.join(self.dir, f"sshd_{n}.log"), errors="replace") as f:
                out.append(f.read())
        return "".join(out)

    def conn_vars(self, address):
        """Ansible connection variables that reach the node at ``address``."""
        return {
            "ansible_host": address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": self.key_path,
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=no -o LogLevel=ERROR",
        }

    def hosts(self, count=None, names=None):
        """``[(name, conn_vars)]`` for the first ``count`` nodes (named by address by default)."""
        addresses = self.ensure(count) if count else list(self.addresses)
        names = names or addresses
        return [(name, self.conn_vars(a)) for name, a in zip(names, addresses, strict=False)]

    def ssh(self, address, command, user=None, timeout=30):
        """Run ``command`` on a node through plain ssh; return the CompletedProcess."""
        argv = [
            "ssh",
            "-i",
            self.key_path,
            "-p",
            str(self.port),
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            f"{user or self.user}@{address}",
            command,
        ]
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)

    def describe(self):
        """Plain data describing the nodes (for the command line entry)."""
        return {
            "addresses": self.addresses,
            "port": self.port,
            "user": self.user,
            "key_path": self.key_path,
            "dead": self.dead,
            "become_user": self.become_user,
            "inventory": {a: self.conn_vars(a) for a in self.addresses},
        }

    def stop(self):
        """Stop every sshd and its open connections; remove the directory."""
        for proc in self._daemons:
            if proc.poll() is None:
                sessions = _descendants(proc.pid)
                proc.terminate()
                for pid in sessions:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._daemons = []
        shutil.rmtree(self.dir, ignore_errors=True)


def start_nodes(count=6, rc_files=False):
    """Prepare the accounts and start ``count`` loopback nodes; call ``stop()`` when done.
    ``rc_files``: the login shell runs its start-up files for every command, as on most real
    nodes (slow on this machine: see SshNodes._start_sshd)."""
    ensure_become_user()
    nodes = SshNodes(rc_files=rc_files)
    try:
        nodes.ensure(count)
    except BaseException:
        nodes.stop()
        raise
    return nodes


@pytest.fixture(scope="session")
def ssh_nodes():
    """Six loopback SSH nodes for the whole session; ``ssh_nodes.ensure(n)`` starts more."""
    if not os.path.exists(SSHD):
        pytest.fail("openssh-server is not installed: run `make system-deps`")
    nodes = start_nodes(6)
    yield nodes
    nodes.stop()


def main(argv=None):
    """Start nodes, print them as JSON, and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=6)
    args = parser.parse_args(argv)
    nodes = start_nodes(args.count)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(json.dumps(nodes.describe()), flush=True)
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        nodes.stop()


if __name__ == "__main__":
    main()
