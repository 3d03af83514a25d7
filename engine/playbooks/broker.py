"""The one way out of a contained playbook run: connections to its own hosts, and its identity.

A playbook decides at run time where Ansible connects (``add_host``, ``delegate_to``,
``ansible_host`` in vars or facts, ``host_vars`` files, ``shell: ssh ...``), so no check of the
inventory can hold. The sandbox therefore runs in a network namespace of its own with only a
loopback device (bubblewrap ``--unshare-net``), and :class:`Broker` serves two sockets of the
run, mounted at :data:`INSIDE` in the sandbox:

- ``connect.sock``: given ``<address> <port>``, the broker opens a TCP connection for the run,
  but only to an (address, port) pair the step resolved for its hosts, and passes the connected
  socket back (SCM_RIGHTS). ssh reaches it through :data:`PROXY`, its ``ProxyCommand`` with
  ``ProxyUseFdpass``: nothing relays the bytes, the sandbox's ssh owns the connection.
  Anything else is refused, and the refusal is reported in the step's log.
- ``agent.sock``: the run's SSH identity (:class:`engine.playbooks.agent.Agent`).

Outside the sandbox the sockets live in ``<run dir>/sockets``; they are bound and reached
through ``/proc/self/fd/<dir>/...`` because a socket path has room for about 100 characters.
"""

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from engine.playbooks import agent as playbook_agent

if TYPE_CHECKING:
    from engine.ansible.playbook import Host

log = logging.getLogger(__name__)

FOLDER = "sockets"  # in the run dir
INSIDE = "/run/opsjob"  # where the sandbox sees FOLDER
CONNECT, AGENT = "connect.sock", "agent.sock"
PROXY = "oj-connect"  # in FOLDER: ssh's ProxyCommand inside the sandbox
CONNECT_TIMEOUT = 10
MAX_REQUEST = 600


def proxy_script(python: str) -> str:
    """ssh's ProxyCommand inside the sandbox: ask the broker for ``%h %p``, hand ssh the fd."""
    return (
        f"#!{python} -IS\n"
        '"""opsjob: ask the run\'s broker for a connection; ssh gets the socket (fd passing)."""\n'
        "import socket, sys\n"
        "c = socket.socket(socket.AF_UNIX)\n"
        f"c.connect({os.path.join(INSIDE, CONNECT)!r})\n"
        "c.sendall((sys.argv[1] + ' ' + sys.argv[2] + '\\n').encode())\n"
        "msg, fds, _, _ = socket.recv_fds(c, 4096, 1)\n"
        "if not fds:\n"
        "    sys.stderr.write(msg.decode(errors='replace') + '\\n')\n"
        "    sys.exit(1)\n"
        "socket.send_fds(socket.socket(fileno=1), [b'\\0'], fds)\n"
    )


def ssh_options() -> str:
    """ssh options (for ansible.cfg) that route a contained run's connections to its broker."""
    return f"-o 'ProxyCommand={INSIDE}/{PROXY} %h %p' -o ProxyUseFdpass=yes"


def allowed_pairs(hosts: Iterable["Host"]) -> frozenset[tuple[str, str]]:
    """``{(address, port)}`` the step's ``hosts`` (playbook.Host) connect to over SSH."""
    pairs = set()
    for host in hosts:
        if str(host.vars.get("ansible_connection") or "ssh") not in ("ssh", "smart"):
            continue  # local: runs in the sandbox itself
        address = str(host.vars.get("ansible_host") or host.name).lower()
        pairs.add((address, str(host.vars.get("ansible_port") or 22)))
    return frozenset(pairs)


class Broker:
    """The connect broker and the agent of one run, each on a socket of ``<pdd>/sockets``."""

    def __init__(
        self, pdd: str, pairs: Iterable[tuple[str, str]], agent: playbook_agent.Agent
    ) -> None:
        self.pairs = frozenset(pairs)
        self.agent = agent
        self.refused: list[str] = []  # "address:port" asked for and refused, in order
        self.folder = os.path.join(pdd, FOLDER)
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        proxy = os.path.join(self.folder, PROXY)
        with open(proxy, "w", encoding="utf-8") as f:
            f.write(proxy_script(sys.executable))
        os.chmod(proxy, 0o700)
        self._dirfd = os.open(self.folder, os.O_PATH | os.O_DIRECTORY)
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()
        for name, handle in ((CONNECT, self._connect), (AGENT, agent.serve)):
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(self._path(name, "self"))
            os.chmod(os.path.join(self.folder, name), 0o600)
            sock.listen(64)
            self._listeners.append(sock)
            threading.Thread(
                target=self._accept, args=(sock, handle), name=f"broker-{name}", daemon=True
            ).start()

    def _path(self, name: str, pid: int | str) -> str:
        return f"/proc/{pid}/fd/{self._dirfd}/{name}"

    def agent_path(self) -> str:
        """A path of the agent socket that processes of this worker can connect to."""
        return self._path(AGENT, os.getpid())

    def _accept(self, sock: socket.socket, handle: Callable[[socket.socket], object]) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def _connect(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(CONNECT_TIMEOUT)
            try:
                line = b""
                while not line.endswith(b"\n") and len(line) < MAX_REQUEST:
                    chunk = conn.recv(MAX_REQUEST)
                    if not chunk:
                        return
                    line += chunk
                address, port = line.decode("utf-8", "replace").split()
                address = address.strip("[]").lower()
            except (OSError, ValueError):
                return
            if (address, port) not in self.pairs:
                self.refused.append(f"{address}:{port}")
                log.warning("playbook run: refused a connection to %s:%s", address, port)
                self._say(conn, f"opsjob: {address}:{port} is not a host of this step")
                return
            try:
                out = socket.create_connection((address, int(port)), timeout=CONNECT_TIMEOUT)
            except (OSError, ValueError) as e:
                self._say(conn, f"opsjob: cannot connect to {address}:{port}: {e}")
                return
            with out:
                try:
                    socket.send_fds(conn, [b"\0"], [out.fileno()])
                except OSError:
                    pass

    @staticmethod
    def _say(conn: socket.socket, text: str) -> None:
        try:
            conn.sendall(text.encode())
        except OSError:
            pass

    def close(self) -> None:
        """Stop serving; connections already handed out stay the sandbox's until it ends."""
        self._closed.set()
        for sock in self._listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        os.close(self._dirfd)


def start(
    pdd: str, pairs: Iterable[tuple[str, str]], key_texts: Iterable[tuple[str, str]]
) -> Broker:
    """Start the broker of a contained run that may reach ``pairs``; ``key_texts`` are
    ``[(private key, comment)]`` of its credentials, offered beside the worker's identity."""
    keys = list(key_texts)
    for path in playbook_agent.worker_identity_files():
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                keys.append((f.read(), os.path.basename(path)))
        except OSError:
            continue
    agent = playbook_agent.Agent(keys, upstream=os.environ.get("SSH_AUTH_SOCK") or None)
    return Broker(pdd, pairs, agent)
