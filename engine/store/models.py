"""peewee models: one class per table. Column names follow OpenC3's JOB schema.

The definitions live here; the tables runs fill live in :mod:`engine.store.runmodels` and are
imported here, so ``from engine.store.models import Task`` keeps working.
"""

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    TextField,
)

from engine.store.basemodel import Audited, BaseModel
from engine.store.clock import now
from engine.store.db import database  # noqa: F401 (imported from here too)
from engine.store.runmodels import (
    Approval,
    AuditLog,
    CmdLog,
    HostResult,
    LogChunk,
    NotifyLog,
    SocketTicket,
    Subtask,
    Task,
    TaskMutex,
    Vv,
)


class SchemaVersion(BaseModel):
    version = IntegerField()


class Project(BaseModel):
    id = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    status = CharField(max_length=20, default="active")
    edit_user = CharField(max_length=100, default="")
    edit_time = DateTimeField(default=now)
    webhook = CharField(max_length=1000, default="")  # notification webhook URL (v6)


class User(BaseModel):
    name = CharField(max_length=100, unique=True)
    admin = BooleanField(default=False)
    email = CharField(max_length=200, default="")  # added in schema version 2
    create_time = DateTimeField(default=now)
    disabled = BooleanField(default=False)  # v8: a disabled user's keys are all refused


class ApiKey(BaseModel):
    """An API key: only its SHA-256 and first characters are stored; the key is shown once."""

    user_id = IntegerField(index=True)
    key_hash = CharField(max_length=64, unique=True)
    create_time = DateTimeField(default=now)
    # v8: lifecycle. last_used is written at most once a minute per key.
    hint = CharField(max_length=16, default="")
    last_used = DateTimeField(null=True)
    expires = DateTimeField(null=True)
    revoked = DateTimeField(null=True)


class Role(BaseModel):
    user_id = IntegerField()
    projectid = IntegerField()
    role = CharField(max_length=20)

    class Meta:
        indexes = ((("user_id", "projectid"), True),)


# -- catalog ----------------------------------------------------------------------------------


class Job(Audited):
    projectid = IntegerField(index=True)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=200)
    uuids = TextField(default="")
    status = CharField(max_length=20, default="transient", index=True)
    mon_ids = CharField(max_length=200, default="")
    mon_status = IntegerField(default=0)

    class Meta:
        indexes = ((("projectid", "name"), True),)


class StepRow(BaseModel):
    """The columns every kind of step has; each kind keeps its rows in its own table. Rows are
    never updated: a job edit writes new ones."""

    jobuuid = CharField(max_length=20, null=True, index=True)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=100)
    user = CharField(max_length=40, default="")
    timeout = IntegerField(default=60)
    pause = CharField(max_length=200, default="")
    deployenv = CharField(max_length=20, default="always")
    action = CharField(max_length=20, default="always")
    batches = CharField(max_length=20, default="always")
    create_time = DateTimeField(default=now)


class HostStepRow(StepRow):
    """The columns of the steps that run on hosts: how they spread over them: batches and forks
    (v16; see engine.catalog.rolling)."""

    rolling = CharField(max_length=100, default="")
    max_fail = CharField(max_length=10, default="0")
    rolling_pause = IntegerField(default=0)
    forks = IntegerField(default=0)  # hosts at once; 0: the worker's choice


class PluginCmd(HostStepRow):
    """A cmd step."""

    node_type = CharField(max_length=20)
    node_cont = TextField(default="")
    scripts_type = CharField(max_length=32)
    scripts_cont = TextField(default="")
    scripts_argv = TextField(default="")


class PluginScp(HostStepRow):
    """An scp step."""

    src_type = CharField(max_length=20)
    src = TextField(default="")
    sp = CharField(max_length=500)
    dst_type = CharField(max_length=20)
    dst = TextField(default="")
    dp = CharField(max_length=500)
    chown = CharField(max_length=40, default="")
    chmod = CharField(max_length=10, default="")
    scp_delete = IntegerField(default=0)


class PluginPlaybook(HostStepRow):
    """A playbook step (v13)."""

    node_type = CharField(max_length=20)
    node_cont = TextField(default="")
    source = TextField(default="")
    playbook = CharField(max_length=500)
    tags = CharField(max_length=500, default="")
    skip_tags = CharField(max_length=500, default="")
    check = IntegerField(default=0)
    diff = IntegerField(default=0)
    verbosity = IntegerField(default=0)


class PluginApproval(StepRow):
    """A human approval step (v15): who must agree, and the text they are shown."""

    cont = TextField(default="")  # ``${var}`` substituted; ``defaultTemplate`` from environment
    approver = CharField(max_length=300)  # comma list of user names or addresses, ``$var`` ok
    everyone = CharField(max_length=10, default="off")  # on: all must agree; off: any one
    relaxed = CharField(max_length=10, default="off")  # on: the submitter approves itself


class Variable(BaseModel):
    jobuuid = CharField(max_length=20)
    name = CharField(max_length=200)
    value = CharField(max_length=2000, default="")
    describe = CharField(max_length=200, default="")
    option = CharField(max_length=1000, default="")
    env = CharField(max_length=10, default="")
    create_user = CharField(max_length=100, default="")
    create_time = DateTimeField(default=now)

    class Meta:
        indexes = ((("jobuuid", "name"), True),)


class Script(Audited):
    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    type = CharField(max_length=32)
    cont = TextField(default="")

    class Meta:
        indexes = ((("projectid", "name"), True),)


class Crontab(Audited):
    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    jobuuid = CharField(max_length=20, index=True)
    cron = CharField(max_length=100)
    mutex = CharField(max_length=100, default="")
    status = CharField(max_length=20, default="unavailable", index=True)
    mutex_policy = CharField(max_length=10, default="fail")  # fail, skip or queue (v6)


class CrontabLock(BaseModel):
    """One crontab fired in one minute: the unique key makes every firing happen once (v6)."""

    crontabid = IntegerField()
    timeid = IntegerField()  # minutes since the epoch
    taskuuid = CharField(max_length=20, default="")
    create_time = DateTimeField(default=now)

    class Meta:
        indexes = ((("crontabid", "timeid"), True), (("timeid",), False))


class Nodegroup(Audited):
    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    plugin = CharField(max_length=100)
    params = TextField(default="null")  # JSON of the value the client sent
    credential = IntegerField(default=0)  # the credential its hosts connect with; 0: none (v7)
    # an admin vouched for its hosts: they may be outside the project's machines (v9)
    reach_any = BooleanField(default=False)

    class Meta:
        indexes = ((("projectid", "name"), True),)


class Userlist(Audited):
    projectid = IntegerField(index=True)
    username = CharField(max_length=100)

    class Meta:
        indexes = ((("projectid", "username"), True),)


class Nodelist(Audited):
    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    inip = CharField(max_length=50, default="")
    exip = CharField(max_length=50, default="")
    type = CharField(max_length=30, default="extend")
    hostvars = TextField(default="{}")  # JSON of admin-set Ansible connection variables (v3)
    credential = IntegerField(default=0)  # the credential it connects with; 0: none (v7)

    class Meta:
        indexes = ((("projectid", "name"), True),)


class Credential(Audited):
    """Login material for nodes (v7). Secrets are Fernet tokens, never stored in clear."""

    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    username = CharField(max_length=64, default="")  # the login user; empty: as configured
    ssh_key = TextField(default="")  # encrypted private key
    become_password = TextField(default="")  # encrypted password for sudo/su
    fingerprint = CharField(max_length=100, default="")  # SHA256 of the public key
    describe = CharField(max_length=200, default="")

    class Meta:
        indexes = ((("projectid", "name"), True),)


class Token(Audited):
    """An upload token. Only its SHA-256 and a short prefix for display are stored."""

    projectid = IntegerField(index=True)
    token_hash = CharField(max_length=200)
    token_prefix = CharField(max_length=8)
    describe = CharField(max_length=200, default="")
    isjob = IntegerField(default=0)
    jobname = CharField(max_length=200, default="")

    class Meta:
        indexes = ((("projectid", "token_hash"), True),)


class Notify(Audited):
    projectid = IntegerField(index=True)
    user = CharField(max_length=200)

    class Meta:
        indexes = ((("projectid", "user"), True),)


# -- runs -------------------------------------------------------------------------------------


class FileServer(Audited):
    """A named file of a project's file store; the bytes are the blob ``sha256`` (v5)."""

    projectid = IntegerField(index=True)
    name = CharField(max_length=300)
    size = BigIntegerField(default=0)
    md5 = CharField(max_length=32)
    sha256 = CharField(max_length=64)

    class Meta:
        table_name = "fileserver"
        indexes = ((("projectid", "name"), True),)


class Environment(BaseModel):
    key = CharField(max_length=200, unique=True)
    value = TextField(default="")
    create_user = CharField(max_length=100, default="")
    create_time = DateTimeField(default=now)


ALL_MODELS = [
    SchemaVersion,
    Project,
    User,
    ApiKey,
    Role,
    Job,
    PluginCmd,
    PluginScp,
    PluginPlaybook,
    PluginApproval,
    Variable,
    Script,
    Crontab,
    Nodegroup,
    Userlist,
    Nodelist,
    Token,
    Notify,
    Environment,
    Task,
    Subtask,
    HostResult,
    LogChunk,
    FileServer,
    CmdLog,
    Vv,
    CrontabLock,
    TaskMutex,
    NotifyLog,
    Credential,
    SocketTicket,
    AuditLog,
    Approval,
]
