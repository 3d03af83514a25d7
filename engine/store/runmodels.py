"""peewee models of what runs leave behind: tasks, their steps, host results, logs, mutexes,
notification attempts, websocket tickets and the audit trail (re-exported by models)."""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    DoubleField,
    IntegerField,
    TextField,
)

from engine.store.basemodel import BaseModel
from engine.store.clock import now


class Task(BaseModel):
    """One run of a job or of a single step. ``status`` follows OpenC3's task state machine."""

    projectid = IntegerField(index=True)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=200, default="")
    user = CharField(max_length=100, default="")
    slave = CharField(max_length=100, default="")  # the worker that runs (or ran) it
    status = CharField(max_length=20, default="init", index=True)
    calltype = CharField(max_length=20, default="page")
    jobtype = CharField(max_length=20, default="jobs")
    jobuuid = CharField(max_length=20, default="")
    mutex = CharField(max_length=100, default="")
    variable = TextField(default="{}")  # JSON of the task's variable hash
    reason = CharField(max_length=500, null=True)
    extid = CharField(max_length=50, default="")
    notify = IntegerField(default=0)
    pid = IntegerField(null=True)
    create_time = DateTimeField(default=now, index=True)
    starttime = DateTimeField(null=True, index=True)
    finishtime = DateTimeField(null=True)
    starttimems = DoubleField(null=True)
    finishtimems = DoubleField(null=True)
    runtime = DoubleField(null=True)
    # Engine bookkeeping, not part of OpenC3's shape:
    plan = TextField(default="")  # JSON snapshot of the steps, taken at the first claim
    wake = IntegerField(default=0)  # 1: a control call asked for a waiting task to resume
    # epoch; running: the lease its worker renews; init or woken: when a lost queue message
    # may be sent again (see lifecycle.requeue_stranded)
    lease_until = DoubleField(null=True)
    kill_by = CharField(max_length=100, default="")  # set by killtask, seen by the worker
    mutex_policy = CharField(max_length=10, default="fail")  # fail, skip or queue (v6)

    class Meta:
        # For the analysis routes (v4): one project's recent tasks, and every project's.
        indexes = (
            (("projectid", "starttime"), False),
            (("starttime", "projectid", "status"), False),
        )


class Subtask(BaseModel):
    """One step of a ``jobs`` task. ``status`` NULL means not reached yet."""

    parent_uuid = CharField(max_length=20, index=True)
    position = IntegerField()
    subtask_type = CharField(max_length=20)
    uuid = CharField(max_length=20)
    nodecount = IntegerField(default=0)
    starttime = DateTimeField(null=True)
    finishtime = DateTimeField(null=True)
    runtime = DoubleField(null=True)
    status = CharField(max_length=20, null=True)
    pause = CharField(max_length=200, default="")
    attempt = IntegerField(default=0)
    # the decision `running` also runs again the hosts whose outcome is unknown (v11)
    retry_unknown = BooleanField(default=False)

    class Meta:
        indexes = ((("parent_uuid", "subtask_type", "uuid"), True),)


class HostResult(BaseModel):
    """What one host did in one attempt of one step."""

    taskuuid = CharField(max_length=20, index=True)
    stepuuid = CharField(max_length=20)
    attempt = IntegerField(default=1)
    host = CharField(max_length=200)
    # ok, failed, unreachable, timeout, refused, skipped, canceled, unknown (may have run)
    status = CharField(max_length=20)
    rc = IntegerField(null=True)
    starttime = DoubleField(null=True)
    finishtime = DoubleField(null=True)
    stdout = TextField(default="")
    stderr = TextField(default="")
    batch = IntegerField(null=True)  # the batch of a rolling step it ran in (v16)


class LogChunk(BaseModel):
    """A run's log, as ordered chunks; ``offset`` is the character position of the chunk."""

    taskuuid = CharField(max_length=20)
    offset = IntegerField()
    text = TextField()

    class Meta:
        indexes = ((("taskuuid", "offset"), True),)


class Vv(BaseModel):
    """A version variable: the last value a node reported for a name (``NAME:[value]``)."""

    projectid = IntegerField()
    node = CharField(max_length=200)
    name = CharField(max_length=100)
    value = CharField(max_length=200)
    update_time = DateTimeField(default=now)

    class Meta:
        indexes = (
            (("projectid", "node", "name"), True),
            (("projectid", "update_time"), False),
        )


class CmdLog(BaseModel):
    """One command typed into the command console (v5)."""

    projectid = IntegerField()
    user = CharField(max_length=100)
    node = TextField()  # the nodes, sorted, as a comma list
    usr = CharField(max_length=40, default="")  # the account the command ran as
    cmd = TextField()
    time = DateTimeField(default=now)

    class Meta:
        table_name = "cmdlog"
        indexes = ((("projectid", "time"), False),)


class TaskMutex(BaseModel):
    """The task holding a project's mutex: the unique key lets one holder in at a time (v6)."""

    projectid = IntegerField()
    mutex = CharField(max_length=100)
    taskuuid = CharField(max_length=20, index=True)
    create_time = DateTimeField(default=now)

    class Meta:
        indexes = ((("projectid", "mutex"), True),)


class NotifyLog(BaseModel):
    """One delivery attempt of one task notification on one channel (v6)."""

    taskuuid = CharField(max_length=20, index=True)
    event = CharField(max_length=20)  # one id per entry into a notified status
    status = CharField(max_length=20)  # the task status notified
    channel = CharField(max_length=20)  # email, sms, webhook
    attempt = IntegerField(default=1)
    outcome = CharField(max_length=20)  # ok, skipped, failed, error
    recipients = TextField(default="")
    detail = CharField(max_length=500, default="")
    create_time = DateTimeField(default=now)


class SocketTicket(BaseModel):
    """A short-lived, single-use ticket that opens one websocket for a key's holder (v10):
    browsers cannot set headers on a websocket. Only the ticket's hash is stored."""

    ticket_hash = CharField(max_length=64, unique=True)
    user_id = IntegerField()
    key_id = IntegerField()  # the API key that asked for it; it must still be valid
    via_app = BooleanField(default=False)
    projectid = IntegerField()
    expires = DateTimeField(index=True)


class AuditLog(BaseModel):
    """One change made through the API, the console or the CLI (v12): who, from where, on
    which route and object, and a summary of the change with every secret masked."""

    time = DateTimeField(default=now, index=True)
    user = CharField(max_length=100, default="", index=True)
    key_id = IntegerField(default=0)
    source = CharField(max_length=64, default="")  # client address, or "cli"
    via = CharField(max_length=10, default="api")  # api, console, cli
    projectid = IntegerField(null=True, index=True)
    method = CharField(max_length=10, default="")
    route = CharField(max_length=200, default="")  # the route template, never the raw path
    object = CharField(max_length=40, default="", index=True)
    object_id = CharField(max_length=200, default="")
    status = IntegerField(default=200)
    summary = TextField(default="")


class Approval(BaseModel):
    """One approver's opinion on one approval step of one task (v15; OpenC3's
    openc3_job_approval): ``unconfirmed`` until it becomes ``agree`` or ``refuse``. The link
    sent to the approver carries a one-time token, of which only the hash is stored."""

    projectid = IntegerField()
    taskuuid = CharField(max_length=20, index=True)
    stepuuid = CharField(max_length=20)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=100, default="")
    cont = TextField(default="")
    user = CharField(max_length=200, index=True)  # the approver
    submitter = CharField(max_length=100, default="")
    everyone = CharField(max_length=10, default="off")
    opinion = CharField(max_length=20, default="unconfirmed")  # unconfirmed, agree, refuse
    remarks = CharField(max_length=500, default="")
    notifystatus = CharField(max_length=20, null=True)  # null, done, skip, fail
    oauuid = CharField(max_length=50, default="")
    token_hash = CharField(max_length=64, null=True, index=True)  # cleared once used
    deadline = DoubleField()  # epoch after which the step times out
    create_time = DateTimeField(default=now)
    finishtime = DateTimeField(null=True)
