"""Plan one step: resolve its nodes, substitute its variables and prepare its playbook.

Both the worker (before it runs a step) and the third-party dry-run (which runs nothing) use
:func:`plan_step`, so a dry-run reports exactly what a run would refuse. Planning reads the
database (machines, groups, cited scripts, the file store) but writes nothing.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.ansible import playbook
from engine.catalog import argv as shellargv
from engine.catalog import variables
from engine.errors import InvalidInput
from engine.files import filestore
from engine.machines import nodes
from engine.run.shapes import Resolved
from engine.store.models import Script

if TYPE_CHECKING:
    from engine.store.models import Task
    from engine.store.settings import Settings

# Where a step that pulls into the file store copies to: the controller itself.
STORE_HOST = "opsjob-file-store"


@dataclass
class StepPlan:
    """What one step would do, and what stops it from running."""

    kind: str  # "cmd", "scp", "playbook" or "approval"
    targets: list[playbook.Host] = field(default_factory=list)  # of the project
    refused: list[str] = field(default_factory=list)  # node names outside the project
    missing: list[str] = field(default_factory=list)  # undefined variables, in order of use
    problems: list[str] = field(default_factory=list)  # other reasons it cannot run
    make: Callable[[list[playbook.Host]], playbook.Compiled] | None = None
    args: dict[str, Any] = field(default_factory=dict)  # the substituted arguments, for display
    pull_to_store: bool = False  # an scp whose destination is the project's file store

    @property
    def runnable(self) -> bool:
        """Whether nothing stops the step (a refused node is judged per run, by the caller)."""
        return not self.missing and not self.problems


def _adder(target: list[str]) -> Callable[[Iterable[str]], None]:
    def add(names: Iterable[str]) -> None:
        target.extend(n for n in names if n not in target)

    return add


def plan_step(
    projectid: int,
    step: dict[str, Any],
    values: dict[str, Any],
    *,
    settings: "Settings",
    staging: str | None = None,
) -> StepPlan:
    """Plan ``step`` (a stored step as :func:`engine.catalog.steps.shape` gives it, plus ``kind``).

    ``values`` are the run's variables (:func:`engine.catalog.variables.run_values`);
    ``staging`` the directory a pull into the file store lands in first.
    """
    plan = StepPlan(kind=step["kind"])
    missing = _adder(plan.missing)

    def sub(text: str) -> str:
        out, gone = variables.substitute(text, values)
        missing(gone)
        return out

    def hosts(kind: str, text: str) -> nodes.Resolution:
        try:
            return nodes.resolve(projectid, kind, text, values)
        except nodes.VariableUndefined as e:
            missing(e.names)
            return nodes.Resolution([], [])

    if plan.kind == "playbook":
        from engine.playbooks.plan import plan_playbook

        plan_playbook(plan, projectid, step, values, settings, sub, hosts)
    elif plan.kind == "cmd":
        _plan_cmd(plan, projectid, step, values, sub, hosts)
    elif plan.kind == "approval":  # no node: the approvers, as the step will ask them
        plan.args = {"approver": sub(step["approver"]), "everyone": step["everyone"]}
        plan.args["timeout"] = int(step["timeout"])
    else:
        _plan_scp(plan, projectid, step, settings, staging, sub, hosts)
    return plan


Sub = Callable[[str], str]
Hosts = Callable[[str, str], nodes.Resolution]


def _plan_cmd(
    plan: StepPlan,
    projectid: int,
    step: dict[str, Any],
    values: dict[str, Any],
    sub: Sub,
    hosts: Hosts,
) -> None:
    found = hosts(step["node_type"], step["node_cont"])
    argv = sub(step["scripts_argv"])
    if not plan.missing:  # a value may have broken it: such an argv never reaches a node
        try:
            shellargv.check("scripts_argv", argv)
        except InvalidInput as e:
            changed = argv != step["scripts_argv"]
            plan.problems.append(e.info + (" after variable substitution" if changed else ""))
    wk = {k: v for k, v in values.items() if k.startswith("wk_")}
    env = {k: str(v) for k, v in wk.items() if v not in (None, "")}
    _adder(plan.missing)([k for k in wk if k not in env])  # an empty wk_* is undefined
    env["wk_treeid"] = str(projectid)
    script, script_type = step["scripts_cont"], step["scripts_type"]
    if script_type == "cite":
        row = Script.get_or_none(
            Script.id == int(script),
            Script.projectid.in_([projectid, 0]),
            Script.status == "available",
        )
        if row is None:
            plan.problems.append(f"script {script} does not exist any more")
        else:
            script, script_type = row.cont, row.type
    plan.targets, plan.refused = found.hosts, found.refused
    plan.args = {
        "user": step["user"],
        "scripts_type": script_type,
        "scripts_argv": argv,
        "timeout": int(step["timeout"]),
    }

    def make(targets: list[playbook.Host]) -> playbook.Compiled:
        return playbook.compile_cmd(
            targets,
            script,
            script_type,
            argv=argv,
            env=env,
            become_user=step["user"],
            timeout=int(step["timeout"]),
        )

    plan.make = make


def _plan_scp(
    plan: StepPlan,
    projectid: int,
    step: dict[str, Any],
    settings: "Settings",
    staging: str | None,
    sub: Sub,
    hosts: Hosts,
) -> None:
    sp, dp = sub(step["sp"]), sub(step["dp"])
    chown, chmod = step["chown"], step["chmod"]
    if step["dst_type"] == "fileserver":
        # The controller pulls the file into a staging directory, then into the store.
        plan.pull_to_store = True
        dst = nodes.Resolution([playbook.Host(STORE_HOST, filestore.STORE_TARGET)], [])
        dp = staging or "/nonexistent/opsjob-staging/"
        chown, chmod = "", ""
    else:
        dst = hosts(step["dst_type"], step["dst"])
    source, local, refused = None, None, []
    if step["src_type"] == "fileserver":
        if not plan.missing:
            try:
                local = filestore.path_of(settings, projectid, sp)
            except InvalidInput as e:
                plan.problems.append(e.info)
            else:
                if local is None:
                    plan.problems.append(f"file {sp} is not in the project's file store")
    else:
        src = hosts(step["src_type"], step["src"])
        refused = list(src.refused)
        source = src.hosts[0] if src.hosts else None
        if source is None and not refused and not plan.missing:
            plan.problems.append("src: no source node")
    plan.targets, plan.refused = dst.hosts, refused + list(dst.refused)
    plan.args = {
        "src_type": step["src_type"],
        "src": source.name if source else "",
        "sp": sp,
        "dst_type": step["dst_type"],
        "dp": dp,
        "chown": chown,
        "chmod": chmod,
        "timeout": int(step["timeout"]),
    }

    def make(targets: list[playbook.Host]) -> playbook.Compiled:
        return playbook.compile_scp(
            source,
            sp,
            targets,
            dp,
            chown=chown,
            chmod=chmod,
            delete=bool(step["scp_delete"]),
            timeout=int(step["timeout"]),
            local_source=local,
        )

    plan.make = make


def resolve(
    task: "Task", step: dict[str, Any], values: dict[str, Any], settings: "Settings"
) -> Resolved:
    """Turn a stored step of ``task`` into its targets, a compile function and a pull to run after.

    Raise :class:`InvalidInput` when the step cannot run (a node group whose inventory does not
    resolve, a credential that is gone, an undefined variable): the task's step fails with it.
    """
    staging = None
    if step["kind"] == "scp" and step["dst_type"] == "fileserver":
        staging = filestore.staging_dir(settings, task.uuid)
    plan = plan_step(task.projectid, step, values, settings=settings, staging=staging)
    if plan.missing:
        raise InvalidInput("variable undef:" + ",".join(plan.missing))
    if plan.problems:
        raise InvalidInput(plan.problems[0])
    after = None
    if plan.pull_to_store:

        def after():
            return filestore.store_pulled(settings, task.projectid, staging, task.user)

    return {"targets": plan.targets, "refused": plan.refused, "make": plan.make, "after": after}
