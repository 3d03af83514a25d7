"""Job steps: the fields of each step type, their validation, and their stored rows."""

from collections.abc import Iterable, Mapping
from typing import Any, cast

from engine.catalog import argv, rolling
from engine.catalog.shapes import CheckedStep, StepShape
from engine.catalog.variables import names_in
from engine.errors import Forbidden, InvalidInput
from engine.playbooks import source as playbook_source
from engine.store.ids import new_uuid
from engine.store.listing import as_dict
from engine.store.models import (
    Nodegroup,
    PluginApproval,
    PluginCmd,
    PluginPlaybook,
    PluginScp,
    Script,
    StepRow,
)
from engine.store.validate import DIGITS, INT64, NO_CONTROL, NODES, VARNODES, WORD, Field, check

PLUGINS: dict[str, type[StepRow]] = {
    "cmd": PluginCmd,
    "scp": PluginScp,
    "playbook": PluginPlaybook,
    "approval": PluginApproval,
}
UNSUPPORTED_PLUGINS: dict[str, str] = {}
APPROVAL_TIMEOUT = 86400  # the default of an approval step saved in a job, as OpenC3's

COMMON = {
    "plugin_type": Field(required=True, max_len=20),
    "name": Field(required=True, max_len=100, allow_empty=False),
    "timeout": Field(int, default=60, minimum=1, maximum=7 * 86400),
    "pause": Field(default="", max_len=200),
    # JOBX filters: stored and shown, never used to skip a step.
    "deployenv": Field(default="always", pattern=r"[A-Za-z]*", max_len=20),
    "action": Field(default="always", pattern=r"[A-Za-z]*", max_len=20),
    "batches": Field(default="always", pattern=r"[A-Za-z]*", max_len=20),
}
CMD = {
    "user": Field(default="", pattern=WORD, max_len=40),
    "node_type": Field(required=True, choices=("builtin", "group", "variable")),
    "node_cont": Field(required=True, pattern=NO_CONTROL, max_len=2000, allow_empty=False),
    "scripts_type": Field(
        required=True, choices=("cite", "shell", "perl", "python", "php", "auto")
    ),
    "scripts_cont": Field(required=True, pattern=NO_CONTROL, max_len=65536, allow_empty=False),
    "scripts_argv": Field(default="", pattern=NO_CONTROL, max_len=3000),
    **rolling.FIELDS,
}
SCP = {
    "user": Field(default="", pattern=WORD, max_len=40),
    "src_type": Field(required=True, choices=("builtin", "group", "fileserver", "variable")),
    "src": Field(default="", max_len=2000),
    "sp": Field(required=True, max_len=500, allow_empty=False),
    "dst_type": Field(required=True, choices=("builtin", "group", "variable")),
    "dst": Field(required=True, max_len=2000, allow_empty=False),
    "dp": Field(required=True, max_len=500, allow_empty=False),
    "chown": Field(default="", pattern=WORD, max_len=40),
    "chmod": Field(default="", pattern=r"[0-7]{3,4}", max_len=4),
    "scp_delete": Field(bool, default=False),
    **rolling.FIELDS,
}
# ``$variables`` are allowed where they are substituted (node_cont of type variable, source,
# playbook, tags, skip_tags); the values are checked again after substitution.
PLAYBOOK = {
    "user": Field(default="", pattern=WORD, max_len=40),
    "node_type": Field(required=True, choices=("builtin", "group", "variable")),
    "node_cont": Field(required=True, pattern=NO_CONTROL, max_len=2000, allow_empty=False),
    "source": Field(required=True, max_len=2000, allow_empty=False),
    "playbook": Field(required=True, pattern=r"[A-Za-z0-9_./${}-]+", max_len=500),
    "tags": Field(default="", pattern=r"[A-Za-z0-9_.,${}-]*", max_len=500),
    "skip_tags": Field(default="", pattern=r"[A-Za-z0-9_.,${}-]*", max_len=500),
    "check": Field(bool, default=False),
    "diff": Field(bool, default=False),
    "verbosity": Field(int, default=0, minimum=0, maximum=4),
    **rolling.FIELDS,
}
PLAYBOOK_FIELDS = (
    "uuid",
    "name",
    "user",
    "node_type",
    "node_cont",
    "source",
    "playbook",
    "tags",
    "skip_tags",
    "check",
    "diff",
    "verbosity",
    "timeout",
    "pause",
    "deployenv",
    "action",
    "batches",
    *rolling.NAMES,
)
# An approver entry is a user name or an address; ``$var`` and ``${var}`` are substituted.
APPROVAL = {
    "cont": Field(required=True, pattern=NO_CONTROL, max_len=5000, allow_empty=False),
    "approver": Field(required=True, pattern=r"[${}A-Za-z0-9,@_.-]+", max_len=300),
    "everyone": Field(default="off", choices=("on", "off")),
    "relaxed": Field(default="off", choices=("on", "off", "nervous")),
}
APPROVAL_FIELDS = (
    "uuid",
    "name",
    "cont",
    "approver",
    "deployenv",
    "action",
    "batches",
    "everyone",
    "timeout",
    "pause",
    "relaxed",
)
DIRECT_CMD = {**CMD, "node_type": Field(required=True, choices=("builtin", "group"))}
DIRECT_SCP = {
    **SCP,
    "src_type": Field(required=True, choices=("builtin", "group", "fileserver")),
    "dst_type": Field(required=True, choices=("builtin", "group", "fileserver")),
    "dst": Field(default="", max_len=2000),
}
NODE_CONT = {"builtin": NODES, "group": DIGITS, "variable": VARNODES}

CMD_FIELDS = (
    "uuid",
    "name",
    "user",
    "node_type",
    "node_cont",
    "scripts_type",
    "scripts_cont",
    "scripts_argv",
    "timeout",
    "pause",
    "deployenv",
    "action",
    "batches",
    *rolling.NAMES,
)
SCP_FIELDS = (
    "uuid",
    "name",
    "user",
    "src",
    "src_type",
    "sp",
    "dst",
    "dst_type",
    "dp",
    "chown",
    "chmod",
    "timeout",
    "pause",
    "scp_delete",
    "deployenv",
    "action",
    "batches",
    *rolling.NAMES,
)


def _nodes(name: str, kind: str, value: str, projectid: int) -> str:
    """Check a node list field of type ``kind`` (builtin|group|variable); return its value,
    with a group id in plain form (``007`` becomes ``7``)."""
    Field(pattern=NODE_CONT[kind], max_len=2000).clean(name, value)
    if kind != "group":
        return value
    if not value:
        raise InvalidInput(f"{name}: must name a node group")
    if (
        int(value) >= INT64  # no row has it, and no query can bind it
        or not Nodegroup.select()
        .where(
            Nodegroup.id == int(value),
            Nodegroup.projectid == projectid,
            Nodegroup.status != "deleted",
        )
        .exists()
    ):
        raise InvalidInput(f"{name}: node group {value} does not exist in project {projectid}")
    return str(int(value))


PATH_SOURCE = (
    "source: a path: source names a directory of the worker (an operator's choice); only an "
    "admin may save, check or run it"
)


def require_operator_sources(step_rows: Iterable[tuple[str, Any]], admin: bool) -> None:
    """Refuse the ``path:`` playbook sources of a job's steps (``[(kind, row)]`` as
    :func:`load` gives them) unless ``admin``; the Forbidden names the step and the field."""
    if admin:
        return
    for n, (kind, row) in enumerate(step_rows, start=1):
        if kind == "playbook" and str(row.source or "").startswith("path:"):
            raise Forbidden(f"step {n}: {PATH_SOURCE}")


def validate_step(
    raw: Any, projectid: int, direct: bool = False, admin: bool = False
) -> CheckedStep:
    """Return the checked fields of one step, or raise InvalidInput (without the step prefix).

    ``direct`` is a step run on its own (plugin_cmd/plugin_scp): no ``variable`` node lists,
    scripts cited from this project only, and scp may pull into the file store.
    """
    common = check(raw, COMMON)
    kind = common["plugin_type"]
    if kind in UNSUPPORTED_PLUGINS:
        raise InvalidInput(f"plugin_type: {UNSUPPORTED_PLUGINS[kind]}")
    if kind not in PLUGINS:
        raise InvalidInput("plugin_type: must be one of cmd, scp, playbook, approval")
    if kind == "approval":
        values = check(raw, APPROVAL)
        if any(e.strip().startswith("@") for e in values["approver"].split(",")):
            raise InvalidInput("approver: @group entries (OpenC3's user groups) are not supported")
        if not direct and (not isinstance(raw, Mapping) or raw.get("timeout") in (None, "")):
            common["timeout"] = APPROVAL_TIMEOUT  # a step run on its own keeps OpenC3's 60
    elif kind == "playbook":
        values = check(raw, PLAYBOOK)
        values["node_cont"] = _nodes(
            "node_cont", values["node_type"], values["node_cont"], projectid
        )
        playbook_source.parse(values["source"])
        if values["source"].startswith("path:") and not admin:
            raise Forbidden(PATH_SOURCE)
        if not names_in(values["playbook"]):
            playbook_source.check_entry(values["playbook"])
        for flag in ("check", "diff"):
            values[flag] = int(values[flag])
    elif kind == "cmd":
        values = check(raw, DIRECT_CMD if direct else CMD)
        values["node_cont"] = _nodes(
            "node_cont", values["node_type"], values["node_cont"], projectid
        )
        argv.check("scripts_argv", values["scripts_argv"])
        if values["scripts_type"] == "cite":
            Field(pattern=DIGITS, max_len=18).clean("scripts_cont", values["scripts_cont"])
            if (
                not Script.select()
                .where(
                    Script.id == int(values["scripts_cont"]),
                    Script.projectid.in_([projectid] if direct else [projectid, 0]),
                    Script.status == "available",
                )
                .exists()
            ):
                raise InvalidInput(f"scripts_cont: script {values['scripts_cont']} does not exist")
    else:
        values = check(raw, DIRECT_SCP if direct else SCP)
        if values["src_type"] == "fileserver":
            values["src"] = ""
            if "/" in values["sp"] or "'" in values["sp"]:
                raise InvalidInput("sp: a file store name must not contain / or '")
        else:
            if not values["src"]:
                raise InvalidInput("src: is required")
            values["src"] = _nodes("src", values["src_type"], values["src"], projectid)
        if values["dst_type"] == "fileserver":
            values["dst"] = ""
        else:
            values["dst"] = _nodes("dst", values["dst_type"], values["dst"], projectid)
        for path in ("sp", "dp"):
            Field(pattern=NO_CONTROL, max_len=500).clean(path, values[path])
        values["scp_delete"] = int(values["scp_delete"])
    if kind != "approval":
        rolling.check(values)
        if direct and values["rolling_pause"]:
            raise InvalidInput(
                "rolling_pause: a step run on its own cannot wait for next between batches; "
                "save it in a job"
            )
    values.update(common)
    return cast(CheckedStep, values)  # check() returns the fields of the spec chosen above


def references(kind: str, values: Mapping[str, Any]) -> list[str]:
    """Return the variable names a step's substituted fields use."""
    if kind == "approval":
        texts = [values["approver"]]
    elif kind == "playbook":
        texts = [values[k] for k in ("node_cont", "source", "playbook", "tags", "skip_tags")]
    elif kind == "cmd":
        texts = [values["node_cont"], values["scripts_argv"]]
    else:
        texts = [values["src"], values["sp"], values["dst"], values["dp"]]
    return [n for text in texts for n in names_in(text)]


def store(kind: str, values: Mapping[str, Any], jobuuid: str | None) -> str:
    """Insert a new step row and return its ``<plugin_type>_<uuid>`` reference."""
    model = PLUGINS[kind]
    columns = {k: v for k, v in values.items() if k in model._meta.fields and k != "plugin_type"}
    row = model.create(jobuuid=jobuuid, uuid=new_uuid(), **columns)
    return f"{kind}_{row.uuid}"


def load(uuids: str) -> list[tuple[str, StepRow]]:
    """Return the stored steps named in a job's ``uuids`` list, in order, as dicts."""
    refs = [r.split("_", 1) for r in uuids.split(",") if r]
    rows: dict[tuple[str, str], StepRow] = {}
    for kind, model in PLUGINS.items():
        wanted = [u for k, u in refs if k == kind]
        if wanted:
            rows.update({(kind, r.uuid): r for r in model.select().where(model.uuid.in_(wanted))})
    steps: list[tuple[str, StepRow]] = []
    for kind, uuid in refs:
        row = rows.get((kind, uuid))
        if row is not None:
            steps.append((kind, row))
    return steps


def shape(kind: str, row: StepRow) -> StepShape:
    """Return a step as the API shows it (OpenC3 leaves out plugin_type; so do we)."""
    fields = {
        "cmd": CMD_FIELDS,
        "scp": SCP_FIELDS,
        "playbook": PLAYBOOK_FIELDS,
        "approval": APPROVAL_FIELDS,
    }[kind]
    return cast(StepShape, as_dict(row, fields))  # the fields of its kind's shape
