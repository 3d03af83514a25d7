"""Node groups: named sets of nodes resolved by a plugin from the params the client saved."""

import json
import re
from collections.abc import Iterable
from typing import Any

from engine.errors import Forbidden, InvalidInput
from engine.machines import credentials, inventory, nodes
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Job, Nodegroup, PluginCmd, PluginPlaybook, PluginScp, database
from engine.store.records import in_project, save, soft_delete, unique
from engine.store.validate import Field, check

MAX_PARAMS = 64 * 1024
MAX_DEPTH = 50  # well inside what the JSON encoder and decoder can recurse through
PLUGIN = r"[a-z][a-z0-9_]*"
GROUP_ID = re.compile(r"[1-9][0-9]{0,17}")  # as a step names a group in node_cont/src/dst
FIELDS = ("id", "name", "plugin", "create_user", "create_time", "edit_user", "edit_time")
NODEGROUP = {
    "name": Field(required=True, max_len=100, allow_empty=False),
    "plugin": Field(required=True, pattern=PLUGIN, max_len=100, allow_empty=False),
    "params": Field(object),
    "reach_any": Field(bool, default=False),
    **credentials.NAMED,
}
LIST_FILTERS = {
    "plugin": Field(pattern=PLUGIN, max_len=100),
    "jobname": Field(max_len=200),
}
NODELIST = {"hostvars": Field(bool, default=False)}
# Variables a group's resolved hosts show through the API: where and as whom to connect.
# Anything else an inventory holds (passwords, become secrets, ...) is never returned.
SHOWN_VARS = (
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_connection",
    "ansible_python_interpreter",
    "ansible_ssh_private_key_file",
    "ansible_ssh_common_args",
    "ansible_become_method",
    "ansible_become_user",
)


def _depth(value: Any) -> int:
    """Return how deeply lists and objects nest in ``value`` (without recursing)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            stack.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _encode(value: Any) -> str:
    if _depth(value) > MAX_DEPTH:
        raise InvalidInput(f"params: nested deeper than {MAX_DEPTH} levels")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InvalidInput("params: must be plain JSON (no NaN or Infinity)") from None
    if len(text.encode()) > MAX_PARAMS:
        raise InvalidInput(f"params: larger than {MAX_PARAMS} bytes once encoded as JSON")
    return text


def _group_id(text: str) -> int | None:
    return int(text) if GROUP_ID.fullmatch(text) else None


def _users(projectid: int, group_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Map group id -> names of the project's permanent jobs whose current steps use it.

    ``group_ids`` limits the search; None means every group. Two queries, whatever the count.
    """

    def current(model: Any, *where: Any) -> Any:
        query = (
            model.select(model, Job.name.alias("jobname"), Job.uuids.alias("jobuuids"))
            .join(Job, on=(model.jobuuid == Job.uuid))
            .where(Job.projectid == projectid, Job.status == "permanent", *where)
        )
        return query.objects()

    wanted = None if group_ids is None else [str(i) for i in group_ids]
    if wanted == []:
        return {}
    cmd_where = [PluginCmd.node_type == "group"]
    scp_where = [(PluginScp.src_type == "group") | (PluginScp.dst_type == "group")]
    if wanted is not None:
        cmd_where.append(PluginCmd.node_cont.in_(wanted))
        scp_where.append(PluginScp.src.in_(wanted) | PluginScp.dst.in_(wanted))
    found: dict[int, set[str]] = {}

    def add(step: Any, prefix: str, group_text: str) -> None:
        gid = _group_id(group_text)
        if gid is not None and f"{prefix}_{step.uuid}" in step.jobuuids.split(","):
            found.setdefault(gid, set()).add(step.jobname)

    for step in current(PluginCmd, *cmd_where):
        add(step, "cmd", step.node_cont)
    playbook_where = [PluginPlaybook.node_type == "group"]
    if wanted is not None:
        playbook_where.append(PluginPlaybook.node_cont.in_(wanted))
    for step in current(PluginPlaybook, *playbook_where):
        add(step, "playbook", step.node_cont)
    for step in current(PluginScp, *scp_where):
        if step.src_type == "group":
            add(step, "scp", step.src)
        if step.dst_type == "group":
            add(step, "scp", step.dst)
    return {gid: ",".join(sorted(names)) for gid, names in found.items()}


def _find(projectid: int, group_id: int | str) -> Any:
    return in_project(Nodegroup, projectid, "id", group_id, "node group")


def list_nodegroups(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's node groups with the jobs using each, newest first.

    Filters: the common ones, ``plugin`` (exact) and ``jobname`` (substring of the job list).
    """
    values = check(params, LIST_FILTERS)
    query = Nodegroup.select().where(
        Nodegroup.projectid == projectid, Nodegroup.status != "deleted"
    )
    query = common_filters(query, Nodegroup, params)
    if values["plugin"]:
        query = query.where(Nodegroup.plugin == values["plugin"])
    users: dict[int, str] | None = None
    if values["jobname"]:
        users = _users(projectid)
        needle = values["jobname"].lower()
        query = query.where(
            Nodegroup.id.in_([gid for gid, names in users.items() if needle in names.lower()])
        )
    rows = list(paged(query.order_by(Nodegroup.id.desc()), params))
    if users is None:
        users = _users(projectid, [r.id for r in rows])
    return [{**as_dict(r, FIELDS), "jobname": users.get(r.id, "")} for r in rows]


def get_nodegroup(projectid: int, group_id: int | str) -> dict[str, Any]:
    """Return one node group with its params as the client sent them."""
    row = _find(projectid, group_id)
    return {
        **as_dict(row, FIELDS),
        "jobname": _users(projectid, [row.id]).get(row.id, ""),
        "params": json.loads(row.params),
        "credential": row.credential,
        "reach_any": bool(row.reach_any),
    }


def save_nodegroup(
    projectid: int,
    params: dict[str, Any],
    user: str,
    group_id: int | str | None = None,
    admin: bool = False,
) -> int:
    """Create a node group, or edit one of the project's; return its id.

    Only an ``admin`` may save a group whose inventory source is a path, a script, a plugin
    config or trusted text, and only such a group may an admin mark ``reach_any``: its hosts
    may then be outside the project's machines. ``credential`` names the credential (of this
    project or of project 0) its hosts log in with.
    """
    values = check(params, NODEGROUP)
    inventory.check_group(values["plugin"], values["params"], admin)
    if values["reach_any"]:
        if not admin:
            raise Forbidden("reach_any: only an admin may let a node group reach other hosts")
        if not inventory.privileged(values["plugin"], values["params"]):
            raise InvalidInput(
                "reach_any: only a group that only an admin may save (a path, a script, "
                "trusted text or an admin plugin) may reach hosts outside the machine list"
            )
    values["params"] = _encode(values["params"])
    values["credential"] = credentials.check_usable(projectid, params.get("credential"))
    with database.atomic(), unique("name", values["name"]):
        row = None if group_id is None else _find(projectid, group_id)
        return save(Nodegroup, projectid, values, user, row).id


def nodelist(
    projectid: int, group_id: int | str, params: dict[str, Any]
) -> list[str] | dict[str, dict[str, Any]]:
    """Resolve one of the project's node groups: its host names, or with ``hostvars`` a map
    of each host to its connection variables. A source that cannot be resolved is a 400
    naming the group and the cause."""
    values = check(params, NODELIST)
    group = _find(projectid, group_id)
    result = nodes.group_hosts(projectid, [group])[group.id]
    if result.error:
        raise InvalidInput("params: " + nodes.group_problem(group, result))
    if not values["hostvars"]:
        return [name for name, _ in result.hosts]
    return {
        name: {k: v for k, v in hostvars.items() if k in SHOWN_VARS}
        for name, hostvars in result.hosts
    }


def delete_nodegroup(projectid: int, group_id: int | str, user: str) -> bool:
    """Soft delete a node group; its name becomes free again."""
    return soft_delete(_find(projectid, group_id), user)
