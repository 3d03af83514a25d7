"""Where a project's runs may connect: to the project's machines, unless an admin vouched.

Ansible connects to a host at its ``ansible_host`` (else its name) and ``ansible_port``, and
other variables change how: ``ansible_connection: local`` runs on the worker itself, a
ProxyCommand in ``ansible_ssh_common_args`` runs a command there, a control path rides
another host's connection. So a host that a node group yields must land on one of the
project's machines (its nodelist rows and project 0's), on that machine's port, and may set
only variables that leave the connection alone, or that the machine itself sets (an admin
wrote those). Only a group that an admin marked ``reach_any`` is exempt.
"""

from collections.abc import Iterable, Mapping
from typing import Any

ADDRESS = "ansible_host"
PORT = "ansible_port"
# Variables a host may set: whom it logs in as and what runs on the node itself. None: any
# value; a tuple: the values allowed (the machine's own value is always allowed).
FREE = {
    "ansible_user": None,
    "ansible_ssh_user": None,
    "ansible_password": None,
    "ansible_ssh_pass": None,
    "ansible_ssh_password": None,
    "ansible_become": None,
    "ansible_become_user": None,
    "ansible_become_pass": None,
    "ansible_become_password": None,
    "ansible_become_method": ("sudo", "su"),
    "ansible_connection": ("ssh",),
    "ansible_python_interpreter": None,
    "ansible_ssh_pipelining": None,
    "ansible_pipelining": None,
    "ansible_timeout": None,
    "ansible_ssh_timeout": None,
}
WHY = "only a node group an admin marks reach_any may"


def _port(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _allowed(key: str, value: Any, machine_vars: Mapping[str, Any]) -> bool:
    if key in machine_vars and machine_vars[key] == value:
        return True
    if key not in FREE:
        return False
    choices = FREE[key]
    return choices is None or value in choices


class Machines:
    """The machines of a project, by every address they are known by.

    ``machines`` is ``[{"name", "inip", "exip", "vars"}]``, each machine's ``vars`` its
    connection variables as a run uses them.
    """

    def __init__(self, projectid: int, machines: Iterable[Mapping[str, Any]]) -> None:
        self.projectid = projectid
        self.by_address: dict[str, list[Mapping[str, Any]]] = {}
        for machine in machines:
            keys = {machine["name"], machine["inip"], machine["exip"]}
            keys.add(machine["vars"].get(ADDRESS))
            for key in keys:
                if key not in (None, ""):
                    self.by_address.setdefault(str(key), []).append(machine)

    def problem(self, name: str, hostvars: Mapping[str, Any]) -> str | None:
        """Say why a run may not connect to host ``name`` with ``hostvars``; None if it may."""
        address = str(hostvars.get(ADDRESS) or name)
        found = self.by_address.get(address)
        if not found:
            return (
                f"host {name} connects to {address}, which is not a machine of project "
                f"{self.projectid} ({WHY} reach other hosts)"
            )
        port = _port(hostvars.get(PORT))
        same = [m for m in found if _port(m["vars"].get(PORT)) == port]
        if not same:
            theirs = sorted({_port(m["vars"].get(PORT)) or "the default" for m in found})
            return (
                f"host {name} connects to port {port or 'the default'} of {address}, but "
                f"machine {found[0]['name']} listens on {', '.join(theirs)} ({WHY} reach "
                "other ports)"
            )
        first = None
        for machine in same:
            extra = [
                key
                for key, value in hostvars.items()
                if key not in (ADDRESS, PORT) and not _allowed(key, value, machine["vars"])
            ]
            if not extra:
                return None
            first = first or sorted(extra)[0]
        return (
            f"host {name} sets {first}, which may change where or how the worker connects "
            f"({WHY} set it)"
        )
