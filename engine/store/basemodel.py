"""The base classes of opsjob's peewee models: the database binding and audited rows."""

from typing import TYPE_CHECKING

from peewee import CharField, DateTimeField, IntegerField, Model

from engine.store.clock import now
from engine.store.db import database


class BaseModel(Model):
    if TYPE_CHECKING:  # the primary key peewee adds (or a model declares)
        id: IntegerField[int]

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
    if TYPE_CHECKING:  # every audited table belongs to a project and declares the column
        projectid: IntegerField[int]


# -- identity ---------------------------------------------------------------------------------
