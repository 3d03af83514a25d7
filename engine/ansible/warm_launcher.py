"""The ``ansible-playbook`` that ansible-runner starts on the warm path (see engine.ansible.warm).

It runs as ``python -I -S`` and imports only the standard library: it hands its arguments,
environment, working directory and standard streams to the warm controller over a unix
socket, and ends with the exit status of the run. Whatever goes wrong before the run started
there, it becomes the real ``ansible-playbook`` instead (the cold way). While it lives the run
lives: the controller kills the run when this process's end of the socket closes.
"""

import json
import os
import select
import signal
import socket
import struct
import sys
from collections.abc import Iterator

SOCKET = "OPSJOB_WARM_SOCKET"  # where the warm controller listens
LOST = 1  # exit status when the controller vanished during the run


def cold(argv: list[str]) -> None:
    """Become the real ansible-playbook (found on PATH, as runner would have run it)."""
    os.execvp("ansible-playbook", ["ansible-playbook", *argv])


def request(argv: list[str]) -> bytes:
    """The message for the controller: argv, cwd and environment, as JSON."""
    return json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()


def lines(sock: socket.socket) -> Iterator[str]:
    """Yield the controller's reply lines until it closes the connection."""
    buf = b""
    while True:
        data = sock.recv(4096)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("ascii", "replace")


def wait_gone(pid: int) -> None:
    """Wait until process ``pid`` (not our child) has ended."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    path = os.environ.get(SOCKET, "")
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        body = request(argv)
        fds = struct.pack("3i", 0, 1, 2)
        sock.sendmsg([struct.pack("!Q", len(body))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        sock.sendall(body)
        replies = lines(sock)
        first = next(replies, "")
    except OSError:
        first = ""
    if not first.startswith("run "):  # not started there: run it here
        cold(argv)
    pid = int(first.split()[1])
    for line in replies:
        word, _, value = line.partition(" ")
        if word == "exit":
            sys.exit(int(value))
        if word == "signal":  # end the way the run ended
            signal.signal(int(value), signal.SIG_DFL)
            os.kill(os.getpid(), int(value))
            sys.exit(128 + int(value))
    wait_gone(pid)
    sys.stderr.write("opsjob: the warm Ansible controller ended during the run\n")
    sys.exit(LOST)


if __name__ == "__main__":
    main(sys.argv[1:])
