"""Inventory source ``opsjob``: a project's node groups as Ansible groups, for the shell."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.display import Display

DOCUMENTATION = r"""
name: opsjob
short_description: The node groups of an opsjob project as Ansible groups
description:
  - Every node group of the project becomes an Ansible group of the same name (characters
    Ansible does not allow in group names become C(_)), holding the hosts the group resolves
    to with their connection variables. A group that cannot be resolved is skipped with a
    warning.
  - Reads the database directly (C(database_url); needs opsjob installed in the Python that
    runs Ansible) or asks the API (C(api_url) and C(api_key)).
  - Credentials stored in opsjob are not used here; the shell user's own SSH configuration
    applies.
  - The file name must end with C(opsjob.yml) or C(opsjob.yaml).
options:
  plugin:
    description: Marks the file as a config of this plugin.
    required: true
    choices: [opsjob]
  project:
    description: The project id.
    type: int
    required: true
  database_url:
    description: opsjob's database URL (as C(OPSJOB_DATABASE_URL)).
    type: str
    env:
      - name: OPSJOB_DATABASE_URL
  api_url:
    description: Base URL of the opsjob API, used when no database URL is given.
    type: str
    env:
      - name: OPSJOB_API_URL
  api_key:
    description: An API key that may read the project.
    type: str
    env:
      - name: OPSJOB_API_KEY
  timeout:
    description: Seconds one API request may take.
    type: int
    default: 60
"""

EXAMPLES = r"""
# web.opsjob.yml, used as
#   ANSIBLE_INVENTORY_PLUGINS=<opsjob>/inventory_plugins ansible-inventory -i web.opsjob.yml --graph
plugin: opsjob
project: 1
api_url: http://127.0.0.1:8080
# api_key: from OPSJOB_API_KEY
"""

display = Display()


def group_name(name, used):
    """An Ansible group name for a node group name, unique among ``used``."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name) or "group"
    if clean[0].isdigit():
        clean = "_" + clean
    candidate, n = clean, 1
    while candidate in used:
        n += 1
        candidate = f"{clean}_{n}"
    used.add(candidate)
    return candidate


class InventoryModule(BaseInventoryPlugin):
    NAME = "opsjob"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("opsjob.yml", "opsjob.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        project = self.get_option("project")
        if self.get_option("database_url"):
            groups = self._from_database(project)
        elif self.get_option("api_url"):
            groups = self._from_api(project)
        else:
            raise AnsibleParserError("opsjob: give database_url, or api_url and api_key")
        used = set()
        for gid, name, hosts, error in groups:
            if error:
                display.warning(f"opsjob: node group {name!r} (id {gid}) skipped: {error}")
                continue
            group = self.inventory.add_group(group_name(name, used))
            self.inventory.set_variable(group, "opsjob_group_id", gid)
            for host, hostvars in hosts.items():
                self.inventory.add_host(host, group=group)
                for key, value in hostvars.items():
                    self.inventory.set_variable(host, key, value)

    def _from_database(self, project):
        try:
            from engine.machines import nodes
            from engine.store.db import database, open_database
        except ImportError as e:
            raise AnsibleParserError(
                f"opsjob: database_url needs opsjob importable by this Python ({e}); "
                "use api_url instead"
            ) from e
        open_database(self.get_option("database_url"))
        with database.connection_context():
            groups = nodes.live_groups(project)
            found = nodes.group_hosts(project, groups)
        return [(g.id, g.name, dict(found[g.id].hosts), found[g.id].error) for g in groups]

    def _get(self, path, **query):
        base = self.get_option("api_url").rstrip("/")
        url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.get_option('api_key') or ''}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.get_option("timeout")) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                body = {"stat": False, "info": f"HTTP {e.code}"}
            body["status"] = e.code
            return body
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise AnsibleParserError(f"opsjob: cannot reach {base}: {e}") from e

    def _from_api(self, project):
        rows, page = [], 1
        while True:
            body = self._get(f"/nodegroup/{int(project)}", page=page, pagesize=1000)
            if not body.get("stat"):
                raise AnsibleParserError(f"opsjob: listing node groups: {body.get('info')}")
            rows += body["data"]
            if len(body["data"]) < 1000:
                break
            page += 1
        out = []
        for row in sorted(rows, key=lambda r: r["id"]):
            body = self._get(f"/nodegroup/{int(project)}/{row['id']}/nodelist", hostvars=1)
            if body.get("stat"):
                out.append((row["id"], row["name"], body["data"], ""))
            else:
                out.append((row["id"], row["name"], {}, body.get("info") or "unknown error"))
        return out
