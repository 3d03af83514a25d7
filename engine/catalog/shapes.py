"""The shapes a job step travels in between rooms, named for the type checker.

A step is stored as one row of its kind's table (:mod:`engine.store.models`) and travels as:

- ``CmdStep``/``ScpStep``/``PlaybookStep``: the step as :func:`engine.catalog.steps.shape`
  shows it (OpenC3's shape: its ``uuid``, no ``plugin_type``);
- ``CheckedCmd``/...: the fields :func:`engine.catalog.steps.validate_step` accepted, ready
  for :func:`engine.catalog.steps.store` (a ``plugin_type``, no ``uuid`` yet);
- ``PlanCmd``/...: a step of a task's plan, ``{"kind": kind, **shape(kind, row)}``, as the
  worker snapshots it and :func:`engine.run.stepplan.plan_step` reads it.

Flags (``scp_delete``, ``check``, ``diff``, ``rolling_pause``) are the integers 0 or 1, as the
columns keep them.
"""

from typing import Literal, TypedDict

StepKind = Literal["cmd", "scp", "playbook", "approval"]


class _Fields(TypedDict):
    """What every kind of step has."""

    name: str
    user: str  # the remote account the step runs as
    timeout: int
    pause: str
    deployenv: str
    action: str
    batches: str


class _HostFields(_Fields):
    """What the steps that run on hosts have: how they roll over them in batches."""

    rolling: str  # batch sizes (engine.catalog.rolling); "" runs every host at once
    max_fail: str  # failed hosts the rollout tolerates: a count or a percentage
    rolling_pause: int  # 1: wait for control=next between two batches
    forks: int  # hosts at once (0: the worker's choice)


class _CmdFields(_HostFields):
    node_type: str  # builtin, group or variable
    node_cont: str
    scripts_type: str  # cite (scripts_cont is a script id) or a language
    scripts_cont: str
    scripts_argv: str


class _ScpFields(_HostFields):
    src_type: str  # builtin, group, variable or fileserver
    src: str  # "" when src_type is fileserver
    sp: str
    dst_type: str
    dst: str
    dp: str
    chown: str
    chmod: str
    scp_delete: int


class _PlaybookFields(_HostFields):
    node_type: str
    node_cont: str
    source: str
    playbook: str
    tags: str
    skip_tags: str
    check: int
    diff: int
    verbosity: int


class _ApprovalFields(_Fields):
    cont: str  # the text approvers read; ``${var}`` substituted when the step starts
    approver: str  # comma list of user names or addresses; ``$var`` substituted
    everyone: str  # on: all must agree; off: any one
    relaxed: str  # on: the submitter, when an approver, agrees at once; off or nervous: never


class CmdStep(_CmdFields):
    uuid: str


class ScpStep(_ScpFields):
    uuid: str


class PlaybookStep(_PlaybookFields):
    uuid: str


class ApprovalStep(_ApprovalFields):
    uuid: str


StepShape = CmdStep | ScpStep | PlaybookStep | ApprovalStep


class CheckedCmd(_CmdFields):
    plugin_type: Literal["cmd"]


class CheckedScp(_ScpFields):
    plugin_type: Literal["scp"]


class CheckedPlaybook(_PlaybookFields):
    plugin_type: Literal["playbook"]


class CheckedApproval(_ApprovalFields):
    plugin_type: Literal["approval"]


CheckedStep = CheckedCmd | CheckedScp | CheckedPlaybook | CheckedApproval


class PlanCmd(CmdStep):
    kind: Literal["cmd"]


class PlanScp(ScpStep):
    kind: Literal["scp"]


class PlanPlaybook(PlaybookStep):
    kind: Literal["playbook"]


class PlanApproval(ApprovalStep):
    kind: Literal["approval"]


PlanStep = PlanCmd | PlanScp | PlanPlaybook | PlanApproval
