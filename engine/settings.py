"""Every setting opsjob reads, in one table, taken from the environment."""

import os
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Each field maps to one ``OPSJOB_*`` environment variable."""

    home: str = field(default="./var", metadata={"env": "OPSJOB_HOME",
                      "doc": "Data directory: SQLite database, queue, file store, run dirs."})
    database_url: str = field(default="", metadata={"env": "OPSJOB_DATABASE_URL",
                              "doc": "Database URL. Empty means `sqlite:///$OPSJOB_HOME/opsjob.db`; "
                                     "`postgresql://user@host:5432/db` selects PostgreSQL."})
    log_level: str = field(default="INFO", metadata={"env": "OPSJOB_LOG_LEVEL",
                           "doc": "Python log level: DEBUG, INFO, WARNING, ERROR."})
    page_size: int = field(default=100, metadata={"env": "OPSJOB_PAGE_SIZE",
                           "doc": "Default `pagesize` of list routes (the maximum is 1000)."})

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """Build settings from ``environ`` (default ``os.environ``); keyword overrides win."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = int(raw) if f.type in (int, "int") else raw
        values.update(overrides)
        return cls(**values)

    @property
    def database(self):
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return "sqlite:///" + os.path.join(os.path.abspath(self.home), "opsjob.db")


def documented():
    """Yield ``(env name, default, doc)`` for every setting, for the README and its test."""
    for f in fields(Settings):
        yield f.metadata["env"], f.default, f.metadata["doc"]
