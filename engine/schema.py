"""Versioned schema: create a fresh database, or migrate an older one forward in place."""

import logging

from playhouse.migrate import SchemaMigrator, migrate

from . import models
from .db import database

log = logging.getLogger(__name__)


def _v2_user_email(migrator):
    migrate(migrator.add_column("user", "email", models.User.email))


# version -> (what changed, function that brings the previous version to this one)
MIGRATIONS = {
    2: ("users have an email address for notifications", _v2_user_email),
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
            what, step = MIGRATIONS[target]
            with database.atomic():
                step(migrator)
                models.SchemaVersion.update(version=target).execute()
            log.info("migrated schema to version %s: %s", target, what)
        models.Project.get_or_create(id=0, defaults={"name": "global"})
        return current_version()
