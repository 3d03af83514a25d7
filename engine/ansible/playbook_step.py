"""Compile a playbook step: the team's own playbook, its inventory and its extra vars.

Beside the compile API of :mod:`engine.ansible.playbook` (whose helpers it uses); pure, like
it. The source tree was fetched by :mod:`engine.ansible.playbook_source`; the runner copies it
to ``project/src``.
User text reaches Ansible only as checked tag names, a checked relative file name, and
extra vars tagged ``!unsafe``.
"""

import os
import re

from engine.ansible import playbook
from engine.ansible.playbook_source import check_entry
from engine.errors import InvalidInput

EXTRA_VARS = "opsjob-extra-vars.yml"  # in project/, next to the source tree
# Names Ansible gives a meaning of its own: a job variable never overrides them.
MAGIC_VARS = frozenset(
    "hostvars groups group_names inventory_hostname inventory_hostname_short inventory_dir "
    "inventory_file playbook_dir play_hosts omit environment vars role_name role_path "
    "role_names".split()
)


def extra_vars_yaml(values):
    """The job's variables as an extra-vars file, each string tagged ``!unsafe``.

    Return ``(text, skipped names)``: names that are not identifiers, or that would override
    Ansible's own variables (connection settings included), are left out.
    """
    lines, skipped = [], []
    for name, value in sorted(values.items()):
        if (
            not playbook.VAR_NAME.fullmatch(name)
            or name.startswith(("ansible_", "oj_"))
            or name in MAGIC_VARS
            or not isinstance(value, (str, int, float, bool, type(None)))
        ):
            skipped.append(name)
            continue
        lines.append(f"{name}: {playbook._yaml_value(value)}")
    return ("\n".join(lines) + "\n" if lines else "{}\n"), skipped


def compile_playbook(
    hosts,
    tree,
    entry,
    *,
    extra_vars=None,
    tags="",
    skip_tags="",
    check=False,
    diff=False,
    verbosity=0,
    become_user="",
    timeout=600,
    syntax_only=False,
    run_id=None,
):
    """Compile a playbook step: run ``entry`` of the local directory ``tree`` on ``hosts``.

    The inventory holds only ``hosts`` and every play is limited to them. ``extra_vars`` (the
    job's variables) reach the playbook as unsafe extra vars, never templated. ``timeout``
    bounds the whole playbook run. ``syntax_only`` compiles a ``--syntax-check``.
    """
    hosts = playbook._check_hosts("node", hosts)
    if not hosts:
        raise InvalidInput("node: no nodes to run on")
    entry = check_entry(entry)
    if not isinstance(tree, str) or not os.path.isabs(tree):
        raise ValueError("tree: must be an absolute path")
    if not os.path.isfile(os.path.join(tree, entry)):
        raise InvalidInput(f"playbook: {entry} is not a file of the source")
    for name, value in (("tags", tags), ("skip_tags", skip_tags)):
        if value and not re.fullmatch(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*", value):
            raise InvalidInput(f"{name}: must be comma-separated tag names")
    if isinstance(verbosity, bool) or not isinstance(verbosity, int) or not 0 <= verbosity <= 4:
        raise InvalidInput("verbosity: must be an integer between 0 and 4")
    become_user = playbook._check_become(become_user)
    timeout = playbook._check_timeout(timeout)
    run_id = playbook._run_id(run_id)
    text, _ = extra_vars_yaml(extra_vars or {})
    args = ["--limit", playbook.TARGET_GROUP, "-e", "@" + EXTRA_VARS]
    if syntax_only:
        args.append("--syntax-check")
    if tags:
        args += ["--tags", tags]
    if skip_tags:
        args += ["--skip-tags", skip_tags]
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    if become_user:
        args += ["--become", "--become-user", become_user]
    if verbosity:
        args.append("-" + "v" * verbosity)
    inventory = {h.name: dict(h.vars) for h in hosts}
    return playbook.Compiled(
        kind="playbook",
        run_id=run_id,
        playbook="# unused: a playbook step runs src/ENTRY\n",
        cleanup=playbook._render("cleanup.yml.j2", run_id=run_id, become_user=""),
        files={
            "inventory/hosts.yml": playbook.inventory_yaml(
                inventory, {playbook.TARGET_GROUP: [h.name for h in hosts]}
            ).encode("utf-8"),
            f"project/{EXTRA_VARS}": text.encode("utf-8"),
        },
        links={},
        targets=tuple(h.name for h in hosts),
        source=None,
        timeout=timeout,
        secrets=playbook._secrets(hosts),
        tree=tree,
        entry="src/" + entry,
        args=tuple(args),
    )
