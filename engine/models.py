"""peewee models: one class per table. Column names follow OpenC3's JOB schema."""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    Model,
    TextField,
)

from .clock import now
from .db import database


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Audited(BaseModel):
    """Rows that record who created and last edited them, and are soft deleted."""

    create_user = CharField(max_length=100, default="")
    create_time = DateTimeField(default=now)
    edit_user = CharField(max_length=100, default="")
    edit_time = DateTimeField(default=now)
    status = CharField(max_length=20, default="available", index=True)


# -- identity ---------------------------------------------------------------------------------


class SchemaVersion(BaseModel):
    version = IntegerField()


class Project(BaseModel):
    id = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    status = CharField(max_length=20, default="active")
    edit_user = CharField(max_length=100, default="")
    edit_time = DateTimeField(default=now)


class User(BaseModel):
    name = CharField(max_length=100, unique=True)
    admin = BooleanField(default=False)
    email = CharField(max_length=200, default="")  # added in schema version 2
    create_time = DateTimeField(default=now)


class ApiKey(BaseModel):
    """An API key: only its SHA-256 is stored; the key itself is shown once."""

    user_id = IntegerField(index=True)
    key_hash = CharField(max_length=64, unique=True)
    create_time = DateTimeField(default=now)


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


class PluginCmd(BaseModel):
    """A cmd step. Rows are never updated: a job edit writes new ones."""

    jobuuid = CharField(max_length=20, null=True, index=True)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=100)
    user = CharField(max_length=40, default="")
    node_type = CharField(max_length=20)
    node_cont = TextField(default="")
    scripts_type = CharField(max_length=32)
    scripts_cont = TextField(default="")
    scripts_argv = TextField(default="")
    timeout = IntegerField(default=60)
    pause = CharField(max_length=200, default="")
    deployenv = CharField(max_length=20, default="always")
    action = CharField(max_length=20, default="always")
    batches = CharField(max_length=20, default="always")
    create_time = DateTimeField(default=now)


class PluginScp(BaseModel):
    """An scp step. Rows are never updated: a job edit writes new ones."""

    jobuuid = CharField(max_length=20, null=True, index=True)
    uuid = CharField(max_length=20, unique=True)
    name = CharField(max_length=100)
    user = CharField(max_length=40, default="")
    src_type = CharField(max_length=20)
    src = TextField(default="")
    sp = CharField(max_length=500)
    dst_type = CharField(max_length=20)
    dst = TextField(default="")
    dp = CharField(max_length=500)
    chown = CharField(max_length=40, default="")
    chmod = CharField(max_length=10, default="")
    timeout = IntegerField(default=60)
    scp_delete = IntegerField(default=0)
    pause = CharField(max_length=200, default="")
    deployenv = CharField(max_length=20, default="always")
    action = CharField(max_length=20, default="always")
    batches = CharField(max_length=20, default="always")
    create_time = DateTimeField(default=now)


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


class Nodegroup(Audited):
    projectid = IntegerField(index=True)
    name = CharField(max_length=200)
    plugin = CharField(max_length=100)
    params = TextField(default="null")  # JSON of the value the client sent

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


class Environment(BaseModel):
    key = CharField(max_length=200, unique=True)
    value = TextField(default="")
    create_user = CharField(max_length=100, default="")
    create_time = DateTimeField(default=now)


ALL_MODELS = [
    SchemaVersion, Project, User, ApiKey, Role,
    Job, PluginCmd, PluginScp, Variable, Script, Crontab, Nodegroup,
    Userlist, Nodelist, Token, Notify, Environment,
]
