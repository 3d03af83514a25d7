"""The schema is versioned: an older database is migrated forward without losing rows."""

from engine.store import schema
from engine.store.db import database, open_database
from engine.store.models import Project, SchemaVersion, User
from tests.conftest import reset_postgres


def make_version_1(settings, request):
    """Build a database as version 1 left it: every migration undone, old rows inserted."""
    if settings.database.startswith("postgres"):
        if database.obj is not None and not database.is_closed():
            database.close()
        reset_postgres(settings.database, drop_schema=True)
        request.addfinalizer(lambda: reset_postgres(settings.database, drop_schema=True))
    open_database(settings.database)
    schema.upgrade()
    assert schema.downgrade(1) == 1
    with database.connection_context():
        database.execute_sql(
            'INSERT INTO "user" (name, admin, create_time) '
            "VALUES ('old-admin', %s, '2020-01-01 00:00:00')"
            % ("true" if settings.database.startswith("postgres") else "1")
        )
        database.execute_sql(  # raw: the model has columns later versions added
            "INSERT INTO project (id, name, status, edit_user, edit_time) "
            "VALUES (7, 'kept', 'active', '', '2020-01-01 00:00:00')"
        )
        columns = [c.name for c in database.get_columns("user")]
        assert "email" not in columns and schema.current_version() == 1
        assert not database.table_exists("task")


def test_upgrade_from_version_1_keeps_rows(settings, request):
    make_version_1(settings, request)
    assert schema.upgrade() == schema.LATEST
    with database.connection_context():
        assert "email" in [c.name for c in database.get_columns("user")]
        assert database.table_exists("task")
        user = User.get(User.name == "old-admin")
        assert user.admin is True and user.email == ""
        assert Project.get_by_id(7).name == "kept"
        User.update(email="ops@example.com").where(User.id == user.id).execute()
    # idempotent: a second run changes nothing
    assert schema.upgrade() == schema.LATEST
    with database.connection_context():
        assert User.get(User.name == "old-admin").email == "ops@example.com"
        assert SchemaVersion.select().count() == 1


def test_fresh_database_is_created_at_latest(settings):
    open_database(settings.database)
    assert schema.upgrade() == schema.LATEST
    with database.connection_context():
        assert Project.get_by_id(0).name == "global"
