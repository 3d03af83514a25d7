"""A counter that moves on whenever who may do what changes, kept by the database itself.

Triggers bump it on every change to a key's validity, a user's standing, a role or a project,
whichever process or code path makes the change. An API node may keep what it read about a key
while the counter has not moved (engine.access.auth), so a revocation is seen on every node at
its next request.
"""

import secrets

from engine.store.db import database, is_sqlite

TABLE = "auth_version"
# (table, event): the changes that can take rights away (or give them).
EVENTS = (
    ("api_key", "UPDATE OF revoked, expires, user_id, key_hash"),
    ("api_key", "DELETE"),
    ("user", "UPDATE OF admin, disabled, name"),
    ("user", "DELETE"),
    ("role", "INSERT"),
    ("role", "UPDATE"),
    ("role", "DELETE"),
    ("project", "UPDATE OF id"),
    ("project", "DELETE"),
)
BUMP = f"UPDATE {TABLE} SET n = n + 1"


def _trigger_name(table: str, event: str) -> str:
    return f"{TABLE}_{table}_{event.split()[0].lower()}"


def install() -> None:
    """Create the counter and its triggers (idempotent)."""
    database.execute_sql(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, n BIGINT)")
    _seed()
    if not is_sqlite():
        database.execute_sql(
            f"CREATE OR REPLACE FUNCTION {TABLE}_bump() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
    for table, event in EVENTS:
        name = _trigger_name(table, event)
        if is_sqlite():
            database.execute_sql(
                f'CREATE TRIGGER IF NOT EXISTS "{name}" AFTER {event} ON "{table}" '
                f"BEGIN {BUMP}; END"
            )
        else:
            database.execute_sql(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"')
            database.execute_sql(
                f'CREATE TRIGGER "{name}" AFTER {event} ON "{table}" '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_bump()"
            )


def uninstall() -> None:
    """Drop the triggers and the counter."""
    for table, event in EVENTS:
        name = _trigger_name(table, event)
        on = "" if is_sqlite() else f' ON "{table}"'
        database.execute_sql(f'DROP TRIGGER IF EXISTS "{name}"{on}')
    if not is_sqlite():
        database.execute_sql(f"DROP FUNCTION IF EXISTS {TABLE}_bump()")
    database.execute_sql(f"DROP TABLE IF EXISTS {TABLE}")


def _seed() -> None:
    # A random start: a counter emptied and made again never repeats a value a node kept.
    database.execute_sql(
        f"INSERT INTO {TABLE} (id, n) SELECT 1, {database.param} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {TABLE})",
        (secrets.randbits(48),),
    )


def current() -> int:
    """Return the counter's value (making the row again if it was emptied)."""
    row = database.execute_sql(f"SELECT n FROM {TABLE}").fetchone()
    if row is None:
        _seed()
        row = database.execute_sql(f"SELECT n FROM {TABLE}").fetchone()
    return row[0]
