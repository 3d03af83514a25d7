"""Versioned schema: create a fresh database, or migrate an older one forward in place."""

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from playhouse.migrate import SchemaMigrator, migrate

from engine.store import authversion, models
from engine.store.db import database

log = logging.getLogger(__name__)
Migration = Callable[[Any], None]  # up or down, given the schema migrator


# A migration that creates a table builds it from today's model, so a column that a later
# migration adds may already be there: columns are added only where missing.


def _add_columns(migrator: Any, columns: Iterable[tuple[str, str, Any]]) -> None:
    for table, name, field in columns:
        if name not in [c.name for c in database.get_columns(table)]:
            migrate(migrator.add_column(table, name, field))


def _drop_columns(migrator: Any, columns: Iterable[tuple[str, str, Any]]) -> None:
    for table, name, _ in columns:
        migrate(migrator.drop_column(table, name))


def _tables_and_columns(
    tables: Sequence[Any] = (),
    columns: Sequence[tuple[str, str, Any]] = (),
    indexes_of: Sequence[Any] = (),
) -> tuple[Migration, Migration]:
    """Return (up, down) for a version that adds ``tables``, ``columns`` and model indexes."""

    def up(migrator: Any) -> None:
        database.create_tables(list(tables), safe=True)
        _add_columns(migrator, columns)
        for model in indexes_of:
            model._schema.create_indexes(safe=True)

    def down(migrator: Any) -> None:
        database.drop_tables(list(tables))
        _drop_columns(migrator, columns)
        for model in indexes_of:
            for index in model._meta.indexes:
                name = "_".join([model._meta.table_name, *index[0]])
                database.execute_sql(f'DROP INDEX IF EXISTS "{name}"')

    return up, down


def _version(
    what: str,
    tables: Sequence[Any] = (),
    columns: Sequence[tuple[str, str, Any]] = (),
    indexes_of: Sequence[Any] = (),
) -> tuple[str, Migration, Migration]:
    return (what, *_tables_and_columns(tables, columns, indexes_of))


# version -> (what changed, up from the previous version, down to the previous version)
MIGRATIONS: dict[int, tuple[str, Migration, Migration]] = {
    2: _version(
        "users have an email address for notifications",
        columns=[("user", "email", models.User.email)],
    ),
    3: _version(
        "tasks, steps, per-host results and logs; nodelist hostvars",
        tables=[models.Task, models.Subtask, models.HostResult, models.LogChunk],
        columns=[("nodelist", "hostvars", models.Nodelist.hostvars)],
    ),
    4: _version(
        "version variables (vv); task indexes for the analysis routes",
        tables=[models.Vv],
        indexes_of=[models.Task],
    ),
    5: _version(
        "file store rows (fileserver) and the command console log (cmdlog)",
        tables=[models.FileServer, models.CmdLog],
    ),
    6: _version(
        "cron fire locks, task mutexes, notify log, mutex policies, webhook",
        tables=[models.CrontabLock, models.TaskMutex, models.NotifyLog],
        columns=[
            ("task", "mutex_policy", models.Task.mutex_policy),
            ("crontab", "mutex_policy", models.Crontab.mutex_policy),
            ("project", "webhook", models.Project.webhook),
        ],
    ),
    7: _version(
        "credentials; the credential of node groups and machines",
        tables=[models.Credential],
        columns=[
            ("nodegroup", "credential", models.Nodegroup.credential),
            ("nodelist", "credential", models.Nodelist.credential),
        ],
    ),
    8: _version(
        "API keys expire and can be revoked (shown masked, with their last use); users can be "
        "disabled",
        columns=[
            ("api_key", "hint", models.ApiKey.hint),
            ("api_key", "last_used", models.ApiKey.last_used),
            ("api_key", "expires", models.ApiKey.expires),
            ("api_key", "revoked", models.ApiKey.revoked),
            ("user", "disabled", models.User.disabled),
        ],
    ),
    9: _version(
        "node groups an admin lets reach hosts outside the project's machines (reach_any)",
        columns=[("nodegroup", "reach_any", models.Nodegroup.reach_any)],
    ),
    10: _version(
        "single-use tickets that open a websocket (live logs, the terminal)",
        tables=[models.SocketTicket],
    ),
    11: _version(
        "a decision can retry the hosts whose outcome is unknown (subtask.retry_unknown)",
        columns=[("subtask", "retry_unknown", models.Subtask.retry_unknown)],
    ),
    12: _version(
        "the audit trail: who changed what through the API, the console and the CLI",
        tables=[models.AuditLog],
    ),
    13: _version("playbook steps (plugin_playbook)", tables=[models.PluginPlaybook]),
    14: (
        "a counter that triggers move on when keys, users, roles or projects change "
        "(auth_version), so API nodes may keep what they read about a key",
        lambda migrator: authversion.install(),
        lambda migrator: authversion.uninstall(),
    ),
    15: _version(
        "approval steps (plugin_approval) and their approvers' opinions (approval)",
        tables=[models.PluginApproval, models.Approval],
    ),
    16: _version(
        "steps roll over their hosts in batches (rolling, max_fail, rolling_pause) and cap their "
        "forks; the batch of each host result",
        columns=[
            *(
                (table, name, getattr(models.HostStepRow, name))
                for table in ("plugin_cmd", "plugin_scp", "plugin_playbook")
                for name in ("rolling", "max_fail", "rolling_pause", "forks")
            ),
            ("host_result", "batch", models.HostResult.batch),
        ],
    ),
}
LATEST = max([1, *MIGRATIONS])


def current_version() -> int:
    """Return the schema version of the bound database, or 0 if it has no schema yet."""
    if not database.table_exists(models.SchemaVersion._meta.table_name):
        return 0
    row = models.SchemaVersion.select().order_by(models.SchemaVersion.version.desc()).first()
    return row.version if row else 0


def upgrade() -> int:
    """Create the schema, or migrate it to ``LATEST``; idempotent. Return the final version."""
    with database.connection_context():
        version = current_version()
        if version == 0:
            with database.atomic():
                database.create_tables(models.ALL_MODELS, safe=True)
                authversion.install()
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


def downgrade(target: int) -> int:
    """Undo migrations down to version ``target`` (for rollbacks and upgrade tests)."""
    with database.connection_context():
        migrator = SchemaMigrator.from_database(database.obj)
        for version in range(current_version(), target, -1):
            with database.atomic():
                MIGRATIONS[version][2](migrator)
                models.SchemaVersion.update(version=version - 1).execute()
        return current_version()
