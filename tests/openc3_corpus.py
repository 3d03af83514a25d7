"""What OpenC3's own clients send, call by call: the AngularJS web UI, the Perl connector tools
(job dump/load, flow tools, self-healing), JOBX calling into JOB, and external orchestrators.

Each :class:`Call` is one request exactly as that client makes it (its headers, string ids,
boolean strings, nulls for unset fields, objects read and posted back unchanged) and lists
the fields of the answer that client reads. ``tests/test_openc3_clients.py`` replays them.

Strings are ``str.format``-ed with the scenario's context: ``{pid}`` the project, ``{u}`` a
suffix unique to the run, ``{a}``/``{b}`` two machines of the project, and whatever earlier
calls kept. Literal braces are doubled.
"""

import re
from dataclasses import dataclass, field

# Who sends a call, and how (see test_openc3_clients.HEADERS):
#   ui    the web UI of an ops user (write and delete on the project)
#   dev   the web UI of a developer (control role only)
#   admin the web UI of an admin (OpenC3's openc3_job_root)
#   tool  a connector tool: appname/appkey headers of the `job` app
#   jobx  JOBX: appname/appkey headers of the `jobx` app
#   anon  no credentials (token links, download links, token uploads)

ANY = object()  # the field is present, whatever its value


@dataclass(frozen=True)
class Ref:
    """A value kept from an earlier answer, sent as it is (a number stays a number)."""

    name: str


UUID = re.compile(r"[A-Za-z0-9]{12}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Call:
    """One request of an OpenC3 client and what that client reads from the answer."""

    who: str
    method: str
    path: str
    body: object = None  # JSON body: a dict/list (formatted) or a function of the context
    status: int = 200
    stat: object = True  # expected `stat`; None when the answer is not JSON
    reads: dict = field(default_factory=dict)  # dotted path -> expected (see check())
    keep: dict = field(default_factory=dict)  # context name -> dotted path of the answer
    files: list = None  # multipart parts (field, file name, bytes)
    headers: dict = None  # extra headers (formatted)
    raw: bytes = None  # the answer is these bytes, not JSON
    poll: bool = False  # repeat (as the client does) until the reads hold
    why: str = ""  # which client sends it, where


def steps_with_types(detail):
    """The steps of a job detail with ``plugin_type`` put back from ``uuids``, as the UI's
    edit page and c3mc-job-load do before posting a job back."""
    kinds = [ref.split("_")[0] for ref in detail["uuids"].split(",")]
    return [{**step, "plugin_type": kind} for step, kind in zip(detail["data"], kinds, strict=True)]


def ui_save(detail, name=None):
    """The body the UI's job editor posts on save and on clone (edit.controller.js)."""
    return {
        "name": name or detail["name"],
        "mon_ids": detail["mon_ids"],
        "mon_status": bool(detail["mon_status"]),
        "data": steps_with_types(detail),
        "permanent": "permanent",
    }


def tool_load(dump, name=None):
    """The body c3mc-job-load posts: the whole dumped job with name, permanent 1 and types."""
    return {**dump, "name": name or dump["name"], "permanent": 1, "data": steps_with_types(dump)}


def with_values(rows, **values):
    """A variable table read from the API with some values filled in (the editor's save)."""
    return [{**row, "value": values.get(row["name"], row["value"])} for row in rows]


# fmt: off
# The corpus is data: one call per entry, laid out to read as a spec.

UI_CMD = {
    "plugin_type": "cmd",
    "name": "脚本执行_1",
    "user": "root",
    "node_type": "builtin",
    "node_cont": "{a}",
    "scripts_type": "shell",
    "scripts_cont": 'echo "deployed $1"\n',
    "scripts_argv": "$version",
    "timeout": 60,
    "pause": "",
    "deployenv": "always",
    "action": "always",
    "batches": "always",
}
UI_SCP = {
    "plugin_type": "scp",
    "name": "文件分发_1",
    "user": "",
    "dst_type": "builtin",
    "dst": "{b}",
    "dp": "/tmp/oc3-{u}/",
    "chown": "",
    "chmod": "755",
    "timeout": "60",
    "pause": "",
    "src_type": "builtin",
    "src": "{a}",
    "sp": "/tmp/oc3-{u}/",
    "scp_delete": True,
    "deployenv": "always",
    "action": "always",
    "batches": "always",
}


def cmd(name, script, nodes="{a}", **fields):
    """A cmd step as the UI builds it (argv " " when left empty)."""
    return {**UI_CMD, "name": name, "scripts_cont": script, "node_cont": nodes,
            "scripts_argv": " ", "user": "", **fields}


def job(name, *steps):
    return {"name": name, "mon_status": False, "data": list(steps), "permanent": "permanent"}


JOBS = [
    Call("ui", "GET", "/jobs/{pid}/byname?name=_ci_{u}_", reads={"data": {}},
         why="CI flow page: is there a job for this flow yet?"),
    Call("ui", "POST", "/jobs/{pid}", {"name": "deploy-{u}", "mon_status": False,
         "data": [UI_CMD, UI_SCP], "permanent": "permanent"},
         reads={"uuid": UUID, "data": True}, keep={"job": "uuid"}, why="job editor: create"),
    Call("ui", "GET", "/jobs/{pid}", reads={"data.*.name": lambda v: "deploy-{u}" in v},
         why="job list"),
    Call("ui", "GET", "/jobs/{pid}/count", reads={"data.permanent": int}, why="dashboard"),
    Call("ui", "GET", "/jobs/{pid}/{job}",
         reads={"data.name": "deploy-{u}", "data.uuid": "{job}",
                "data.uuids": re.compile(r"cmd_\w{12},scp_\w{12}"), "data.mon_status": 0,
                "data.mon_ids": ANY, "data.data.0.node_cont": "{a}",
                "data.data.0.scripts_argv": "$version", "data.data.1.scp_delete": 1,
                "data.data.1.dst": "{b}", "data.data.1.chmod": "755"},
         keep={"detail": "data"}, why="job editor: open"),
    Call("ui", "POST", "/jobs/{pid}/{job}", lambda c: ui_save(c["detail"]),
         reads={"uuid": "{job}", "data": True}, why="job editor: save unchanged"),
    Call("ui", "GET", "/variable/{pid}/{job}?empty=1",
         reads={"data.*.name": ["version"], "data.0.value": ""}, keep={"vars": "data"},
         why="job editor: variables still to fill"),
    Call("ui", "POST", "/variable/{pid}/update",
         lambda c: {"jobuuid": c["job"], "data": with_values(c["vars"], version="1.0")},
         reads={}, why="job editor: save the variable table it read"),
    Call("ui", "POST", "/variable/{pid}/update_mon",
         {"jobuuid": "{job}", "status": True, "mon_ids": "tpl1,exp2"},
         why="job editor: monitoring trigger form"),
    Call("ui", "GET", "/jobs/{pid}/{job}",
         reads={"data.mon_status": 1, "data.mon_ids": "tpl1,exp2"}, keep={"detail": "data"}),
    Call("ui", "POST", "/jobs/{pid}", lambda c: ui_save(c["detail"], name="clone-{u}"),
         reads={"uuid": UUID}, keep={"clone": "uuid"}, why="clone job (postClone)"),
    Call("tool", "GET", "/jobs/{pid}/byname?name=deploy-{u}",
         reads={"data.uuid": "{job}", "data.uuids": ANY, "data.data.1.sp": "/tmp/oc3-{u}/"},
         keep={"dump": "data"}, why="c3mc-job-dump"),
    Call("tool", "GET", "/variable/{pid}/{job}", reads={"data.0.name": "version",
         "data.0.value": "1.0"}, keep={"dumpv": "data"}, why="c3mc-flow-exctl-dump-jobv"),
    Call("tool", "POST", "/jobs/{pid}/{job}", lambda c: tool_load(c["dump"]),
         reads={"uuid": "{job}"}, why="c3mc-job-load onto the existing job"),
    Call("tool", "POST", "/jobs/{pid}", lambda c: tool_load(c["dump"], name="_ci_{u}_"),
         reads={"uuid": UUID}, keep={"flowjob": "uuid"}, why="c3mc-flow-exctl-load-job"),
    Call("tool", "POST", "/variable/{pid}/update",
         lambda c: {"jobuuid": c["flowjob"], "data": c["dumpv"]},
         why="c3mc-flow-exctl-load-jobv"),
    Call("ui", "GET", "/jobs/{pid}/byname?name=_ci_{u}_",
         reads={"data.uuid": "{flowjob}", "data.name": "_ci_{u}_"}, why="CI flow page"),
    Call("ui", "GET", "/variable/{pid}/{flowjob}?empty=1&usrext=1&env=online",
         reads={"data": []}, why="CI run dialog: the loaded variables are filled"),
    Call("ui", "POST", "/jobs/{pid}/copy/byname",
         {"fromname": "_ci_{u}_", "toname": "_ci_{u}x_", "toprojectid": "{pid}"},
         reads={"uuid": UUID}, why="flow copy (copyProject)"),
    Call("ui", "DELETE", "/jobs/{pid}/_ci_{u}x_/byname", reads={"data": True},
         why="flow delete"),
    Call("ui", "DELETE", "/jobs/{pid}/{clone}", reads={"data": True}, why="job list: delete"),
    Call("ui", "GET", "/jobs/{pid}/{clone}", status=404, stat=False),
]

VALUES = [
    Call("ui", "POST", "/scripts/{pid}", {"name": "check-{u}", "type": "shell",
         "cont": "uptime\n"}, keep={"script": "id"}, why="script page: create"),
    Call("ui", "POST", "/jobs/{pid}", job("values-{u}",
         cmd("cited", Ref("script"), scripts_type="cite", timeout="", pause=None),
         {**UI_SCP, "chown": None, "chmod": 644, "scp_delete": False, "timeout": None,
          "user": None, "pause": None, "deployenv": None}),
         reads={"uuid": UUID}, keep={"vjob": "uuid"},
         why="numbers as strings or empty, nulls for unset, a cited script id as a number"),
    Call("ui", "GET", "/jobs/{pid}/{vjob}",
         reads={"data.data.0.scripts_type": "cite", "data.data.0.scripts_cont": "{script}",
                "data.data.0.timeout": 60, "data.data.1.scp_delete": 0,
                "data.data.1.chown": "", "data.data.1.chmod": "644"}),
    Call("tool", "POST", "/jobs/{pid}", {"name": "tool-{u}", "permanent": 1, "mon_status": "0",
         "mon_ids": None, "data": [cmd("s", "id", timeout="30")]},
         reads={"uuid": UUID}, keep={"tjob": "uuid"}, why="CLI tools send permanent 1"),
    Call("ui", "GET", "/jobs/{pid}/{tjob}", reads={"data.data.0.timeout": 30}),
    Call("ui", "POST", "/jobs/{pid}", job("bad-{u}", cmd("s", "id")) | {"mon_status": 2},
         status=400, stat=False, reads={"info": re.compile("mon_status: .*")},
         why="a value OpenC3 refuses is still a 400 naming the field"),
    Call("ui", "POST", "/jobs/{pid}", job("bad-{u}", cmd("s", "id", timeout="soon")),
         status=400, stat=False, reads={"info": re.compile("step 1: timeout: .*")}),
    Call("ui", "POST", "/jobs/{pid}", job("bad-{u}", cmd("s", "id", node_type="cloud")),
         status=400, stat=False, reads={"info": re.compile("step 1: node_type: .*")}),
]

VARIABLES = [
    Call("ui", "POST", "/jobs/{pid}", job("vars-{u}", cmd("s", "id", scripts_argv="$color")),
         keep={"vjob": "uuid"}),
    Call("ui", "POST", "/variable/{pid}", {"jobuuid": "{vjob}", "name": "_exit_", "value": "1",
         "describe": "stop at the first error", "option": None}, reads={"data": True},
         why="variable table: add one"),
    Call("ui", "GET", "/variable/{pid}/{vjob}", keep={"vrows": "data"},
         reads={"data.*.name": lambda v: sorted(v) == ["_exit_", "color"],
                "data.*.id": lambda v: all(isinstance(i, int) for i in v),
                "data.*.describe": ANY, "data.*.option": ANY}),
    Call("ui", "POST", "/variable/{pid}", lambda c: {"jobuuid": c["vjob"], **c["vrows"][0]},
         reads={"data": True}, why="a row read from the table, posted back unchanged"),
    Call("admin", "GET", "/variable/{pid}/{vjob}/token?name=color",
         reads={"data": re.compile(r"[0-9a-f]{32}")}, keep={"tok": "data"},
         why="job editor: variable token for an external system"),
    Call("anon", "GET", "/variable/update/{pid}/{vjob}/{tok}/color/red,green,blue", reads={},
         why="the external system refreshes the dropdown (no login)"),
    Call("anon", "POST", "/variable/update/{pid}/{vjob}/{tok}/color/green?updatevalue=1"),
    Call("anon", "GET", "/variable/update/{pid}/{vjob}/{tok}x/color/red", status=403,
         stat=False, reads={"info": re.compile("token: .*")}),
    Call("anon", "GET", "/variable/update/{pid}/{vjob}/{tok}/_exit_/0", status=403, stat=False,
         why="a token opens only the variable it was made for"),
    Call("ui", "GET", "/variable/{pid}/{vjob}?exclude=_exit_",
         reads={"data.0.name": "color", "data.0.option": "red,green,blue",
                "data.0.value": "green"}),
    Call("ui", "POST", "/variable/{pid}/update", {"jobuuid": "{vjob}", "data": [
         {"name": "_authorization_", "value": "true", "describe": "smallapplication"}]},
         why="light application: create"),
    Call("ui", "GET", "/jobs/{pid}/{vjob}", keep={"vdetail": "data"}),
    Call("ui", "GET", "/variable/byid/{vdetail[id]}",
         reads={"data.*.name": lambda v: "_authorization_" in v}),
    Call("ui", "DELETE", "/variable/byid/{vdetail[id]}?name=_authorization_", reads={"data": 1},
         why="light application: delete"),
    Call("ui", "DELETE", "/variable/byid/{vdetail[id]}?name=_authorization_", reads={"data": 0},
         why="already gone: still stat true, as the UI goes on only then"),
    Call("ui", "DELETE", "/variable/{pid}", {"jobuuid": "{vjob}", "name": "_exit_"},
         reads={"data": True}),
]

CATALOG = [
    Call("ui", "GET", "/scripts/{pid}", reads={"data.*.name": ANY, "data.*.type": ANY}),
    Call("ui", "POST", "/scripts/{pid}", {"name": "rt-{u}", "type": "python",
         "cont": "print(1)\n"}, keep={"sid": "id"}),
    Call("ui", "GET", "/scripts/{pid}/{sid}",
         reads={"data.name": "rt-{u}", "data.type": "python", "data.cont": "print(1)\n"},
         keep={"script": "data"}, why="script editor: open"),
    Call("ui", "POST", "/scripts/{pid}/{sid}", lambda c: c["script"], reads={"data": True},
         why="script editor: save unchanged"),
    Call("ui", "DELETE", "/scripts/{pid}/{sid}", reads={"data": True}),
    Call("ui", "POST", "/nodegroup/{pid}", {"name": "web-{u}", "plugin": "node",
         "params": "{a},{b}"}, reads={"data": True}, why="node group: create"),
    Call("ui", "GET", "/nodegroup/{pid}?name=web-{u}",
         reads={"data.0.name": "web-{u}", "data.0.plugin": "node"}, keep={"gid": "data.0.id"}),
    Call("ui", "GET", "/nodegroup/{pid}/{gid}", reads={"data.params": "{a},{b}"},
         keep={"group": "data"}, why="node group editor: open"),
    Call("ui", "POST", "/nodegroup/{pid}/{gid}", lambda c: c["group"], reads={"data": True},
         why="node group editor: save unchanged"),
    Call("ui", "GET", "/nodegroup/{pid}/{gid}/nodelist", reads={"data": ["{a}", "{b}"]}),
    Call("ui", "POST", "/jobs/{pid}", job("cron-{u}", cmd("s", "id")), keep={"cjob": "uuid"}),
    Call("ui", "POST", "/crontab/{pid}", {"name": "nightly-{u}", "jobuuid": "{cjob}",
         "cron": "0 3 * * *", "mutex": ""}, reads={"data": True}, why="crontab: create"),
    Call("ui", "GET", "/crontab/{pid}?name=nightly-{u}",
         reads={"data.0.status": "unavailable", "data.0.cron": "0 3 * * *"},
         keep={"cid": "data.0.id"}),
    Call("ui", "GET", "/crontab/{pid}/{cid}", reads={"data.name": "nightly-{u}",
         "data.jobuuid": "{cjob}", "data.mutex": ""}, keep={"cron": "data"}),
    Call("ui", "POST", "/crontab/{pid}/{cid}", lambda c: c["cron"], reads={"data": True},
         why="crontab editor: save unchanged"),
    Call("ui", "POST", "/crontab/{pid}/{cid}/status", {"status": "available"}),
    Call("ui", "GET", "/crontab/{pid}/count", reads={"data.available": int}),
    Call("ui", "DELETE", "/crontab/{pid}/{cid}", reads={"data": True}),
    Call("ui", "DELETE", "/nodegroup/{pid}/{gid}", reads={"data": True}),
]

RUNS = [
    Call("ui", "POST", "/jobs/{pid}", job("run-{u}", cmd("hello", 'echo "v=$1"',
         scripts_argv="$version")), keep={"rjob": "uuid"}),
    Call("ui", "POST", "/task/{pid}/job", {"jobuuid": "{rjob}", "variable": {"version": "2.0"}},
         reads={"uuid": UUID, "data": 1}, keep={"t1": "uuid"}, why="run job dialog"),
    Call("ui", "GET", "/task/{pid}/{t1}", poll=True,
         reads={"data.status": "success", "data.starttime": TIME, "data.finishtime": TIME,
                "data.runtime": ANY, "data.calltype": "page", "data.variable": ANY},
         keep={"slave": "data.slave"}, why="task page"),
    Call("ui", "GET", "/subtask/{pid}/{t1}",
         reads={"data.0.status": "success", "data.0.subtask_type": "cmd",
                "data.0.extended.name": "hello", "data.0.nodecount": 1}),
    Call("ui", "GET", "/task/{pid}?name=run-{u}",
         reads={"data.0.uuid": "{t1}", "data.0.status": "success"}),
    Call("ui", "GET", "/task/{pid}/count", reads={"data.success": int}, why="dashboard"),
    Call("ui", "GET", "/task/{pid}/total_count?time_start={today}&time_end={today}",
         reads={"data.success": lambda n: n >= 1, "data.fail": int, "data.running": int}),
    Call("ui", "POST", "/task/{pid}/redo", {"taskuuid": "{t1}"}, reads={"uuid": UUID},
         keep={"t2": "uuid"}, why="history: redo"),
    Call("jobx", "POST", "/task/{pid}/job/byname", {"jobname": "run-{u}", "uuid": "jobx{u}",
         "slave": "jobx-host", "variable": {"version": "3.0"}},
         reads={"uuid": "jobx{u}", "data": 1}, why="JOBX subtaskv1: start a batch"),
    Call("jobx", "POST", "/task/{pid}/job/byname", {"jobname": "run-{u}", "uuid": "jobx{u}",
         "slave": "jobx-host", "variable": {"version": "3.0"}},
         reads={"info": "This task has been successfully created"}, why="JOBX retries"),
    Call("jobx", "GET", "/task/{pid}/jobx{u}", poll=True,
         reads={"data.status": "success", "data.starttime": TIME, "data.finishtime": TIME,
                "data.runtime": ANY}, why="JOBX polls until the batch ends"),
    Call("jobx", "GET", "/task/{pid}/authorization/_ci_test_7_/run-{u}", reads={"data": 0},
         why="JOBX before a grouped run"),
    Call("jobx", "POST", "/task/{pid}/job/byname", {"jobname": "gone-{u}", "uuid": "gone{u}",
         "slave": "jobx-host"}, stat=False, reads={"info": re.compile("jobname: .*")},
         why="a refused start is HTTP 200 stat false: JOBX fails the batch, it retries a 4xx"),
    Call("ui", "POST", "/task/{pid}/plugin_cmd", {"name": "quick", "user": "",
         "node_type": "builtin", "node_cont": "{a},{b}", "scripts_type": "shell",
         "scripts_cont": "hostname\n", "scripts_argv": " ", "timeout": 60},
         reads={"data.uuid": UUID, "data.slave": ANY, "data.loguuid": re.compile(r"\w+cmd")},
         keep={"q": "data.uuid"}, why="quick command"),
    Call("ui", "GET", "/task/{pid}/{q}", poll=True, reads={"data.status": "success",
         "data.jobtype": "plugin_cmd"}),
    Call("tool", "POST", "/task/{pid}/job/byname", {"jobname": "run-{u}", "group": "xxx",
         "variable": {"ip": "{a}", "_exit_": 1, "version": "4.0"}},
         reads={"uuid": UUID}, keep={"heal": "uuid"}, why="c3mc-mon-selfhealing-runtask"),
    Call("tool", "GET", "/task/{pid}/{heal}", poll=True, reads={"data.status": "success"},
         why="c3mc-mon-selfhealing-updatetask"),
    Call("ui", "POST", "/task/{pid}/job", {"jobuuid": "nosuchjob{u}"}, status=400, stat=False,
         reads={"info": re.compile("jobuuid: .*")}, why="the UI gets real statuses"),
]

CONTROL = [
    Call("ui", "POST", "/jobs/{pid}", job("gate-{u}",
         cmd("gate", "test -e /tmp/gate-{u}"), cmd("after", "echo after")),
         keep={"gjob": "uuid"}),
    Call("ui", "POST", "/task/{pid}/job", {"jobuuid": "{gjob}", "variable": {}},
         keep={"g1": "uuid"}),
    Call("ui", "GET", "/task/{pid}/{g1}", poll=True, reads={"data.status": "waiting"}),
    Call("ui", "GET", "/subtask/{pid}/{g1}", keep={"gstep": "data.0"},
         reads={"data.0.status": "decision", "data.1.status": None, "data.0.uuid": UUID}),
    Call("dev", "POST", "/subtask/{pid}", lambda c: {"taskuuid": c["g1"],
         "subtaskuuid": c["gstep"]["uuid"], "subtasktype": "cmd", "control": "ignore"},
         status=403, stat=False, why="a developer may not decide without _authorization_"),
    Call("ui", "POST", "/variable/{pid}/update", {"jobuuid": "{gjob}", "data": [
         {"name": "_authorization_", "value": "true", "describe": "smallapplication"}]}),
    Call("jobx", "GET", "/task/{pid}/authorization/_ci_test_7_/gate-{u}", reads={"data": 1}),
    Call("dev", "POST", "/subtask/{pid}", lambda c: {"taskuuid": c["g1"],
         "subtaskuuid": c["gstep"]["uuid"], "subtasktype": "cmd", "control": "ignore"},
         reads={"data": 1}, why="task page: ignore, with the _authorization_ shortcut"),
    Call("ui", "GET", "/task/{pid}/{g1}", poll=True, reads={"data.status": "success"}),
    Call("dev", "POST", "/task/{pid}/job", {"jobuuid": "{gjob}", "variable": {}},
         reads={"uuid": UUID}, keep={"g2": "uuid"}, why="light application: run"),
    Call("dev", "GET", "/task/{pid}/{g2}", poll=True, reads={"data.status": "waiting"}),
    Call("dev", "GET", "/subtask/{pid}/{g2}", keep={"g2step": "data.0"}),
    Call("dev", "PUT", "/subtask/{pid}", lambda c: {"taskuuid": c["g2"],
         "subtaskuuid": c["g2step"]["uuid"], "subtasktype": "cmd", "control": "running"},
         reads={"data": 1}, why="confirm dialog: retry the failed nodes"),
    Call("ui", "POST", "/jobs/{pid}", job("pause-{u}", cmd("first", "echo one",
         pause="check the canary"), cmd("second", "echo two")), keep={"pjob": "uuid"}),
    Call("ui", "POST", "/task/{pid}/job", {"jobuuid": "{pjob}"}, keep={"p1": "uuid"}),
    Call("ui", "GET", "/subtask/{pid}/{p1}", poll=True, keep={"pstep": "data.0"},
         reads={"data.0.status": "success", "data.0.pause": "check the canary"}),
    Call("ui", "PUT", "/subtask/{pid}", lambda c: {"taskuuid": c["p1"],
         "subtaskuuid": c["pstep"]["uuid"], "subtasktype": "cmd", "control": "next"},
         reads={"data": 1}, why="task page: go on after a pause"),
    Call("ui", "GET", "/task/{pid}/{p1}", poll=True, reads={"data.status": "success"}),
    Call("ui", "POST", "/jobs/{pid}", job("slow-{u}", cmd("wait", "sleep 120")),
         keep={"sjob": "uuid"}),
    Call("jobx", "POST", "/task/{pid}/job/byname", {"jobname": "slow-{u}", "uuid": "slow{u}"},
         reads={"uuid": "slow{u}"}),
    Call("jobx", "GET", "/subtask/{pid}/slow{u}", poll=True, reads={"data.0.status": "running"}),
    Call("jobx", "GET", "/task/{pid}/slow{u}", reads={"data.status": "running"},
         keep={"slave": "data.slave"}, why="JOBX reads which slave runs it"),
    Call("jobx", "DELETE", "/slave/{slave}/killtask/slow{u}", reads={"info": ANY},
         why="JOBX stops a batch"),
    Call("jobx", "GET", "/task/{pid}/slow{u}", poll=True,
         reads={"data.status": "fail", "data.reason": "killed by jobx@app"}),
    Call("tool", "GET", "/task/{pid}/job/bymon?jobname=slow-{u}&endpoint={a}&tpl_id=tpl1"
         "&exp_id=0", stat=False, reads={"info": re.compile("jobname: .*")},
         why="monitoring trigger off: refused (HTTP 200, stat false, to an app caller)"),
    Call("ui", "POST", "/variable/{pid}/update_mon",
         {"jobuuid": "{pjob}", "status": "true", "mon_ids": "tpl1"}),
    Call("tool", "POST", "/task/{pid}/job/bymon", {"jobname": "pause-{u}", "endpoint": "{a}",
         "tpl_id": "tpl1", "exp_id": "0"}, reads={"uuid": UUID}, keep={"m1": "uuid"},
         why="monitoring alert starts the job"),
    Call("tool", "GET", "/task/{pid}/job/bymon?jobname=pause-{u}&endpoint={a}&tpl_id=tpl1"
         "&exp_id=0", stat=False, why="refused while that job runs"),
    Call("ui", "GET", "/task/{pid}/{m1}", reads={"data.variable": re.compile(r"ip: .*\n")}),
]

UI_APPROVAL = {  # the UI's approval step dialog (plugin/approval.controller.js), filled in
    "timeout": "86400", "approver": "ops", "cont": "defaultTemplate", "name": "审批_2",
    "deployenv": "always", "action": "always", "batches": "always", "everyone": "on",
    "plugin_type": "approval", "relaxed": "off",
}

APPROVAL = [
    Call("admin", "POST", "/environment",
         {"approvalTemplatePluginContent": "release ${{version}} of ${{jobname}}"},
         why="global template page: the approval text of defaultTemplate steps"),
    Call("ui", "POST", "/jobs/{pid}", job("approve-{u}", cmd("before", "echo before"),
         UI_APPROVAL, cmd("after", "echo after")), keep={"ajob": "uuid"},
         why="job editor: a cmd, an approval, a cmd"),
    Call("ui", "GET", "/jobs/{pid}/{ajob}", keep={"adetail": "data"},
         reads={"data.uuids": re.compile(r"cmd_\w{12},approval_\w{12},cmd_\w{12}"),
                "data.data.1.approver": "ops", "data.data.1.everyone": "on",
                "data.data.1.relaxed": "off", "data.data.1.timeout": 86400,
                "data.data.1.cont": "defaultTemplate"}),
    Call("ui", "POST", "/jobs/{pid}/{ajob}", lambda c: ui_save(c["adetail"]),
         reads={"data": True}, why="job editor: save unchanged"),
    Call("ui", "POST", "/task/{pid}/job", {"jobuuid": "{ajob}", "variable": {"version": "2.0"}},
         reads={"uuid": UUID}, keep={"a1": "uuid"}),
    Call("ui", "GET", "/task/{pid}/{a1}", poll=True, reads={"data.status": "waiting"}),
    Call("ui", "GET", "/subtask/{pid}/{a1}", poll=True,
         reads={"data.0.status": "success", "data.1.status": "running",
                "data.1.subtask_type": "approval", "data.1.extended.approver": "ops",
                "data.2.status": None}, why="task page: the approval step waits"),
    Call("ui", "GET", "/approval", poll=True, keep={"ap": "data.0.uuid"},
         reads={"data.0.taskuuid": "{a1}", "data.0.opinion": "unconfirmed",
                "data.0.uuid": UUID, "data.0.name": "审批_2", "data.0.submitter": "ops",
                "data.0.create_time": TIME},
         why="my approvals page (approval.controller.js)"),
    Call("ui", "GET", "/approval/{ap}",
         reads={"data.0.cont": "release 2.0 of approve-{u}", "data.0.user": "ops",
                "data.0.opinion": "unconfirmed"}, why="approval dialog (edit.controller.js)"),
    Call("tool", "POST", "/approval", lambda c: {"uuid": c["ap"], "opinion": "agree"},
         stat=False, reads={"info": re.compile("uuid: .*")},
         why="not this caller's approval: HTTP 200 stat false to an app caller"),
    Call("ui", "POST", "/approval", lambda c: {"uuid": c["ap"], "opinion": "agree"},
         reads={"data": 1}, why="approval dialog: agree"),
    Call("ui", "GET", "/task/{pid}/{a1}", poll=True, reads={"data.status": "success"}),
    Call("ui", "GET", "/subtask/{pid}/{a1}",
         reads={"data.1.status": "success", "data.2.status": "success"}),
    Call("ui", "POST", "/approval", lambda c: {"uuid": c["ap"], "opinion": "refuse"},
         status=409, stat=False, why="an opinion is given once"),
    Call("anon", "GET", "/approval/control/status/nosuchlinktoken{u}{u}", status=404,
         stat=False, why="quick approval page with a link that is unknown or used"),
]

THIRD = [
    Call("ui", "POST", "/jobs/{pid}", job("orch-{u}", cmd("s", "echo $1",
         scripts_argv="$version")), keep={"ojob": "uuid"}),
    Call("jobx", "POST", "/third/option/jobname", {"project_id": "{pid}"},
         reads={"data": lambda v: "orch-{u}" in v}),
    Call("jobx", "POST", "/third/option/variable", {"project_id": "{pid}",
         "jobname": "orch-{u}"}, reads={"data.0.var_name": "version", "data.0.type": "text"}),
    Call("jobx", "POST", "/third/interface/invoke", {"project_id": "{pid}", "uuid": "orch{u}",
         "retry_count": "0", "params": {"jobname": "orch-{u}", "variable": {"version": "1"}}},
         reads={"uuid": UUID, "data": 1}),
    Call("jobx", "POST", "/third/interface/query", {"uuid": "orch{u}"}, poll=True,
         reads={"status": "complete", "msg": ANY, "link": ANY, "progress": [1, 1]},
         why="query takes only uuid"),
    Call("jobx", "POST", "/third/interface/stop", {"uuid": "orch{u}", "retry_count": 0},
         reads={"info": re.compile(".*closed.*")}, why="stop takes only uuid"),
]

FILES = [
    Call("ui", "POST", "/uploadv2/fileserver/{pid}", files=[("file", "app-{u}.txt", b"v1\n")],
         reads={"data": 1}, why="file page: upload through the uploadv2 prefix"),
    Call("ui", "GET", "/fileserver/{pid}", reads={"data.*.name": lambda v: "app-{u}.txt" in v,
         "data.0.md5": re.compile("[0-9a-f]{32}"), "data.0.size": ANY}),
    Call("ui", "GET", "/fileserver/{pid}/download?name=app-{u}.txt",
         reads={"data": re.compile(r"[A-Za-z0-9_-]{32}")}, keep={"link": "data"},
         why="file page: download, step one"),
    Call("anon", "GET", "/download/{link}", raw=b"v1\n", stat=None,
         why="the browser opens the link"),
    Call("anon", "GET", "/download/{link}", status=404, stat=False, why="a link works once"),
    Call("ui", "POST", "/token/{pid}", {"token": "tokn{u}{u}{u}",
         "describe": "ci", "isjob": False, "jobname": ""}, why="token page: create"),
    Call("ui", "POST", "/token/{pid}/info", reads={"data.0.describe": "ci",
         "data.0.isjob": ANY, "data.0.token": ANY}),
    Call("anon", "POST", "/uploadv2/fileserver/{pid}/upload",
         files=[("file", "pkg-{u}.tgz", b"pkg\n")],
         headers={"token": "tokn{u}{u}{u}"}, reads={"data": 1},
         why="curl upload the token page documents"),
    Call("ui", "GET", "/fileserver/{pid}?name=pkg-{u}", keep={"fid": "data.0.id"},
         reads={"data.0.edit_user": "tokn{u4}@token"}),
    Call("ui", "DELETE", "/fileserver/{pid}/{fid}", reads={"data": True}),
]

ADMIN = [
    Call("admin", "POST", "/nodelist/{pid}", {"name": "db-{u}::10.9.8.7"}),
    Call("ui", "GET", "/nodelist/{pid}?name=db-{u}", reads={"data.0.inip": "10.9.8.7"}),
    Call("ui", "GET", "/nodeinfo/{pid}", reads={"data.*.name": lambda v: "db-{u}" in v}),
    Call("ui", "GET", "/nodeinfo/{pid}/check?node=db-{u},{a}", reads={"data": None}),
    Call("ui", "POST", "/userlist/{pid}", {"username": "deploy{u}"}),
    Call("ui", "GET", "/userlist/{pid}", reads={"data.*.username":
         lambda v: "deploy{u}" in v}),
    Call("ui", "POST", "/notify/{pid}", {"user": "ops-{u}@example.com"}),
    Call("ui", "GET", "/notify/{pid}", reads={"data.*.user":
         lambda v: "ops-{u}@example.com" in v}),
    Call("admin", "POST", "/environment", {"isPageFailEmail": "true"}),
    Call("ui", "GET", "/environment", reads={"data.isPageFailEmail": "true"}),
    Call("ui", "GET", "/vv/{pid}", reads={"data": list}),
    Call("ui", "GET", "/task/{pid}/analysis/last", reads={"data": list}),
    Call("ui", "GET", "/task/{pid}/analysis/date", reads={"data": lambda v: len(v) == 30}),
    Call("ui", "GET", "/task/{pid}/analysis/runtime", reads={"data.0-1": ANY}),
    Call("ui", "GET", "/cmd/{pid}/log", reads={"data": list}),
]

SCENARIOS = {
    "jobs": JOBS,
    "values": VALUES,
    "variables": VARIABLES,
    "catalog": CATALOG,
    "runs": RUNS,
    "control": CONTROL,
    "approval": APPROVAL,
    "third": THIRD,
    "files": FILES,
    "admin": ADMIN,
}
# fmt: on
