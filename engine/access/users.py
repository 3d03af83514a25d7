"""Users and their API keys over their lifetime: list, add a key, revoke it, disable a user.

A key is shown once when it is made; lists show it masked (its first characters). A key may
expire; a revoked key stays listed as revoked. Each change here moves the auth version on (a
trigger, engine.store.authversion), which :func:`engine.access.auth.authenticate` checks on
every request, so it takes effect at once on every API node.
"""

import datetime
import re
from typing import Any

from engine.access import auth
from engine.errors import InvalidInput, NotFound
from engine.store.clock import fmt, now
from engine.store.models import ApiKey, Role, User
from engine.store.validate import Field, check, one

NAME = Field(required=True, pattern=r"[A-Za-z0-9_.-]+", max_len=100, allow_empty=False)
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LONGEST = datetime.timedelta(days=3660)
DURATION = re.compile(r"([0-9]{1,6})([mhdw])")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?")
KEY = {
    # `90d`, `12h`, `30m`, `2w`, or a local date `YYYY-MM-DD[ HH:MM[:SS]]`; empty: never
    "expires": Field(pattern=r"[0-9]{1,6}[mhdw]|" + DATE.pattern, max_len=19, default=""),
}
USER = {"disabled": Field(bool, required=True)}
MAX_ID = 2**63 - 1


def expiry(text: str | None, field: str = "expires") -> datetime.datetime | None:
    """Return the datetime a key given ``expires`` = ``text`` expires at (None: never)."""
    text = (text or "").strip()
    if not text:
        return None
    start = now()
    m = DURATION.fullmatch(text)
    if m:
        span = datetime.timedelta(**{UNITS[m.group(2)]: int(m.group(1))})
        if not datetime.timedelta(0) < span <= LONGEST:
            raise InvalidInput(f"{field}: must be between 1m and {LONGEST.days}d")
        return start + span
    if not DATE.fullmatch(text):
        raise InvalidInput(f"{field}: must be a duration such as 90d, 12h, 30m, 2w, or a date")
    try:
        at = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: not a valid date") from None
    if not start < at <= start + LONGEST:
        raise InvalidInput(f"{field}: must be in the future, within {LONGEST.days} days")
    return at


def _user(name: str) -> User:
    one("name", name, NAME)
    user = User.get_or_none(User.name == name)
    if user is None:
        raise NotFound(f"name: user {name} does not exist")
    return user


def _key_state(row: ApiKey, at: datetime.datetime) -> str:
    if row.revoked is not None:
        return "revoked"
    if row.expires is not None and row.expires <= at:
        return "expired"
    return "active"


def _shown_key(row: ApiKey, at: datetime.datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": (row.hint or "oj_") + "\u2026",
        "state": _key_state(row, at),
        "create_time": fmt(row.create_time),
        "last_used": fmt(row.last_used),
        "expires": fmt(row.expires),
        "revoked": fmt(row.revoked),
    }


def list_users() -> list[dict[str, Any]]:
    """Return every user with their roles and their keys, masked, oldest first."""
    at = now()
    keys: dict[int, list[dict[str, Any]]] = {}
    roles: dict[int, dict[str, str]] = {}
    for row in ApiKey.select().order_by(ApiKey.id):
        keys.setdefault(row.user_id, []).append(_shown_key(row, at))
    for role in Role.select().order_by(Role.projectid):
        roles.setdefault(role.user_id, {})[str(role.projectid)] = role.role
    return [
        {
            "id": user.id,
            "name": user.name,
            "admin": user.admin,
            "email": user.email,
            "disabled": user.disabled,
            "create_time": fmt(user.create_time),
            "roles": roles.get(user.id, {}),
            "keys": keys.get(user.id, []),
        }
        for user in User.select().order_by(User.id)
    ]


def add_key(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Give user ``name`` a new key (``expires``: a duration or date; empty: never).

    Return ``{"id", "key", "expires"}``: the only time the key itself is shown.
    """
    values = check(params, KEY)
    user = _user(name)
    row, key = auth.issue_key(user.name, expiry(values["expires"]))
    return {"id": row.id, "key": key, "expires": fmt(row.expires)}


def revoke_key(keyid: int, name: str | None = None) -> bool:
    """Revoke key ``keyid`` (of user ``name`` when given). Revoking twice keeps the first time."""
    row = ApiKey.get_or_none(ApiKey.id == keyid) if 0 < keyid <= MAX_ID else None
    if row is not None and name is not None and _user(name).id != row.user_id:
        row = None
    if row is None:
        raise NotFound(f"keyid: key {keyid} does not exist")
    ApiKey.update(revoked=now()).where(ApiKey.id == row.id, ApiKey.revoked.is_null()).execute()
    return True


def set_disabled(name: str, params: dict[str, Any]) -> bool:
    """Disable (``{"disabled": true}``) or enable again user ``name``: every key of a
    disabled user is refused."""
    values = check(params, USER)
    user = _user(name)
    User.update(disabled=values["disabled"]).where(User.id == user.id).execute()
    return True
