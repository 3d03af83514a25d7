"""Nodelist: machines attached to a project by hand; project 0 attaches them to every project."""

import ipaddress
import json
import re
from typing import Any

from engine.errors import InvalidInput
from engine.machines import credentials
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Nodelist, database
from engine.store.records import in_project, soft_delete, unique
from engine.store.validate import Field, check

LIST_FIELDS = ("id", "name", "inip", "exip", "create_user", "create_time")
HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DOTTED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
FORMS = "an IPv4 address, hostname::inip or hostname::inip::exip"
# Leaves room for the soft-delete suffix in the 200-character column.
MAX_HOSTNAME = 100
FILTERS = {
    "inip": Field(max_len=50),
    "exip": Field(max_len=50),
}
NODE = {
    "name": Field(required=True, max_len=300, allow_empty=False),
    "hostvars": Field(object),  # an object, or its JSON text: checked by check_hostvars
    **credentials.NAMED,
}
SAFE_VALUE = r"[A-Za-z0-9 ._/@:=,+-]*"
HOSTVARS = {
    "ansible_host": Field(pattern=r"[A-Za-z0-9._:-]+", max_len=255),
    "ansible_port": Field(int, minimum=1, maximum=65535),
    "ansible_user": Field(pattern=r"[A-Za-z0-9._-]+", max_len=64),
    "ansible_connection": Field(choices=("ssh", "local", "paramiko")),
    "ansible_ssh_private_key_file": Field(pattern=r"/[A-Za-z0-9._/-]+", max_len=500),
    "ansible_ssh_common_args": Field(pattern=SAFE_VALUE, max_len=500),
    "ansible_python_interpreter": Field(pattern=r"/[A-Za-z0-9._/-]+", max_len=200),
    "ansible_become_method": Field(choices=("sudo", "su")),
}


def _ipv4(label: str, value: str) -> str:
    """Return ``value`` if it is a dotted-quad IPv4 address, else raise naming ``label``."""
    if not DOTTED.fullmatch(value):
        raise InvalidInput(f"name: {label} {value!r} is not an IPv4 address (a.b.c.d)")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidInput(f"name: {label} {value!r} is not a valid IPv4 address") from None
    return value


def parse_name(name: str) -> tuple[str, str, str]:
    """Split a nodelist ``name`` into ``(name, inip, exip)``.

    A bare IP keeps OpenC3's rule: one starting with ``10.`` or ``172.`` is internal, any
    other is external, and the IP is also the name.
    """
    parts = name.split("::")
    if len(parts) == 1:
        if not DOTTED.fullmatch(name):
            raise InvalidInput(f"name: must be {FORMS}")
        ip = _ipv4("ip", name)
        internal = ip.startswith(("10.", "172."))
        return ip, ip if internal else "", "" if internal else ip
    if len(parts) not in (2, 3):
        raise InvalidInput(f"name: must be {FORMS}")
    host = parts[0]
    if not HOSTNAME.fullmatch(host):
        raise InvalidInput(f"name: hostname must match {HOSTNAME.pattern}")
    if len(host) > MAX_HOSTNAME:
        raise InvalidInput(f"name: hostname longer than {MAX_HOSTNAME} characters")
    inip = _ipv4("inip", parts[1])
    exip = _ipv4("exip", parts[2]) if len(parts) == 3 else ""
    return host, inip, exip


def list_nodes(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's attached machines (filters: name, inip, exip, creator, dates)."""
    values = check(params, FILTERS)
    query = Nodelist.select().where(Nodelist.projectid == projectid, Nodelist.status != "deleted")
    query = common_filters(query, Nodelist, params)
    for column in ("inip", "exip"):
        if values[column]:
            query = query.where(getattr(Nodelist, column).contains(values[column]))
    return [
        {
            **as_dict(r, LIST_FIELDS),
            "hostvars": json.loads(r.hostvars or "{}"),
            "credential": r.credential,
        }
        for r in paged(query.order_by(Nodelist.id.desc()), params)
    ]


def check_hostvars(raw: Any) -> dict[str, Any]:
    """Return admin-given Ansible connection variables, checked key by key.

    Values can never hold Jinja (no braces), since Ansible templates inventory values.
    """
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInput("hostvars: must be a JSON object") from None
    if not isinstance(raw, dict):
        raise InvalidInput("hostvars: must be an object")
    out = {}
    for key, value in raw.items():
        if key not in HOSTVARS:
            raise InvalidInput(f"hostvars.{key}: not allowed; use one of {', '.join(HOSTVARS)}")
        out[key] = HOSTVARS[key].clean(f"hostvars.{key}", value)
    return out


def add_node(projectid: int, params: dict[str, Any], user: str) -> int:
    """Attach a machine given as ``ip``, ``host::inip`` or ``host::inip::exip``, with optional
    Ansible ``hostvars`` (e.g. ``ansible_port``) and the ``credential`` it logs in with (of
    this project or of project 0); return its id."""
    raw = check(params, NODE)["name"]
    name, inip, exip = parse_name(raw)
    hostvars = check_hostvars(params.get("hostvars"))
    credential = credentials.check_usable(projectid, params.get("credential"))
    with database.atomic(), unique("name", name):
        row = Nodelist.create(
            projectid=projectid,
            name=name,
            inip=inip,
            exip=exip,
            hostvars=json.dumps(hostvars),
            credential=credential,
            create_user=user,
            edit_user=user,
        )
    return row.id


def delete_node(projectid: int, nodeid: int | str, user: str) -> bool:
    """Detach one of the project's machines (soft delete: the name is free again)."""
    return soft_delete(in_project(Nodelist, projectid, "id", nodeid, "node"), user)
