"""The command console: run a typed command on some of a project's nodes, and log every one.

A command runs as a single cmd step (a ``plugin_cmd`` task named ``console``) on the workers,
exactly like any other step: the same node checks, the same playbook and runner, the same
kill and log. The call queues the task and answers at once with its uuid; :func:`result`
then tells each node's output and exit code as they come. No request waits for a command,
API nodes need no SSH access to the machines, and every command shows up in the task history.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from engine.errors import Forbidden, InvalidInput
from engine.machines import nodes
from engine.run import control, tasks
from engine.store.listing import DATE, as_dict, paged, time_range
from engine.store.models import CmdLog, PluginCmd
from engine.store.validate import NO_CONTROL, NODES, Field, check

if TYPE_CHECKING:
    from engine.access.auth import Principal
    from engine.run.shapes import HostView

MAX_TIMEOUT = 60  # seconds a console command may run on a node
FINAL = ("success", "fail", "refuse")
LOG_FIELDS = ("id", "user", "node", "usr", "cmd", "time")

RUN = {
    "node": Field(required=True, pattern=NODES, max_len=2000, allow_empty=False),
    "sudo": Field(default="", pattern=r"[A-Za-z][0-9A-Za-z_-]+", max_len=40),
    "cmd": Field(required=True, pattern=NO_CONTROL, max_len=4000, allow_empty=False),
    "timeout": Field(int, default=30, minimum=1, maximum=MAX_TIMEOUT),
}
LOG = {
    "user": Field(max_len=100),
    "node": Field(max_len=2000),
    "usr": Field(max_len=40),
    "cmd": Field(max_len=4000),
    "time_start": Field(pattern=DATE),
    "time_end": Field(pattern=DATE),
}


class NodeOutput(TypedDict):
    node: str
    status: str  # a host result's status, or "pending"
    rc: int | None
    stdout: str
    stderr: str


class CommandResult(TypedDict):
    """A console command (:func:`run`, :func:`result`)."""

    uuid: str
    status: str  # the task's
    done: bool
    nodes: list[NodeOutput]


def run(projectid: int, params: dict[str, Any], principal: "Principal") -> CommandResult:
    """Queue ``cmd`` on ``node`` (a comma list) as ``sudo`` (empty: the login account).

    Return at once what :func:`result` returns (every node ``pending``); follow it by ``uuid``.
    """
    values = check(params, RUN)
    names = nodes.split(values["node"])
    try:
        refused = nodes.resolve(projectid, "builtin", ",".join(names), {}).refused
    except InvalidInput as e:  # a host of a group the project may not reach, a credential gone
        raise Forbidden(f"node: {e.info}") from None
    if refused:
        raise Forbidden(f"node: not machines of project {projectid}: {','.join(refused)}")
    CmdLog.create(
        projectid=projectid,
        user=principal.name,
        node=",".join(sorted(names)),
        usr=values["sudo"],
        cmd=values["cmd"],
    )
    started = tasks.run_step(
        projectid,
        "cmd",
        {
            "name": "console",
            "user": values["sudo"],
            "node_type": "builtin",
            "node_cont": ",".join(names),
            "scripts_type": "shell",
            "scripts_cont": values["cmd"],
            "timeout": values["timeout"],
        },
        principal,
    )
    return _shape(started["uuid"], "init", names, {})


def result(projectid: int, uuid: str) -> CommandResult:
    """Return ``{uuid, status, done, nodes: [{node, status, rc, stdout, stderr}]}`` of a
    console command; a node still running is ``pending``."""
    task = tasks.task_of(projectid, uuid, field="uuid")
    plan = PluginCmd.get_or_none(PluginCmd.uuid == task.jobuuid)
    names = nodes.split(plan.node_cont) if plan is not None else []
    results = {r["host"]: r for r in control.host_results(task.uuid, latest_only=True)}
    return _shape(task.uuid, task.status, names or list(results), results)


def _shape(
    uuid: str, status: str, names: list[str], results: Mapping[str, "HostView"]
) -> CommandResult:
    return {
        "uuid": uuid,
        "status": status,
        "done": status in FINAL,
        "nodes": [
            {
                "node": name,
                "status": results[name]["status"] if name in results else "pending",
                "rc": results[name]["rc"] if name in results else None,
                "stdout": results[name]["stdout"] if name in results else "",
                "stderr": results[name]["stderr"] if name in results else "",
            }
            for name in names
        ],
    }


def log(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's console commands, newest first (filters: user, node, usr, cmd as
    substrings; time_start, time_end as dates; paging)."""
    values = check(params, LOG)
    query = CmdLog.select().where(CmdLog.projectid == projectid)
    for column in ("user", "node", "usr", "cmd"):
        if values[column]:
            query = query.where(getattr(CmdLog, column).contains(values[column]))
    query = time_range(query, CmdLog.time, "time_start", "time_end", values)
    return [as_dict(r, LOG_FIELDS) for r in paged(query.order_by(CmdLog.id.desc()), params)]
