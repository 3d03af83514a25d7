"""Compile one cmd or scp step into the files of an ansible-runner private data dir.

This module is pure: it returns text and bytes and touches nothing. ``engine.ansible.runner``
writes the result to disk and runs it.

User text (script content, argv, ``wk_*`` values, paths, owner, mode) never appears in a
playbook or an inventory value that Ansible would template. It travels inside the bash scripts
of :mod:`engine.ansible.nodescripts`, which the ``opsjob_node`` action sends to the node on the
standard input of the one command that runs them, without templating. The playbooks hold only
our own text plus checked identifiers: host names, numbers, the run id and the become user.
After a cancel, the cleanup playbook kills the process groups those scripts recorded on the
nodes; a mark whose script never started stays behind as an empty file.
"""

import os
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from engine.ansible import nodescripts
from engine.ansible.inventoryfile import inventory_yaml
from engine.ansible.inventoryfile import yaml_value as _yaml_value  # noqa: F401  (playbook steps)
from engine.ansible.nodescripts import KILL_AFTER, run_script  # noqa: F401  (part of the compile API)
from engine.errors import InvalidInput
from engine.store import resources

TEMPLATES = resources.folder("playbooks_templates")

# Names the runner relies on to read results back from events.
SOURCE_PLAY = "opsjob source"
TARGET_PLAY = "opsjob targets"
RESULT_TASK = {"cmd": "opsjob: run", "scp": "opsjob: unpack"}
SOURCE_RESULT_TASK = "opsjob: fetch"
# Tasks one host goes through, one after the other (bounds the whole run's duration).
TASKS_PER_HOST = {"cmd": 1, "scp": 2, "playbook": 1}
SOURCE_GROUP = "opsjob_source"
TARGET_GROUP = "opsjob_targets"
TASK_GRACE = 15  # seconds the Ansible task timeout allows over the node-side one (a backstop)

INTERPRETERS = ("shell", "python", "perl", "php", "auto")
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BECOME_USER = re.compile(r"[A-Za-z0-9_-]+")
RUN_ID = re.compile(r"[a-f0-9]{8,32}")
SECRET_IDENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHOWN = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?"
    r"|:[A-Za-z0-9_][A-Za-z0-9_.-]*"
)
CHMOD = re.compile(r"[0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*")


@dataclass(frozen=True)
class Secret:
    """Login secrets of one credential for one run. Never printed: the runner writes them to
    files of the run's private data dir (mode 0600) that it removes afterwards."""

    ident: str  # names the key file and the SSH master connections; holds no secret
    ssh_key: str = field(default="", repr=False)
    become_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Host:
    """One target: its inventory name, the Ansible connection variables that reach it, and
    the secrets of its credential (None: the worker's own SSH configuration)."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    secret: Secret | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Compiled:
    """Everything a run needs, as data: playbooks, files and who counts as a target."""

    kind: str  # "cmd" or "scp"
    run_id: str  # names the node-side files of this run
    playbook: str  # project/main.yml
    cleanup: str  # project/cleanup.yml, run only after a cancel
    files: dict[str, bytes]  # path relative to the private data dir
    links: dict[str, str]  # path relative to the private data dir -> existing local file
    targets: tuple[str, ...]  # host names whose results count, in step order
    source: str | None  # scp: the source host name (None for cmd or a local file)
    timeout: int  # per-node timeout in seconds
    secrets: tuple[tuple[str, Secret], ...] = ()  # of the hosts that log in with a credential
    tree: str | None = None  # playbook: a local directory copied to project/src
    entry: str = "main.yml"  # the playbook ansible-playbook runs, relative to project/
    args: tuple[str, ...] = ()  # playbook: further ansible-playbook arguments
    reach: frozenset[tuple[str, str]] = frozenset()  # playbook: (address, port) it may reach
    network: bool = False  # playbook: an admin lets it reach the worker's whole network


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    block_start_string="[%",
    block_end_string="%]",
    variable_start_string="[[",
    variable_end_string="]]",
    comment_start_string="[#",
    comment_end_string="#]",
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def _render(name: str, **values: Any) -> str:
    """Render one of our playbook templates; every value must be an identifier or a number."""
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            continue
        if not isinstance(value, int) and not re.fullmatch(r"[A-Za-z0-9_.-]*", value):
            raise ValueError(f"{key}: not an identifier: {value!r}")
    return _ENV.get_template(name).render(**values)


def _check_text(name: str, value: Any, max_len: int = 1 << 20) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: must be a string")
    if "\x00" in value:
        raise InvalidInput(f"{name}: must not contain NUL")
    if len(value) > max_len:
        raise InvalidInput(f"{name}: longer than {max_len} characters")
    return value


def _check_timeout(timeout: Any) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 86400:
        raise InvalidInput("timeout: must be an integer between 1 and 86400")
    return timeout


def _check_become(user: str | None) -> str:
    user = user or ""
    if user and not BECOME_USER.fullmatch(user):
        raise InvalidInput(f"user: must match {BECOME_USER.pattern}")
    return user


def becomes(host: Host, user: str) -> bool:
    """Whether a step for ``user`` must become that user on ``host`` (sudo, or the host's
    ``ansible_become_method``). Not when ``user`` is empty or is the host's login user, so a
    node without sudo runs a step for the account it is reached as. A host whose login user
    the controller does not know (no ``ansible_user``: the worker's own SSH configuration or
    local account decides) becomes: a step never runs as an account it did not name."""
    if not user:
        return False
    login = host.vars.get("ansible_user") or host.vars.get("ansible_ssh_user")
    return login != user


def _run_id(run_id: str | None) -> str:
    run_id = run_id or uuid.uuid4().hex[:16]
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id: must match {RUN_ID.pattern}")
    return run_id


def _check_hosts(field_name: str, hosts: Iterable[object]) -> list[Host]:
    out = []
    for host in hosts:
        if not isinstance(host, Host) or not HOST_NAME.fullmatch(host.name or ""):
            raise InvalidInput(f"{field_name}: bad node name {getattr(host, 'name', host)!r}")
        for key, value in host.vars.items():
            if not VAR_NAME.fullmatch(key) or key.startswith("oj_"):
                raise InvalidInput(f"{field_name}: bad variable name {key!r} for {host.name}")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise InvalidInput(f"{field_name}: variable {key} of {host.name} must be a scalar")
            if isinstance(value, str):
                _check_text(field_name, value, 4096)
        secret = host.secret
        if secret is not None and (
            not isinstance(secret, Secret) or not SECRET_IDENT.fullmatch(secret.ident)
        ):
            raise InvalidInput(f"{field_name}: bad credential for {host.name}")
        out.append(host)
    names = [h.name for h in out]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{field_name}: duplicate node")
    return out


def _secrets(hosts: Iterable[Host]) -> tuple[tuple[str, Secret], ...]:
    """``(name, Secret)`` of every host that logs in with a credential, each name once."""
    found: dict[str, Secret] = {}
    for host in hosts:
        if host.secret is not None:
            found.setdefault(host.name, host.secret)
    return tuple(found.items())


def _inventory(roles: Iterable[tuple[Host, str]]) -> dict[str, dict[str, Any]]:
    """``roles`` is ``[(Host, tag letters)]`` in order; give each host a slot and its tags."""
    slots: dict[str, int]
    hosts, slots = {}, {}
    for host, letters in roles:
        if host.name not in slots:
            slots[host.name] = len(slots)
            hosts[host.name] = {"oj_slot": slots[host.name], "oj_tags": "", **host.vars}
        slot = slots[host.name]
        tags = hosts[host.name]["oj_tags"].split()
        tags += [f"{letter}{slot}" for letter in letters]
        hosts[host.name]["oj_tags"] = " ".join(tags)
    return hosts


def compile_cmd(
    hosts: Sequence[Host],
    script: str,
    script_type: str,
    argv: str | None = "",
    env: Mapping[str, str] | None = None,
    become_user: str | None = "",
    timeout: int = 60,
    run_id: str | None = None,
) -> Compiled:
    """Compile a cmd step: run ``script`` with ``argv`` and ``env`` on every host.

    ``hosts`` is a list of :class:`Host`; ``script_type`` one of shell, python, perl, php,
    auto; ``argv`` the already-substituted raw argument string; ``env`` the ``wk_*`` variables;
    ``become_user`` the account to sudo to (empty or a host's login user: no sudo on that
    host, see :func:`becomes`); ``timeout`` per node.
    """
    hosts = _check_hosts("node", hosts)
    if not hosts:
        raise InvalidInput("node: no nodes to run on")
    if script_type not in INTERPRETERS:
        raise InvalidInput(f"scripts_type: must be one of {', '.join(INTERPRETERS)}")
    content = nodescripts.collapse_trailing_blank_lines(_check_text("scripts_cont", script))
    argv = _check_text("scripts_argv", argv or "", 65536)
    env = dict(env or {})
    for key, value in env.items():
        if not VAR_NAME.fullmatch(key):
            raise InvalidInput(f"variable: bad environment name {key!r}")
        _check_text(f"variable: {key}", value, 65536)
    become_user = _check_become(become_user)
    timeout = _check_timeout(timeout)
    run_id = _run_id(run_id)
    inventory = _inventory([(h, "c") for h in hosts])
    if not any(becomes(h, become_user) for h in hosts):
        become_user = ""  # every host logs in as the step's user already
    elif become_user:
        for h in hosts:
            inventory[h.name]["oj_become"] = becomes(h, become_user)
    return Compiled(
        kind="cmd",
        run_id=run_id,
        playbook=_render(
            "cmd.yml.j2",
            run_id=run_id,
            become_user=become_user,
            task_timeout=timeout + KILL_AFTER + TASK_GRACE,
        ),
        cleanup=_render("cleanup.yml.j2", run_id=run_id, become_user=become_user),
        files={
            "project/files/run.sh": nodescripts.run_script(
                run_id, timeout, content, script_type, argv, env
            ).encode("utf-8"),
            "inventory/hosts.yml": inventory_yaml(
                inventory, {TARGET_GROUP: [h.name for h in hosts]}
            ).encode("utf-8"),
        },
        links={},
        targets=tuple(h.name for h in hosts),
        source=None,
        timeout=timeout,
        secrets=_secrets(hosts),
    )


# ---------------------------------------------------------------------------------------------
# scp


def scp_paths(sp: str, dp: str) -> tuple[str, str]:
    """Apply OpenC3's trailing-slash rules; return ``(sp, dp)``.

    ``sp`` ending in ``/`` syncs a directory, so ``dp`` gets a trailing ``/``; otherwise a
    ``dp`` ending in ``/`` gets ``basename(sp)`` appended.
    """
    if sp.endswith("/"):
        if not dp.endswith("/"):
            dp += "/"
    elif dp.endswith("/"):
        dp += posixpath.basename(sp)
    return sp, dp


def _source_entry(source, targets):
    """The scp source as the inventory holds it. A target of the same name that logs in
    otherwise (its group's credential or user) shares the machine, not the login: the source
    then gets an entry of its own, so that each end of the copy logs in as itself."""
    same = next((t for t in targets if t.name == source.name), None)
    if same is None or (same.vars == source.vars and same.secret == source.secret):
        return source
    names = {t.name for t in targets}
    alias = f"{source.name}.source"
    while alias in names:
        alias += "_"
    return Host(alias, {"ansible_host": source.name, **source.vars}, source.secret)


def compile_scp(
    source: Host | None,
    sp: str,
    targets: Sequence[Host],
    dp: str,
    *,
    chown: str | None = "",
    chmod: str | None = "",
    delete: bool = False,
    timeout: int = 60,
    local_source: str | None = None,
    run_id: str | None = None,
) -> Compiled:
    """Compile an scp step: copy ``sp`` from ``source`` to ``dp`` on every target.

    ``source`` is a :class:`Host`, or None with ``local_source`` naming a file on this machine
    (the file store; ``sp`` is then its file name). The copy goes node -> controller -> node.
    ``chown`` / ``chmod`` apply to what arrived (recursively for a directory); ``delete``
    removes files at a directory destination that the source does not have.
    """
    targets = _check_hosts("dst", targets)
    if not targets:
        raise InvalidInput("dst: no nodes to copy to")
    sp = _check_text("sp", sp, 4096)
    dp = _check_text("dp", dp, 4096)
    if not sp:
        raise InvalidInput("sp: is required")
    if not dp:
        raise InvalidInput("dp: is required")
    chown = _check_text("chown", chown or "", 200)
    chmod = _check_text("chmod", chmod or "", 200)
    if chown and not CHOWN.fullmatch(chown):
        raise InvalidInput("chown: must be user, user:group or :group")
    if chmod and not CHMOD.fullmatch(chmod):
        raise InvalidInput("chmod: must be an octal or symbolic mode")
    timeout = _check_timeout(timeout)
    run_id = _run_id(run_id)
    if (source is None) == (local_source is None):
        raise InvalidInput("src: give either a source node or a file-store file")
    if local_source is not None:
        if sp.endswith("/") or posixpath.basename(sp) in ("", ".", ".."):
            raise InvalidInput("sp: must name a file")
        if not isinstance(local_source, str) or not os.path.isabs(local_source):
            raise ValueError("local_source: must be an absolute path")
    else:
        _check_hosts("src", [source])
    sp, dp = scp_paths(sp, dp)
    shown = source.name if source else None
    if source:
        source = _source_entry(source, targets)
    base = posixpath.basename(sp.rstrip("/")) or "."
    payload = "payload.bin" if local_source else "payload.tar"
    roles = ([(source, "p")] if source else []) + [(h, "u") for h in targets]
    groups = {TARGET_GROUP: [h.name for h in targets]}
    if source:
        groups[SOURCE_GROUP] = [source.name]
    files = {
        "project/files/unpack.sh": nodescripts.unpack_script(
            run_id, timeout, dp, base, local_source, delete, chown, chmod
        ).encode("utf-8"),
        "inventory/hosts.yml": inventory_yaml(_inventory(roles), groups).encode("utf-8"),
    }
    if source:
        files["project/files/pack.sh"] = nodescripts.pack_script(run_id, timeout, sp).encode(
            "utf-8"
        )
    return Compiled(
        kind="scp",
        run_id=run_id,
        playbook=_render(
            "scp.yml.j2",
            run_id=run_id,
            remote_source=bool(source),
            payload=payload,
            task_timeout=timeout + KILL_AFTER + TASK_GRACE,
        ),
        cleanup=_render("cleanup.yml.j2", run_id=run_id, become_user=""),
        files=files,
        links={f"project/{payload}": local_source} if local_source else {},
        targets=tuple(h.name for h in targets),
        source=shown,
        timeout=timeout,
        secrets=_secrets(([source] if source else []) + targets),
    )
