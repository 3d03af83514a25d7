"""Plan a playbook step (the playbook part of :func:`engine.run.stepplan.plan_step`).

Nodes resolve as for cmd; ``$variables`` are substituted in the node list, source, playbook
and tags, and checked again after substitution. ``make(targets)`` fetches the source (cached
per worker) and compiles; a dry run also calls ``check(compiled)``, a ``--syntax-check``.
"""

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.ansible import playbook
from engine.errors import InvalidInput
from engine.playbooks import sandbox as playbook_sandbox
from engine.playbooks import source as playbook_source
from engine.playbooks import step as playbook_step

if TYPE_CHECKING:
    from engine.machines.nodes import Resolution
    from engine.store.settings import Settings


def plan_playbook(
    plan: Any,
    projectid: int,
    step: Mapping[str, Any],
    values: Mapping[str, Any],
    settings: "Settings",
    sub: Callable[[str], str],
    hosts: Callable[[str, str], "Resolution"],
) -> None:
    """Fill ``plan`` (an :class:`engine.run.stepplan.StepPlan`) for the playbook ``step``."""
    found = hosts(step["node_type"], step["node_cont"])
    source, entry = sub(step["source"]), sub(step["playbook"])
    tags, skip_tags = sub(step["tags"]), sub(step["skip_tags"])
    if not plan.missing:
        try:
            playbook_source.parse(source)
            playbook_source.check_entry(entry)
        except InvalidInput as e:
            plan.problems.append(e.info)
    refused = playbook_sandbox.refusal(settings, projectid)
    if refused:
        plan.problems.append(refused)
    plan.targets, plan.refused = found.hosts, found.refused
    plan.args = {
        "user": step["user"],
        "source": source,
        "playbook": entry,
        "tags": tags,
        "skip_tags": skip_tags,
        "check": bool(step["check"]),
        "diff": bool(step["diff"]),
        "verbosity": int(step["verbosity"]),
        "timeout": int(step["timeout"]),
    }
    extra = {k: v for k, v in values.items() if v is not None}

    def make(targets: list[playbook.Host], syntax_only: bool = False) -> playbook.Compiled:
        tree = playbook_source.fetch(settings, projectid, source)
        return playbook_step.compile_playbook(
            [_key_inside(host, settings) for host in targets],
            tree,
            entry,
            extra_vars=extra,
            tags=tags,
            skip_tags=skip_tags,
            check=bool(step["check"]),
            diff=bool(step["diff"]),
            verbosity=int(step["verbosity"]),
            become_user=step["user"],
            timeout=int(step["timeout"]),
            syntax_only=syntax_only,
            network=playbook_sandbox.networked(settings, projectid),
        )

    plan.make = make


def dry_run(plan: Any, settings: "Settings", workdir: str) -> list[str]:
    """Fetch the source and syntax-check the playbook against the inventory; return the
    problems found (none touches a node)."""
    from engine.ansible import runner

    try:
        compiled = plan.make(plan.targets, syntax_only=True)
    except InvalidInput as e:
        return [e.info]
    complaint = runner.syntax_check(compiled, workdir, settings)
    return [complaint] if complaint else []


def _key_inside(host: playbook.Host, settings: "Settings") -> playbook.Host:
    """A contained run sees no key file of the worker: a host whose connection variables name
    one (an admin set them on the machine) gets its content as a run secret instead, which the
    run's agent offers (engine.playbooks.agent).

    Only a private key outside ``$OPSJOB_HOME`` is taken."""
    path = host.vars.get("ansible_ssh_private_key_file")
    if host.secret is not None or not isinstance(path, str) or not os.path.isabs(path):
        return host
    real = os.path.realpath(path)
    if real.startswith(os.path.realpath(settings.home).rstrip("/") + "/"):
        return host
    try:
        with open(real, "rb") as f:
            data = f.read(16 * 1024 + 1)
    except OSError:
        return host
    if len(data) > 16 * 1024 or b"PRIVATE KEY-----" not in data:
        return host
    ident = "hk" + hashlib.sha256(real.encode()).hexdigest()[:16]
    rest = {k: v for k, v in host.vars.items() if k != "ansible_ssh_private_key_file"}
    secret = playbook.Secret(ident, ssh_key=data.decode("ascii", "replace"))
    return playbook.Host(host.name, rest, secret)
