"""opsjob node group plugin ``nodelist``: the project's machines whose name or IP matches."""

from __future__ import annotations

import fnmatch
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: nodelist
short_description: A node group made of the project's machines that match name or IP patterns
description:
  - Yields every machine of the project (and of project 0) whose name, inner IP or outer IP
    matches one of the patterns, with its connection variables.
  - A pattern is a shell-style wildcard (C(web*), C(10.0.1.*)); one starting with C(~) is a
    Python regular expression searched in the value. An empty pattern list matches every machine.
options:
  plugin:
    description: Marks the file as a config of this plugin.
    required: true
    choices: [nodelist]
  params:
    description: The node group's params, a comma separated string or a list of patterns.
    type: raw
    default: ""
  machines:
    description: The project's machines as opsjob passes them, each with name, inip, exip, vars.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
plugin: nodelist
params: "web*,10.0.2.*"
"""


def matchers(params):
    """Return one predicate per pattern of ``params``."""
    if params is None or params == "":
        return [lambda value: True]
    if isinstance(params, str):
        patterns = [p.strip() for p in params.split(",")]
    elif isinstance(params, list) and all(isinstance(p, str) for p in params):
        patterns = [p.strip() for p in params]
    else:
        raise AnsibleParserError("params: must be a comma separated string or a list of patterns")
    found = []
    for pattern in filter(None, patterns):
        if pattern.startswith("~"):
            try:
                found.append(re.compile(pattern[1:]).search)
            except re.error as e:
                raise AnsibleParserError(f"params: bad regular expression {pattern!r}: {e}") from e
        else:
            found.append(lambda value, p=pattern: fnmatch.fnmatchcase(value, p))
    return found


class InventoryModule(BaseInventoryPlugin):
    NAME = "nodelist"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        tests = matchers(self.get_option("params"))
        for machine in self.get_option("machines") or []:
            values = [machine.get(k) for k in ("name", "inip", "exip") if machine.get(k)]
            if not any(test(value) for test in tests for value in values):
                continue
            name = machine["name"]
            self.inventory.add_host(name)
            for key, value in (machine.get("vars") or {}).items():
                self.inventory.set_variable(name, key, value)
