"""Node lists of a step: resolve them to hosts, and keep every host inside its project."""

import json
import sys
from dataclasses import dataclass

from .models import Nodegroup, Nodelist
from .playbook import Host
from .variables import substitute


@dataclass
class Resolution:
    hosts: list  # [Host] that belong to the project
    refused: list  # names that do not belong to the project


class VariableUndefined(Exception):
    def __init__(self, names):
        super().__init__(",".join(names))
        self.names = names


def split(text):
    """Split a comma list of node names, dropping blanks and duplicates (order kept)."""
    seen = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def machines(projectid):
    """Map every name, inip and exip of the project's (and project 0's) machines to its row."""
    rows = (
        Nodelist.select()
        .where(Nodelist.projectid.in_([projectid, 0]), Nodelist.status != "deleted")
        .order_by(Nodelist.projectid.desc())
    )
    index = {}
    for row in rows:
        for key in (row.name, row.inip, row.exip):
            if key:
                index.setdefault(key, row)
    return index


def _connection(name, row):
    """Ansible vars for a nodelist row: its address, plus hostvars an admin set on it."""
    hostvars = json.loads(row.hostvars or "{}") if row is not None else {}
    conn = {}
    if row is not None and "ansible_host" not in hostvars:
        conn["ansible_host"] = row.inip or row.exip or row.name
    conn.update(hostvars)
    conn.setdefault("ansible_connection", "ssh")
    if conn["ansible_connection"] == "local":
        # The worker host itself: use the worker's own Python, not whatever PATH finds.
        conn.setdefault("ansible_python_interpreter", sys.executable)
    return conn


def _group_members(projectid, group_id):
    group = Nodegroup.get_or_none(
        Nodegroup.id == int(group_id),
        Nodegroup.projectid == projectid,
        Nodegroup.status != "deleted",
    )
    if group is None:
        return None
    params = json.loads(group.params or "null")
    if isinstance(params, list):
        params = ",".join(str(p) for p in params)
    return split(params if isinstance(params, str) else "")


def resolve(projectid, kind, text, values):
    """Resolve a node list of type ``kind`` (builtin|group|variable) to the project's hosts.

    Raise VariableUndefined when a variable list names undefined variables.
    """
    if kind == "variable":
        text, missing = substitute(text, values)
        if missing:
            raise VariableUndefined(missing)
    index = machines(projectid)
    if kind == "group":
        members = _group_members(projectid, text)
        if members is None:
            return Resolution([], [f"group {text}"])
        # Members of the project's own group belong to it by definition.
        return Resolution([Host(n, _connection(n, index.get(n))) for n in members], [])
    hosts, refused = [], []
    for name in split(text):
        row = index.get(name)
        if row is None:
            refused.append(name)
        else:
            hosts.append(Host(name, _connection(name, row)))
    return Resolution(hosts, refused)
