"""Node groups resolved through the Ansible inventory plugins of ``inventory_plugins/``.

A node group's ``plugin`` names one of those plugins and its ``params`` go, with the
project's machines, into the plugin's YAML config. Ansible's own plugin loader loads the
plugin, which builds the group's hosts and their variables, the same ones the step's run
then uses.

Parsing runs in a child process (``python -m engine.machines.inventory_child``) under a time
limit: an inventory source may run code (a script, a plugin config), hang, or grow without
bound. The child reads no database and writes nothing but its answer. The parent then admits
what came back: host names must be node names, only ``ansible_*`` variables are kept, none may
hold a Jinja template, and hosts from inline inventory text get only plain connection
variables.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.ansible.playbook import HOST_NAME, VAR_NAME
from engine.errors import Forbidden, InvalidInput
from engine.store import resources
from engine.store.validate import Field

if TYPE_CHECKING:
    from engine.store.settings import Settings

# The child that parses sources imports this module: it needs the engine's parent on its path.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_DIR = resources.folder("inventory_plugins")
SOURCE_PLUGIN = "opsjob"  # the inventory source for the shell, not a node group plugin
OPEN_PLUGINS = ("node", "nodelist")  # their hosts' variables come from the machines only
INLINE_KEYS = ("inventory", "pattern", "format")
ANSIBLE_KEYS = ("path", "inventory", "pattern", "format", "trusted")
JINJA = ("{{", "{%", "{#")
MAX_HOSTS = 10000
MAX_ERROR = 1000
MEMORY_LIMIT = 4 << 30  # bytes of address space the child (and any script it runs) may use
# The only variables inline inventory text may set: they choose where and as whom to log in,
# never what runs on the worker (no local connection, no ssh options, no local files).
INLINE_VARS = {
    "ansible_host": Field(pattern=r"[A-Za-z0-9._:-]+", max_len=255),
    "ansible_port": Field(int, minimum=1, maximum=65535),
    "ansible_user": Field(pattern=r"[A-Za-z0-9._-]+", max_len=64),
    "ansible_connection": Field(choices=("ssh",)),
    "ansible_python_interpreter": Field(pattern=r"/[A-Za-z0-9._/-]+", max_len=200),
    "ansible_become_method": Field(choices=("sudo", "su")),
}
CACHE_SIZE = 512  # results of pure sources kept, newest first
_state: dict[str, Any] = {"timeout": None}
_cache: OrderedDict[Any, Any] = OrderedDict()
_cache_lock = threading.Lock()


def register(huey: Any, settings: "Settings") -> None:
    """Start-up hook (engine.boot.EXTENSIONS): remember how long a resolution may take."""
    _state["timeout"] = settings.inventory_timeout


def _timeout() -> int:
    if _state["timeout"] is None:
        from engine.store.settings import Settings

        _state["timeout"] = Settings.from_env().inventory_timeout
    return _state["timeout"]


# -- what a group may be, checked when it is saved ---------------------------------------------


def plugins() -> list[str]:
    """Names of the node group plugins in ``inventory_plugins/``."""
    try:
        names = os.listdir(PLUGIN_DIR)
    except FileNotFoundError:
        return []
    return sorted(
        n[:-3]
        for n in names
        if n.endswith(".py") and not n.startswith("_") and n[:-3] != SOURCE_PLUGIN
    )


def _inline(params: Any) -> bool:
    """Tell whether ``params`` of the ``ansible`` plugin are untrusted inline inventory text."""
    if isinstance(params, str):
        return "\n" in params.strip()
    return (
        isinstance(params, dict)
        and set(params) <= set(INLINE_KEYS)
        and isinstance(params.get("inventory"), str)
        and bool(params["inventory"])
    )


def privileged(plugin: str, params: Any) -> bool:
    """Tell whether a group of ``plugin`` with ``params`` may make Ansible run code or read
    the worker's files: a path, a script, a plugin config, trusted text, or any plugin but
    the shipped ``node``, ``nodelist`` and inline ``ansible``."""
    if plugin in OPEN_PLUGINS:
        return False
    if plugin == "ansible":
        return not _inline(params)
    return True


def check_group(plugin: str, params: Any, admin: bool) -> None:
    """Check a node group as it is saved by a caller (``admin`` or not)."""
    if plugin == SOURCE_PLUGIN:
        raise InvalidInput(f"plugin: {SOURCE_PLUGIN} is an inventory source, not a group plugin")
    if plugin == "ansible":
        if isinstance(params, dict):
            unknown = sorted(set(params) - set(ANSIBLE_KEYS))
            if unknown:
                raise InvalidInput(
                    f"params: unknown key {unknown[0]!r} (use {', '.join(ANSIBLE_KEYS)})"
                )
        elif not isinstance(params, str):
            raise InvalidInput("params: must be a path, inline inventory text or an object")
        text: Any = params.get("inventory") if isinstance(params, dict) else params
        if _inline(params) and any(m in text for m in JINJA):
            raise InvalidInput(
                "params.inventory: must not hold Jinja ({{, {%, {#): inventory values reach "
                "the nodes literally"
            )
    if privileged(plugin, params) and not admin:
        what = "this plugin" if plugin != "ansible" else "a path, a script or trusted text"
        raise Forbidden(f"params: only an admin may save a node group with {what}")


# -- resolving ----------------------------------------------------------------------------------


@dataclass
class GroupHosts:
    """The hosts of one group: ``[(name, vars)]`` in inventory order, or why there are none."""

    hosts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: str = ""
    # names of hosts that resolved but that the project may not reach (engine.machines.reach); error
    # says why
    refused: list[str] = field(default_factory=list)


def resolve(
    groups: list[dict[str, Any]], machines: list[dict[str, Any]], timeout: int | None = None
) -> dict[str, GroupHosts]:
    """Resolve node groups; return ``{key: GroupHosts}``.

    ``groups`` is ``[{"key", "plugin", "params"}]``; ``machines`` the project's machines as
    ``[{"name", "inip", "exip", "vars"}]``. A group that cannot be resolved gets an error
    saying why (a missing file, bad syntax, a failing script, a disallowed variable, ...).
    """
    results: dict[str, GroupHosts] = {}
    todo = []
    known = set(plugins())
    for group in groups:
        if group["plugin"] not in known:
            results[group["key"]] = GroupHosts(
                error=f"no node group plugin {group['plugin']!r} "
                f"(installed: {', '.join(sorted(known)) or 'none'})"
            )
            continue
        cached = _cached(group, machines)
        if cached is not None:
            results[group["key"]] = cached
        else:
            todo.append(group)
    if todo:
        raw = _run_child(
            {"groups": todo, "machines": machines}, timeout or _timeout(), [g["key"] for g in todo]
        )
        for group in todo:
            answer = raw.get(group["key"]) or {
                "error": "no answer from the inventory parser",
                "transient": True,
            }
            if answer.get("error"):
                results[group["key"]] = GroupHosts(error=_short(answer["error"]))
                if not answer.get("transient"):
                    _remember(group, machines, results[group["key"]])
                continue
            try:
                hosts = _admit(answer["hosts"], restricted=_restricted(group))
            except InvalidInput as e:
                results[group["key"]] = GroupHosts(error=e.info)
            else:
                results[group["key"]] = GroupHosts(hosts=hosts)
            _remember(group, machines, results[group["key"]])
    return results


def _pure_key(group: dict[str, Any], machines: list[dict[str, Any]]) -> str | None:
    """The cache key of a group whose hosts depend on its config alone (a node list, machine
    patterns, inline text), or None for one that reads files or runs code."""
    if privileged(group["plugin"], group["params"]):
        return None
    # a digest: the text holds every machine of the project, too large to keep 512 of
    text = json.dumps([group["plugin"], group["params"], machines], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(group: dict[str, Any], machines: list[dict[str, Any]]) -> GroupHosts | None:
    key = _pure_key(group, machines)
    if key is None:
        return None
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return found


def _remember(group: dict[str, Any], machines: list[dict[str, Any]], result: GroupHosts) -> None:
    key = _pure_key(group, machines)
    if key is None:
        return
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def _restricted(group: dict[str, Any]) -> bool:
    return group["plugin"] == "ansible" and _inline(group["params"])


def _short(text: Any) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _admit(hosts: Any, restricted: bool) -> list[tuple[str, dict[str, Any]]]:
    """Keep what a run may use of the parsed ``hosts``; raise InvalidInput saying what not."""
    out = []
    for name, hostvars in hosts:
        if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
            raise InvalidInput(f"host {name!r}: not a node name ({HOST_NAME.pattern})")
        clean: dict[str, Any] = {}
        for key, value in hostvars.items():
            if not key.startswith("ansible_"):
                continue  # a cmd or scp step uses connection variables only
            where = f"host {name}: {key}"
            if restricted:
                if key not in INLINE_VARS:
                    raise InvalidInput(
                        f"{where}: not allowed in inline inventory text (allowed: "
                        f"{', '.join(INLINE_VARS)}; an admin may use a file source)"
                    )
                value = INLINE_VARS[key].clean(where, value)
            elif not VAR_NAME.fullmatch(key):
                raise InvalidInput(f"{where}: not a variable name")
            elif value is not None and not isinstance(value, (str, int, float, bool)):
                raise InvalidInput(f"{where}: must be a single value")
            if isinstance(value, str) and any(m in value for m in JINJA):
                raise InvalidInput(
                    f"{where}: holds a Jinja template; opsjob passes inventory values literally"
                )
            clean[key] = value
        out.append((name, clean))
    return out


def _ansible_cfg() -> str:
    return (
        "[defaults]\n"
        f"inventory_plugins = {PLUGIN_DIR}\n"
        "nocolor = true\n"
        "deprecation_warnings = false\n"
        "\n[inventory]\n"
        "enable_plugins = host_list, script, auto, yaml, ini, toml\n"
    )


def _run_child(request: dict[str, Any], timeout: int, keys: list[str]) -> dict[str, Any]:
    """Run the parser child on ``request``; return its answer ``{key: {...}}``.

    A child that times out or dies gives every group of the request the same error.
    """
    workdir = tempfile.mkdtemp(prefix="opsjob-inventory-")
    answer_path = os.path.join(workdir, "answer.json")
    # an inventory script needs none of opsjob's settings (database URL, secret key, ...)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOB_")}
    env.update(
        ANSIBLE_CONFIG=os.path.join(workdir, "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "tmp"),
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin"),
    )
    failure: str | None
    try:
        with open(env["ANSIBLE_CONFIG"], "w") as f:
            f.write(_ansible_cfg())
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.machines.inventory_child", answer_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(json.dumps(request).encode(), timeout=timeout)
            failure = None
        except subprocess.TimeoutExpired:
            failure = f"the inventory sources took longer than {timeout} s (stopped)"
        finally:
            _kill_session(proc)  # an inventory script may leave children behind
        if failure is None and proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            failure = f"the inventory parser failed (exit {proc.returncode}): " + " ".join(tail)
        if failure is None:
            try:
                with open(answer_path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                failure = "the inventory parser gave no answer"
        # a timeout or a crashed child says nothing about the configs themselves
        return {key: {"error": failure, "transient": True} for key in keys}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.communicate()


# -- the child ------------------------------------------------------------------------------------
