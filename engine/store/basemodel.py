"""The base classes of opsjob's peewee models: the database binding and audited rows."""

from peewee import CharField, DateTimeField, Model

from engine.store.clock import now
from engine.store.db import database


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
