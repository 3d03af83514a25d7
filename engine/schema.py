"""Versioned schema: create a fresh database, or migrate an older one forward in place."""

import logging

from playhouse.migrate import SchemaMigrator, migrate

from . import models
from .db import database

log = logging.getLogger(__name__)


RUN_TABLES = [models.Task, models.Subtask, models.HostResult, models.LogChunk]


def _v2_up(migrator):
    migrate(migrator.add_column("user", "email", models.User.email))


def _v2_down(migrator):
    migrate(migrator.drop_column("user", "email"))


def _v3_up(migrator):
    database.create_tables(RUN_TABLES)
    migrate(migrator.add_column("nodelist", "hostvars", models.Nodelist.hostvars))


def _v3_down(migrator):
    database.drop_tables(RUN_TABLES)
    migrate(migrator.drop_column("nodelist", "hostvars"))


ANALYSIS_INDEXES = ("task_projectid_starttime", "task_starttime_projectid_status")


def _v4_up(migrator):
    database.create_tables([models.Vv])
    # v3 creates the task table from the current model, indexes included: create if missing.
    models.Task._schema.create_indexes(safe=True)


def _v4_down(migrator):
    database.drop_tables([models.Vv])
    for name in ANALYSIS_INDEXES:
        database.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


FILE_TABLES = [models.FileServer, models.CmdLog]


def _v5_up(migrator):
    database.create_tables(FILE_TABLES)


def _v5_down(migrator):
    database.drop_tables(FILE_TABLES)


SCHEDULE_TABLES = [models.CrontabLock, models.TaskMutex, models.NotifyLog]
SCHEDULE_COLUMNS = (
    ("task", "mutex_policy", models.Task.mutex_policy),
    ("crontab", "mutex_policy", models.Crontab.mutex_policy),
    ("project", "webhook", models.Project.webhook),
)


def _v6_up(migrator):
    database.create_tables(SCHEDULE_TABLES, safe=True)
    for table, name, column in SCHEDULE_COLUMNS:
        # v3 creates the task table from the current model: the column may be there already.
        if name not in [c.name for c in database.get_columns(table)]:
            migrate(migrator.add_column(table, name, column))


def _v6_down(migrator):
    database.drop_tables(SCHEDULE_TABLES)
    for table, name, _ in SCHEDULE_COLUMNS:
        migrate(migrator.drop_column(table, name))


CREDENTIAL_COLUMNS = (
    ("nodegroup", "credential", models.Nodegroup.credential),
    ("nodelist", "credential", models.Nodelist.credential),
)


def _v7_up(migrator):
    database.create_tables([models.Credential], safe=True)
    for table, name, column in CREDENTIAL_COLUMNS:
        if name not in [c.name for c in database.get_columns(table)]:
            migrate(migrator.add_column(table, name, column))


def _v7_down(migrator):
    database.drop_tables([models.Credential])
    for table, name, _ in CREDENTIAL_COLUMNS:
        migrate(migrator.drop_column(table, name))


# version -> (what changed, up from the previous version, down to the previous version)
MIGRATIONS = {
    2: ("users have an email address for notifications", _v2_up, _v2_down),
    3: ("tasks, steps, per-host results and logs; nodelist hostvars", _v3_up, _v3_down),
    4: ("version variables (vv); task indexes for the analysis routes", _v4_up, _v4_down),
    5: ("file store rows (fileserver) and the command console log (cmdlog)", _v5_up, _v5_down),
    6: ("cron fire locks, task mutexes, notify log, mutex policies, webhook", _v6_up, _v6_down),
    7: ("credentials; the credential of node groups and machines", _v7_up, _v7_down),
}
LATEST = max([1, *MIGRATIONS])


def current_version():
    """Return the schema version of the bound database, or 0 if it has no schema yet."""
    if not database.table_exists(models.SchemaVersion._meta.table_name):
        return 0
    row = models.SchemaVersion.select().order_by(models.SchemaVersion.version.desc()).first()
    return row.version if row else 0


def upgrade():
    """Create the schema, or migrate it to ``LATEST``; idempotent. Return the final version."""
    with database.connection_context():
        version = current_version()
        if version == 0:
            with database.atomic():
                database.create_tables(models.ALL_MODELS, safe=True)
                models.SchemaVersion.create(version=LATEST)
            log.info("created schema version %s", LATEST)
        migrator = SchemaMigrator.from_database(database.obj)
        for target in range(max(version, 1) + 1, LATEST + 1):
            if version == 0:
                break
            what, up, _ = MIGRATIONS[target]
            with database.atomic():
                up(migrator)
                models.SchemaVersion.update(version=target).execute()
            log.info("migrated schema to version %s: %s", target, what)
        models.Project.get_or_create(id=0, defaults={"name": "global"})
        return current_version()


def downgrade(target):
    """Undo migrations down to version ``target`` (for rollbacks and upgrade tests)."""
    with database.connection_context():
        migrator = SchemaMigrator.from_database(database.obj)
        for version in range(current_version(), target, -1):
            with database.atomic():
                MIGRATIONS[version][2](migrator)
                models.SchemaVersion.update(version=version - 1).execute()
        return current_version()
