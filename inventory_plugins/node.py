"""opsjob node group plugin ``node``: OpenC3's comma separated node list, as an inventory."""

from __future__ import annotations

import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: node
short_description: A node group given as OpenC3's comma separated list of node names
description:
  - Yields every name of the list as a host, in order, without duplicates.
  - A name that equals the name, inner IP or outer IP of one of the project's machines gets
    that machine's connection variables (C(ansible_host) and the hostvars an admin set on it).
options:
  plugin:
    description: Marks the file as a config of this plugin.
    required: true
    choices: [node]
  params:
    description: The node group's params, a comma separated string or a list of node names.
    type: raw
    default: ""
  machines:
    description: The project's machines as opsjob passes them, each with name, inip, exip, vars.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
plugin: node
params: web1,web2,10.0.0.7
"""

NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def node_names(params):
    """Return the node names of ``params`` (a comma separated string or a list)."""
    if params is None:
        return []
    if isinstance(params, str):
        parts = params.split(",")
    elif isinstance(params, list) and all(
        isinstance(p, (str, int)) and not isinstance(p, bool) for p in params
    ):
        parts = [str(p) for p in params]
    else:
        raise AnsibleParserError("params: must be a comma separated string or a list of names")
    names = {}  # a dict keeps the order and finds a duplicate at once
    for part in parts:
        name = part.strip()
        if not name or name in names:
            continue
        if not NODE_NAME.fullmatch(name):
            raise AnsibleParserError(f"params: {name!r} is not a node name")
        names[name] = None
    return list(names)


class InventoryModule(BaseInventoryPlugin):
    NAME = "node"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        index = {}
        for machine in self.get_option("machines") or []:
            for key in (machine.get("name"), machine.get("inip"), machine.get("exip")):
                if key:
                    index.setdefault(key, machine)
        for name in node_names(self.get_option("params")):
            self.inventory.add_host(name)
            for key, value in (index.get(name, {}).get("vars") or {}).items():
                self.inventory.set_variable(name, key, value)
