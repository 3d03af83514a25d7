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


# version -> (what changed, up from the previous version, down to the previous version)
MIGRATIONS = {
    2: ("users have an email address for notifications", _v2_up, _v2_down),
    3: ("tasks, steps, per-host results and logs; nodelist hostvars", _v3_up, _v3_down),
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
