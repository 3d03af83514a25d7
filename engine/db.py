"""Database connection: one proxy every model binds to, opened from a URL."""

import os
from urllib.parse import urlparse

from peewee import DatabaseProxy
from playhouse import db_url

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    # takes effect on a new database only (see engine.retention.reclaim)
    "auto_vacuum": "incremental",
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "cache_size": -16000,
    "temp_store": "memory",
}


def open_database(url):
    """Bind the models to the database at ``url`` and return the peewee database."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        db = db_url.connect(url, pragmas=SQLITE_PRAGMAS, timeout=10)
    elif scheme in ("postgres", "postgresql") and "+pool" not in scheme:
        # A connection per request costs 15-25 ms on PostgreSQL: pool them per process.
        pooled = url.replace(f"{scheme}://", f"{scheme}+pool://", 1)
        db = db_url.connect(pooled, max_connections=64, stale_timeout=300, timeout=30)
    else:
        db = db_url.connect(url)
    database.initialize(db)
    return db


def is_sqlite():
    """Tell whether the bound database is SQLite."""
    return database.obj is not None and database.obj.__class__.__name__.startswith("Sqlite")
