"""Users, API keys and per-project roles, and the one check every route goes through."""

import datetime
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from peewee import IntegrityError

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from engine.store import authversion
from engine.store.clock import now
from engine.store.models import ApiKey, Project, Role, User, database
from engine.store.validate import Field, one

ROLES = ("read", "control", "write", "delete")
LEVEL = {name: i + 1 for i, name in enumerate(ROLES)}
ADMIN = "admin"
HINT_LEN = 7  # "oj_" and four characters: enough to tell keys apart in a list
LAST_USE_EVERY = datetime.timedelta(seconds=60)
KEPT_SECONDS = 5.0  # how long a node keeps what it read about a key while nothing changed
KEPT_MAX = 10000  # keys kept at once per process


@dataclass
class Principal:
    """Who is calling: a user name, whether they are admin, and their role per project."""

    name: str
    user_id: int = 0
    admin: bool = False
    roles: dict[int, str] = field(default_factory=dict)
    via_app: bool = False
    key_id: int = 0  # the API key the caller authenticated with

    @property
    def calltype(self) -> str:
        """``api`` for app callers, ``page`` otherwise, as OpenC3 records it."""
        return "api" if self.via_app else "page"

    def allows(self, projectid: Any, role: str) -> bool:
        """Tell whether this caller holds ``role`` (or more) on ``projectid``."""
        if self.admin:
            return True
        if role == ADMIN:
            return False
        return LEVEL.get(self.roles.get(int(projectid), ""), 0) >= LEVEL[role]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add_user(
    name: str,
    admin: bool = False,
    email: str = "",
    projectid: int | None = None,
    role: str | None = None,
    expires: datetime.datetime | None = None,
) -> str:
    """Create a user (with an optional role on one project) and return a new API key
    (valid until ``expires``, a datetime, or until revoked)."""
    one("name", name, Field(required=True, pattern=r"[A-Za-z0-9_.-]+", max_len=100))
    if role is not None and role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}")
    with database.atomic():
        try:
            user = User.create(name=name, admin=admin, email=email or "")
        except IntegrityError:
            raise Conflict(f"name: user {name} already exists") from None
        if projectid is not None:
            grant(name, projectid, role or "read")
        return new_key(user.name, expires)


def grant(name: str, projectid: int | str, role: str) -> None:
    """Give user ``name`` ``role`` on ``projectid`` (replacing any earlier role there)."""
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}")
    user = User.get_or_none(User.name == name)
    if user is None:
        raise NotFound(f"user: {name} does not exist")
    if Project.get_or_none(Project.id == int(projectid)) is None:
        raise NotFound(f"project: {projectid} does not exist")
    Role.insert(user_id=user.id, projectid=int(projectid), role=role).on_conflict(
        conflict_target=[Role.user_id, Role.projectid], update={Role.role: role}
    ).execute()


def new_key(name: str, expires: datetime.datetime | None = None) -> str:
    """Create and return a new API key for user ``name`` (see :func:`issue_key`)."""
    return issue_key(name, expires)[1]


def issue_key(name: str, expires: datetime.datetime | None = None) -> tuple[ApiKey, str]:
    """Create a new API key for user ``name``, valid until ``expires`` (a datetime; None:
    until revoked). Return ``(row, key)``; only the key's hash and first characters are kept."""
    user = User.get_or_none(User.name == name)
    if user is None:
        raise NotFound(f"user: {name} does not exist")
    key = "oj_" + secrets.token_urlsafe(32)
    row = ApiKey.create(user_id=user.id, key_hash=_hash(key), hint=key[:HINT_LEN], expires=expires)
    return row, key


@dataclass
class _Kept:
    """What a process read about a key, valid while the auth version stays ``version``."""

    version: int
    read_at: float
    principal: Principal
    expires: datetime.datetime | None


# (key hash, appname) -> _Kept; and the projects known to exist at one auth version.
_kept: dict[tuple[str, str | None], _Kept] = {}
_projects: dict[str, Any] = {"version": None, "ids": set()}


def authenticate(key: str | None, appname: str | None = None) -> Principal:
    """Return the :class:`Principal` holding ``key``; ``appname`` must then name its user.

    What was read about a key is kept for up to KEPT_SECONDS, but only while the auth
    version (engine.store.authversion, moved on by triggers at every revocation, disabled
    user, role or project change) is the one it was read at. Each request reads that one
    counter, so a revocation takes effect at once on every API node; an expiry is checked
    against the clock on every use.
    """
    if not key:
        raise Unauthenticated("missing credentials: appkey is empty")
    version = authversion.current()
    if _projects["version"] != version:
        _projects["version"], _projects["ids"] = version, set()
    t = now()
    kept = _kept.get((_hash(key), appname))
    if kept and kept.version == version and time.monotonic() - kept.read_at < KEPT_SECONDS:
        if kept.expires is not None and kept.expires <= t:
            raise Unauthenticated("credentials expired")
        return kept.principal
    principal, expires = _read(key, appname, t)
    if len(_kept) >= KEPT_MAX:
        _kept.clear()
    _kept[(_hash(key), appname)] = _Kept(version, time.monotonic(), principal, expires)
    return principal


def _read(
    key: str, appname: str | None, t: datetime.datetime
) -> tuple[Principal, datetime.datetime | None]:
    """Read key ``key`` and its user from the database; return ``(principal, expires)``."""
    row = (
        ApiKey.select(ApiKey, User)
        .join(User, on=(ApiKey.user_id == User.id), attr="user")
        .where(ApiKey.key_hash == _hash(key))
        .first()
    )
    user = row.user if row else None
    if user is None or (appname is not None and not hmac.compare_digest(appname, user.name)):
        raise Unauthenticated("unknown credentials")
    _refuse_dead(row, user, t)
    _note_use(row, t)
    roles = {r.projectid: r.role for r in Role.select().where(Role.user_id == user.id)}
    name = f"{user.name}@app" if appname is not None else user.name
    principal = Principal(
        name=name,
        user_id=user.id,
        admin=user.admin,
        roles=roles,
        via_app=appname is not None,
        key_id=row.id,
    )
    return principal, row.expires


def check_key(key_id: int) -> None:
    """Raise Unauthenticated unless key ``key_id`` is still valid (for credentials derived
    from a key, which must die with it)."""
    row = (
        ApiKey.select(ApiKey, User)
        .join(User, on=(ApiKey.user_id == User.id), attr="user")
        .where(ApiKey.id == key_id)
        .first()
    )
    if row is None:
        raise Unauthenticated("unknown credentials")
    _refuse_dead(row, row.user, now())


def _refuse_dead(row: ApiKey, user: User, t: datetime.datetime) -> None:
    if row.revoked is not None:
        raise Unauthenticated("credentials revoked")
    if row.expires is not None and row.expires <= t:
        raise Unauthenticated("credentials expired")
    if user.disabled:
        raise Unauthenticated("credentials of a disabled user")


def _note_use(row: ApiKey, t: datetime.datetime) -> None:
    """Record that key ``row`` was used at ``t``: one write per key per LAST_USE_EVERY at most."""
    if row.last_used is not None and t - row.last_used < LAST_USE_EVERY:
        return
    stale = ApiKey.last_used.is_null() | (ApiKey.last_used <= t - LAST_USE_EVERY)
    ApiKey.update(last_used=t).where(ApiKey.id == row.id, stale).execute()


def require(principal: Principal, projectid: int | str | None, role: str) -> None:
    """Raise unless ``principal`` holds ``role`` on ``projectid`` and the project exists."""
    if not principal.allows(projectid, role):
        raise Forbidden(
            f"not allowed: {role} on project {projectid} is required"
            if role != ADMIN
            else "not allowed: admin is required"
        )
    if projectid is not None and not _project_exists(int(projectid)):
        raise NotFound(f"projectid: project {projectid} does not exist")


def _project_exists(projectid: int) -> bool:
    # Known ids are forgotten when the auth version moves (a project was deleted or renumbered).
    if projectid in _projects["ids"]:
        return True
    if Project.get_or_none(Project.id == projectid) is None:
        return False
    _projects["ids"].add(projectid)
    return True


def user_exists(name: str) -> bool:
    """Tell whether a user called ``name`` exists."""
    return User.get_or_none(User.name == name) is not None
