"""The child process that parses node group sources for :mod:`engine.machines.inventory`.

It runs as ``python -m engine.machines.inventory_child ANSWER_PATH`` under a memory limit, reads the
request on stdin, and writes its answer to ANSWER_PATH; a source's script runs only here.

The configs it writes (one per group, holding every machine of the project) are plain JSON, and
the plugins read them back through the loader it passes them. That loader reads those files
with ``json``: Ansible's own would parse them as YAML, tag every value and deep-copy the whole,
which costs about a minute for 10,000 machines. Their values come back untagged, so nothing in
them counts as a trusted template.
"""

import json
import os
import resource
import sys
from typing import Any

from engine.machines.inventory import MAX_HOSTS, MEMORY_LIMIT, PLUGIN_DIR


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a value Ansible parsed (tagged strings become plain ones)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return str(value)


def _config_loader(configs: set[str]) -> Any:
    """A DataLoader that reads the ``configs`` this child wrote as the plain JSON they are."""
    from ansible.parsing.dataloader import DataLoader

    class ConfigLoader(DataLoader):
        def load_from_file(self, file_name: str, *args: Any, **kwargs: Any) -> Any:
            path = os.path.realpath(self.path_dwim(file_name))
            if path not in configs:
                return super().load_from_file(file_name, *args, **kwargs)
            with open(path, encoding="utf-8") as f:
                return json.load(f)

    return ConfigLoader()


def _parse_group(
    loader: Any, group: dict[str, Any], machines: list[dict[str, Any]], config: str
) -> list[list[Any]]:
    """Parse one group with its plugin; return ``[(name, {ansible_* vars})]``."""
    from ansible.inventory.data import InventoryData
    from ansible.inventory.helpers import get_group_vars
    from ansible.plugins.loader import inventory_loader

    plugin = inventory_loader.get(group["plugin"])
    if plugin is None or os.path.dirname(os.path.realpath(plugin._original_path)) != (
        os.path.realpath(PLUGIN_DIR)
    ):
        raise ValueError(f"no node group plugin {group['plugin']!r} in {PLUGIN_DIR}")
    with open(config, "w", encoding="utf-8") as f:
        # dumps, not dump: json.dump encodes in Python, chunk by chunk (seconds at this size)
        f.write(
            json.dumps(
                {"plugin": group["plugin"], "params": group["params"], "machines": machines},
                ensure_ascii=False,
            )
        )
    data = InventoryData()
    plugin.parse(data, loader, config, cache=False)
    data.reconcile_inventory()
    hosts = [h for h in data.hosts.values() if not h.implicit]
    if len(hosts) > MAX_HOSTS:
        raise ValueError(f"more than {MAX_HOSTS} hosts")
    out = []
    for host in hosts:
        merged = {**get_group_vars(host.get_groups()), **host.vars}
        out.append(
            [str(host.name), {k: _plain(v) for k, v in merged.items() if k.startswith("ansible_")}]
        )
    return out


def main(argv: list[str] | None = None) -> None:
    """Child entry: read the request on stdin, write the answer to the path given."""

    argv = sys.argv[1:] if argv is None else argv
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    request = json.load(sys.stdin)
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()  # as Ansible's own commands do: collections and FQCNs resolve
    configs = [
        os.path.realpath(os.path.join(os.getcwd(), f"group{number}.yml"))
        for number in range(len(request["groups"]))
    ]
    loader = _config_loader(set(configs))
    answer: dict[str, dict[str, Any]] = {}
    for config, group in zip(configs, request["groups"], strict=True):
        try:
            answer[group["key"]] = {
                "hosts": _parse_group(loader, group, request["machines"], config)
            }
        except MemoryError:
            answer[group["key"]] = {"error": "the inventory source needs too much memory"}
        except Exception as e:
            answer[group["key"]] = {"error": str(e) or type(e).__name__}
    with open(argv[0], "w") as f:
        f.write(json.dumps(answer))


if __name__ == "__main__":
    main()
