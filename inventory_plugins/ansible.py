"""opsjob node group plugin ``ansible``: any inventory source Ansible understands."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars, sort_groups
from ansible.inventory.manager import InventoryManager
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display
from ansible.utils.vars import combine_vars
from ansible.vars.plugins import get_vars_from_inventory_sources

DOCUMENTATION = r"""
name: ansible
short_description: A node group read from any inventory source Ansible understands
description:
  - The source is a path (an INI or YAML file, a directory, an executable inventory script, or
    an inventory plugin config such as C(constructed)), or inline YAML or INI inventory text.
  - The hosts the host pattern selects become the group, each with its variables as a play
    would see them (group and host variables, C(group_vars/) and C(host_vars/) next to the
    source), without Ansible's magic variables.
  - Inline text is parsed by the C(yaml) and C(ini) inventory plugins only, unless it is
    marked C(trusted); then every enabled inventory plugin may read it (an admin's choice).
options:
  plugin:
    description: Marks the file as a config of this plugin.
    required: true
    choices: [ansible]
  params:
    description:
      - The node group's params. A mapping with C(path) (an absolute path) or C(inventory)
        (inline text), and optionally C(pattern) (a host pattern, default C(all)), C(format)
        (C(yaml) or C(ini), for inline text; default is to try both) and C(trusted).
      - A plain string is a path when it is one line, and inline text otherwise.
    type: raw
    required: true
  machines:
    description: The project's machines (not used by this plugin).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
plugin: ansible
params:
  path: /etc/ansible/hosts
  pattern: "web:&prod"
"""

KEYS = ("path", "inventory", "pattern", "format", "trusted")
FORMATS = {"yaml": ["yaml"], "ini": ["ini"], "auto": ["yaml", "ini"]}


def source_spec(params):
    """Return ``params`` as a mapping of KEYS, or raise AnsibleParserError saying what is wrong."""
    if isinstance(params, str):
        key = "inventory" if "\n" in params.strip() else "path"
        params = {key: params}
    if not isinstance(params, dict):
        raise AnsibleParserError("params: must be a path, inline inventory text or a mapping")
    unknown = sorted(set(params) - set(KEYS))
    if unknown:
        raise AnsibleParserError(f"params: unknown key {unknown[0]!r} (use {', '.join(KEYS)})")
    spec = {
        "path": params.get("path") or "",
        "inventory": params.get("inventory") or "",
        "pattern": params.get("pattern") or "all",
        "format": params.get("format") or "auto",
        "trusted": params.get("trusted") in (True, 1, "true", "yes", "1"),
    }
    for key in ("path", "inventory", "pattern", "format"):
        if not isinstance(spec[key], str):
            raise AnsibleParserError(f"params.{key}: must be a string")
    if bool(spec["path"]) == bool(spec["inventory"]):
        raise AnsibleParserError("params: give either path or inventory")
    if spec["path"] and not os.path.isabs(spec["path"]):
        raise AnsibleParserError(f"params.path: {spec['path']!r} is not an absolute path")
    if spec["format"] not in FORMATS:
        raise AnsibleParserError("params.format: must be yaml, ini or auto")
    return spec


@contextmanager
def _failures():
    """Collect the errors Ansible would only print as warnings while it parses a source."""
    display = Display()
    caught = []
    previous = display.__dict__.get("error_as_warning")

    def record(msg, exception, **kwargs):
        # msg is "Failed to parse inventory with '<plugin>' plugin."; keep the plugin's name
        plugin = msg.split("'")[1] if msg and msg.count("'") >= 2 else "inventory"
        text = " ".join(f"{exception} {getattr(exception, '_help_text', None) or ''}".split())
        caught.append(f"{plugin} plugin: {text}")

    display.error_as_warning = record
    try:
        yield caught
    finally:
        if previous is None:
            del display.error_as_warning
        else:
            display.error_as_warning = previous


class _Manager(InventoryManager):
    """An inventory manager that tries only the named inventory plugins (None: all enabled)."""

    def __init__(self, loader, source, only=None):
        self._only = only
        super().__init__(loader=loader, sources=[source])

    def _fetch_inventory_plugins(self):
        if self._only is None:
            return super()._fetch_inventory_plugins()
        return [inventory_loader.get(name) for name in self._only]


def load(loader, source, only=None, label=None):
    """Parse ``source`` with Ansible's inventory manager; raise AnsibleParserError naming why.

    ``only`` limits the inventory plugins tried; ``label`` names the source in errors.
    """
    with _failures() as caught:
        manager = _Manager(loader, source, only)
    if not manager._inventory.processed_sources:
        causes = "; ".join(dict.fromkeys(caught)) or "no inventory plugin accepts it"
        if label:
            causes = causes.replace(source, label)
        raise AnsibleParserError(f"cannot parse {label or source}: {causes}")
    return manager


class _HostVars:
    """Each host's variables as a play sees them before facts, in Ansible's default precedence:
    group variables of the inventory (``all`` first, then by depth and priority), then those of
    ``group_vars/`` next to the source, then the host's own, then ``host_vars/``.

    Hosts in the same groups share the group part, worked out once. (Ansible's VariableManager
    would also clean an empty fact cache and add magic variables for every host, milliseconds
    each, for values a node group does not keep.)
    """

    def __init__(self, loader, manager):
        self.loader, self.sources = loader, manager._sources
        self.by_groups = {}

    def _plugins(self, entities):
        return get_vars_from_inventory_sources(self.loader, self.sources, entities, "all")

    def of(self, host):
        groups = sort_groups(host.get_groups())
        key = tuple(g.name for g in groups)
        if key not in self.by_groups:
            self.by_groups[key] = combine_vars(get_group_vars(groups), self._plugins(groups))
        merged = combine_vars(self.by_groups[key], host.get_vars())
        return combine_vars(merged, self._plugins([host]))


class InventoryModule(BaseInventoryPlugin):
    NAME = "ansible"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        spec = source_spec(self.get_option("params"))
        workdir = None
        try:
            if spec["path"]:
                if not os.path.exists(spec["path"]):
                    raise AnsibleParserError(f"inventory source {spec['path']} does not exist")
                manager = load(loader, spec["path"])
            else:
                workdir = tempfile.mkdtemp(prefix="opsjob-inline-")
                source = os.path.join(workdir, "inline.yml")
                with open(source, "w", encoding="utf-8") as f:
                    f.write(spec["inventory"])
                only = None if spec["trusted"] else FORMATS[spec["format"]]
                manager = load(loader, source, only, label="the inline inventory")
            try:
                hosts = [h for h in manager.get_hosts(spec["pattern"]) if not h.implicit]
            except Exception as e:
                raise AnsibleParserError(f"params.pattern: {spec['pattern']!r}: {e}") from e
            variables = _HostVars(loader, manager)
            for host in hosts:
                self.inventory.add_host(host.name)
                for key, value in variables.of(host).items():
                    if key not in C.INTERNAL_STATIC_VARS:
                        self.inventory.set_variable(host.name, key, value)
        finally:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
