"""Node information: the machines a project can run on, as OpenC3's nodeinfo routes show them.

A project's machines are its nodelist rows, those of project 0, and the hosts of its node
groups (resolved through their inventory plugins; a group that does not resolve, or that
reaches beyond the machines, adds none).
"""

import ipaddress
from typing import Any

from engine.machines import nodes
from engine.store.validate import NODES, Field, check

# A query string: at this length a list of commas, each sent as %2C, still fits the 65,535
# bytes of URL the HTTP server parses (a longer URL gets its plain-text 400).
CHECK = {"node": Field(required=True, pattern=NODES, max_len=16384, allow_empty=False)}
GROUP_TYPE = "nodegroup"


def _address(value: str) -> tuple[str, str]:
    """Sort an address into ``(inip, exip)``: private addresses are inner, others outer."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return "", ""
    return (value, "") if ip.is_private else ("", value)


def machines(projectid: int) -> list[dict[str, Any]]:
    """List the project's machines: ``[{id (1..n), name, type, inip, exip}]``."""
    seen: set[str]
    found, seen = [], set()
    for row in nodes.machine_rows(projectid):
        if row.name not in seen:
            seen.add(row.name)
            found.append({"name": row.name, "type": row.type, "inip": row.inip, "exip": row.exip})
    for result in nodes.group_hosts(projectid).values():
        for name, hostvars in result.hosts:
            if name not in seen:
                seen.add(name)
                inip, exip = _address(str(hostvars.get("ansible_host", name)))
                found.append({"name": name, "type": GROUP_TYPE, "inip": inip, "exip": exip})
    return [{"id": number, **row} for number, row in enumerate(found, start=1)]


def count(projectid: int) -> dict[str, int]:
    """Count the project's machines: ``{node: n}``."""
    return {"node": len(machines(projectid))}


def check_nodes(projectid: int, params: dict[str, Any]) -> str | None:
    """Return None when every node of ``node`` (a comma list) is a machine of the project
    (its name, inner or outer IP, or a host of its groups), else the comma list of the others.
    Project 0 always passes."""
    names = nodes.split(check(params, CHECK)["node"])
    if int(projectid) == 0:
        return None
    known = set(nodes.machines(projectid))
    foreign = [n for n in names if n not in known]
    if foreign:
        for result in nodes.group_hosts(projectid).values():
            for name, hostvars in result.hosts:
                known.add(name)
                known.add(str(hostvars.get("ansible_host", name)))
        foreign = [n for n in foreign if n not in known]
    return ",".join(foreign) or None
