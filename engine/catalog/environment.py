"""Environment: the platform-wide key/value settings (notification flags, templates)."""

import re
from collections.abc import Iterable
from typing import Any

from engine.errors import InvalidInput
from engine.store.clock import now
from engine.store.models import Environment, database
from engine.store.validate import NO_CONTROL

KEY = re.compile(r"[A-Za-z0-9]+")
VALUE = re.compile(NO_CONTROL)
MAX_KEY, MAX_VALUE = 200, 5000


def _key(key: str) -> str:
    shown = (key if len(key) <= 40 else key[:40] + "...") or "''"
    if not KEY.fullmatch(key):
        raise InvalidInput(f"{shown}: the key must match {KEY.pattern}")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"{shown}: the key is longer than {MAX_KEY} characters")
    return key


def _value(key: str, value: Any) -> str:
    # Only text is stored: a JSON true or 1 is refused so that flags, which must be the
    # exact string "true" to take effect, never silently mean something else.
    if not isinstance(value, str):
        raise InvalidInput(f"{key}: the value must be a string")
    if len(value) > MAX_VALUE:
        raise InvalidInput(f"{key}: longer than {MAX_VALUE} characters")
    if not VALUE.fullmatch(value):
        raise InvalidInput(f"{key}: must not contain control characters other than tab and newline")
    return value


def get_all() -> dict[str, str]:
    """Return every key and its value as one dict."""
    return {r.key: r.value for r in Environment.select().order_by(Environment.key)}


def set_values(params: Any, user: str) -> int:
    """Upsert every ``key: value`` of ``params``; return the number of keys.

    Keys are ``[A-Za-z0-9]+`` (at most 200 characters) and values are strings of at most
    5000 characters; numbers, booleans and other JSON types are refused with a 400 naming
    the key. Nothing is written unless every pair is valid.
    """
    if not isinstance(params, dict) or not params:
        raise InvalidInput("body: send at least one key=value pair")
    pairs = {_key(k): _value(k, v) for k, v in params.items()}
    with database.atomic():
        for key, value in pairs.items():
            (
                Environment.insert(key=key, value=value, create_user=user, create_time=now())
                .on_conflict(
                    conflict_target=[Environment.key],
                    update={
                        Environment.value: value,
                        Environment.create_user: user,
                        Environment.create_time: now(),
                    },
                )
                .execute()
            )
    return len(pairs)


def delete_keys(keys: Iterable[str]) -> int:
    """Delete the keys named in ``keys``; return how many existed."""
    names = [_key(k) for k in keys]
    if not names:
        raise InvalidInput("body: name at least one key to delete")
    return Environment.delete().where(Environment.key.in_(names)).execute()
