"""Node lists of a step: resolve them to hosts, and keep every host inside its project.

A node belongs to a project when it is one of its machines (a nodelist row of the project or
of project 0, by name, inner or outer IP) or a host of one of the project's node groups.
Groups resolve through the inventory plugins (engine.machines.inventory), so a step runs on the
hosts, with the variables, that the group's inventory gives; every such host must connect to
one of the project's machines (engine.machines.reach), unless an admin marked its group
``reach_any``. A host logs in with the credential of its group, else of its machine, else as
the worker's own SSH configuration says.
"""

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.ansible.playbook import Host, Secret
from engine.catalog.variables import substitute
from engine.errors import InvalidInput
from engine.machines import credentials, inventory, reach
from engine.store.models import Nodegroup, Nodelist
from engine.store.validate import DIGITS


@dataclass
class Resolution:
    hosts: list[Host]  # that belong to the project
    refused: list[str]  # names that do not belong to the project


class VariableUndefined(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(",".join(names))
        self.names = names


def split(text: str | None) -> list[str]:
    """Split a comma list of node names, dropping blanks and duplicates (order kept)."""
    return list(dict.fromkeys(filter(None, (part.strip() for part in (text or "").split(",")))))


def machine_rows(projectid: int) -> list[Any]:
    """The live machines of the project and of project 0, the project's first: named tuples
    of name, inip, exip, type, hostvars and credential (light enough for 10,000 machines)."""
    n = Nodelist
    return list(
        n.select(n.name, n.inip, n.exip, n.type, n.hostvars, n.credential)
        .where(n.projectid.in_([projectid, 0]), n.status != "deleted")
        .order_by(n.projectid.desc(), n.id)
        .namedtuples()
    )


def machines(projectid: int) -> dict[str, Any]:
    """Map every name, inip and exip of the project's (and project 0's) machines to its row."""
    index: dict[str, Any] = {}
    for row in machine_rows(projectid):
        for key in (row.name, row.inip, row.exip):
            if key:
                index.setdefault(key, row)
    return index


def machine_vars(row: Any) -> dict[str, Any]:
    """Ansible vars of a machine: its address, plus the hostvars an admin set on it."""
    hostvars = json.loads(row.hostvars or "{}")
    conn = {} if "ansible_host" in hostvars else {"ansible_host": row.inip or row.exip or row.name}
    conn.update(hostvars)
    return conn


def _plugin_machines(machines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The machines as the node group plugins receive them (each name once)."""
    seen: set[str]
    seen, out = set(), []
    for machine in machines:
        if machine["name"] not in seen:
            seen.add(machine["name"])
            out.append(machine)
    return out


def live_groups(projectid: int) -> list[Any]:
    """The project's node groups, oldest first."""
    return list(
        Nodegroup.select()
        .where(Nodegroup.projectid == projectid, Nodegroup.status != "deleted")
        .order_by(Nodegroup.id)
    )


def group_hosts(projectid: int, groups: list[Any] | None = None) -> dict[int, inventory.GroupHosts]:
    """Resolve node groups of ``projectid`` (default: all of them) through their inventory
    plugins, in one go; return ``{group id: inventory.GroupHosts}``.

    A group with a host the project may not reach (engine.machines.reach) gets no hosts, the
    names of all of them in ``refused``, and the first such host's problem as its error.
    """
    groups = live_groups(projectid) if groups is None else groups
    if not groups:
        return {}
    rows = [
        {"name": r.name, "inip": r.inip, "exip": r.exip, "vars": machine_vars(r)}
        for r in machine_rows(projectid)
    ]
    found = inventory.resolve(
        [{"key": str(g.id), "plugin": g.plugin, "params": json.loads(g.params)} for g in groups],
        _plugin_machines(rows),
    )
    own = reach.Machines(projectid, rows)
    out: dict[int, inventory.GroupHosts] = {}
    for group in groups:
        result = found[str(group.id)]
        if not result.error and not group.reach_any:
            problem = next(
                filter(None, (own.problem(name, hostvars) for name, hostvars in result.hosts)),
                None,
            )
            if problem:
                result = inventory.GroupHosts(
                    error=problem, refused=[name for name, _ in result.hosts]
                )
        out[group.id] = result
    return out


def group_problem(group: Any, result: inventory.GroupHosts) -> str:
    """Say why ``group`` (resolved to ``result``, an inventory.GroupHosts) gives no hosts."""
    if result.refused:
        return f"node group {group.name!r} (id {group.id}) is refused: {result.error}"
    return f"node group {group.name!r} (id {group.id}) cannot be resolved: {result.error}"


def _connection(hostvars: Mapping[str, Any]) -> dict[str, Any]:
    conn = dict(hostvars)
    conn.setdefault("ansible_connection", "ssh")
    if conn["ansible_connection"] == "local":
        # The worker host itself: use the worker's own Python, not whatever PATH finds.
        conn.setdefault("ansible_python_interpreter", sys.executable)
    return conn


class _Logins:
    """The credentials one resolution uses, each loaded (and decrypted) once."""

    def __init__(self, projectid: int) -> None:
        self.projectid = projectid
        self.loaded: dict[int, tuple[str, Secret]] = {}

    def host(self, name: str, hostvars: Mapping[str, Any], credential_id: int) -> Host:
        conn = _connection(hostvars)
        if not credential_id:
            return Host(name, conn)
        if credential_id not in self.loaded:
            self.loaded[credential_id] = credentials.login(self.projectid, credential_id)
        username, secret = self.loaded[credential_id]
        if username:
            conn["ansible_user"] = username
        return Host(name, conn, secret)


def _group(projectid: int, text: str) -> Any:
    if not re.fullmatch(DIGITS, text or ""):
        return None
    return Nodegroup.get_or_none(
        Nodegroup.id == int(text),
        Nodegroup.projectid == projectid,
        Nodegroup.status != "deleted",
    )


def resolve(projectid: int, kind: str, text: str, values: Mapping[str, Any]) -> Resolution:
    """Resolve a node list of type ``kind`` (builtin|group|variable) to the project's hosts.

    Raise VariableUndefined when a variable list names undefined variables, and InvalidInput
    when a group's inventory cannot be resolved or a credential cannot be used.
    """
    if kind == "variable":
        text, missing = substitute(text, values)
        if missing:
            raise VariableUndefined(missing)
    logins = _Logins(projectid)
    if kind == "group":
        group = _group(projectid, text)
        if group is None:
            return Resolution([], [f"group {text}"])
        result = group_hosts(projectid, [group])[group.id]
        if result.error:
            raise InvalidInput(group_problem(group, result))
        index = machines(projectid)
        # group_hosts checked that every host connects to a machine of the project
        return Resolution(
            [
                logins.host(
                    name,
                    hostvars,
                    group.credential or getattr(index.get(name), "credential", 0),
                )
                for name, hostvars in result.hosts
            ],
            [],
        )
    index = machines(projectid)
    names = split(text)
    in_groups = _group_index(projectid) if any(n not in index for n in names) else {}
    hosts, refused = [], []
    for name in names:
        row = index.get(name)
        if row is not None:
            hosts.append(logins.host(name, machine_vars(row), row.credential))
        elif name in in_groups:
            group, result, hostvars = in_groups[name]
            if result.refused:
                raise InvalidInput(group_problem(group, result))
            hosts.append(logins.host(name, hostvars, group.credential))
        else:
            refused.append(name)
    return Resolution(hosts, refused)


def _group_index(
    projectid: int,
) -> dict[str, tuple[Any, inventory.GroupHosts, dict[str, Any]]]:
    """Map every host name of the project's groups to ``(group, inventory.GroupHosts, vars)``:
    the oldest group that may run on it, else the oldest that named it but was refused."""
    groups = live_groups(projectid)
    found = group_hosts(projectid, groups)
    index: dict[str, tuple[Any, inventory.GroupHosts, dict[str, Any]]] = {}
    for group in groups:
        for name, hostvars in found[group.id].hosts:
            index.setdefault(name, (group, found[group.id], hostvars))
    for group in groups:
        for name in found[group.id].refused:
            index.setdefault(name, (group, found[group.id], {}))
    return index
