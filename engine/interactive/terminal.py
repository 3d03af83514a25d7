"""The console's single-machine terminal: an interactive shell over SSH on one machine of a
project, for a caller with write on it. Every line typed into it goes to the cmd log.

The API node that serves the terminal opens the SSH connection itself (a PTY needs a live
connection, not a queued task), with the connection variables and credential the machine
has for Ansible runs.
"""

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.access import auth
from engine.ansible.playbook import becomes
from engine.errors import Forbidden, InvalidInput
from engine.insight import audit
from engine.machines import nodes
from engine.store.models import CmdLog
from engine.store.validate import Field, check

if TYPE_CHECKING:
    from engine.access.auth import Principal
    from engine.ansible.playbook import Host

OPEN = {
    "node": Field(required=True, pattern=r"[A-Za-z0-9._:-]+", max_len=200, allow_empty=False),
    "sudo": Field(default="", pattern=r"[A-Za-z][0-9A-Za-z_-]+", max_len=40),
    "cols": Field(int, default=120, minimum=10, maximum=1000),
    "rows": Field(int, default=32, minimum=5, maximum=500),
}
MAX_LINE = 4000  # characters of one typed line kept in the cmd log


@dataclass
class Shell:
    """What it takes to start one terminal session, and to clean up after it."""

    projectid: int
    user: str
    node: str
    sudo: str
    argv: list[str]
    cols: int
    rows: int
    private_dir: str = ""  # holds the credential's key for the session's lifetime
    key_id: int = 0  # the API key that opened it, and from where: for the audit trail
    source: str = ""
    typed: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Remove what the session wrote to disk (the credential's key)."""
        if self.private_dir:
            shutil.rmtree(self.private_dir, ignore_errors=True)
            self.private_dir = ""


def _ssh_argv(host: "Host", sudo: str, private_dir: str) -> list[str]:
    conn = host.vars
    if conn.get("ansible_connection", "ssh") != "ssh":
        raise InvalidInput(
            f"node: {host.name} is reached with a {conn['ansible_connection']} connection; "
            "the terminal needs ssh"
        )
    argv = ["ssh", "-tt", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        argv += shlex.split(str(conn.get(name) or ""))
    if conn.get("ansible_port"):
        argv += ["-p", str(conn["ansible_port"])]
    if host.secret is not None and host.secret.ssh_key:
        key_file = os.path.join(private_dir, "id")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(host.secret.ssh_key.rstrip("\n") + "\n")
        argv += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
    elif conn.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(conn["ansible_ssh_private_key_file"])]
    if conn.get("ansible_user"):
        argv += ["-l", str(conn["ansible_user"])]
    argv += ["--", str(conn.get("ansible_host") or host.name)]
    if becomes(host, sudo):  # never sudo to the account the shell logs in as
        argv += ["sudo", "-i", "-u", sudo]
    return argv


def open_shell(
    projectid: int, params: dict[str, Any], principal: "Principal", source: str = ""
) -> Shell:
    """Check the caller and the machine, log the opening, and return the :class:`Shell`
    (``source``: the client's address)."""
    auth.require(principal, projectid, "write")
    values = check(params, OPEN)
    node = values["node"]
    try:
        resolution = nodes.resolve(projectid, "builtin", node, {})
    except InvalidInput as e:  # a host the project may not reach, a credential gone
        raise Forbidden(f"node: {e.info}") from None
    if resolution.refused or len(resolution.hosts) != 1:
        raise Forbidden(f"node: not a machine of project {projectid}: {node}")
    private_dir = tempfile.mkdtemp(prefix="opsjob-term-")
    try:
        argv = _ssh_argv(resolution.hosts[0], values["sudo"], private_dir)
    except Exception:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    shell = Shell(
        projectid=projectid,
        user=principal.name,
        node=node,
        sudo=values["sudo"],
        argv=argv,
        cols=values["cols"],
        rows=values["rows"],
        private_dir=private_dir,
        key_id=principal.key_id,
        source=source,
    )
    record(shell, "[terminal opened]")
    return shell


def record(shell: Shell, line: str) -> None:
    """Log one line typed into ``shell``'s terminal in the cmd log and the audit trail."""
    audit.record(
        user=shell.user,
        key_id=shell.key_id,
        source=shell.source,
        via="console",
        route="/cmd/{projectid:int}/terminal",
        obj="cmd",
        object_id=shell.node,
        projectid=shell.projectid,
        fields={"node": shell.node, "sudo": shell.sudo, "cmd": line},
    )
    CmdLog.create(
        projectid=shell.projectid,
        user=shell.user,
        node=shell.node,
        usr=shell.sudo,
        cmd=line[:MAX_LINE],
    )


class LineBuffer:
    """Rebuild the lines a person types from the keys a terminal sends: printable text,
    backspace, Ctrl-C and Ctrl-U; escape sequences (arrows, function keys) are dropped."""

    def __init__(self) -> None:
        self.line: list[str] = []
        self.escape = ""

    def feed(self, keys: str) -> list[str]:
        """Take ``keys``; return the lines they completed (each ended by Enter)."""
        done = []
        for ch in keys:
            if self.escape:
                self.escape += ch
                if len(self.escape) > 1 and (ch.isalpha() or ch == "~" or len(self.escape) > 16):
                    self.escape = ""
                continue
            if ch == "\x1b":
                self.escape = ch
            elif ch in "\r\n":
                text = "".join(self.line).strip()
                if text:
                    done.append(text)
                self.line = []
            elif ch in "\x7f\b":
                if self.line:
                    self.line.pop()
            elif ch in "\x03\x15":
                self.line = []
            elif ch >= " " or ch == "\t":
                if len(self.line) < MAX_LINE:
                    self.line.append(ch)
        return done
