"""Users, API keys and per-project roles, and the one check every route goes through."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from peewee import IntegrityError

from .errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from .models import ApiKey, Project, Role, User, database
from .validate import Field, one

ROLES = ("read", "control", "write", "delete")
LEVEL = {name: i + 1 for i, name in enumerate(ROLES)}
ADMIN = "admin"


@dataclass
class Principal:
    """Who is calling: a user name, whether they are admin, and their role per project."""

    name: str
    user_id: int = 0
    admin: bool = False
    roles: dict = field(default_factory=dict)
    via_app: bool = False

    @property
    def calltype(self):
        """``api`` for app callers, ``page`` otherwise, as OpenC3 records it."""
        return "api" if self.via_app else "page"

    def allows(self, projectid, role):
        """Tell whether this caller holds ``role`` (or more) on ``projectid``."""
        if self.admin:
            return True
        if role == ADMIN:
            return False
        return LEVEL.get(self.roles.get(int(projectid), ""), 0) >= LEVEL[role]


def _hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def add_user(name, admin=False, email="", projectid=None, role=None):
    """Create a user (with an optional role on one project) and return a new API key."""
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
        return new_key(user.name)


def grant(name, projectid, role):
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


def new_key(name):
    """Create and return a new API key for user ``name``; only its hash is stored."""
    user = User.get_or_none(User.name == name)
    if user is None:
        raise NotFound(f"user: {name} does not exist")
    key = "oj_" + secrets.token_urlsafe(32)
    ApiKey.create(user_id=user.id, key_hash=_hash(key))
    return key


def authenticate(key, appname=None):
    """Return the :class:`Principal` holding ``key``; ``appname`` must then name its user."""
    if not key:
        raise Unauthenticated("missing credentials: appkey is empty")
    row = ApiKey.get_or_none(ApiKey.key_hash == _hash(key))
    user = User.get_or_none(User.id == row.user_id) if row else None
    if user is None or (appname is not None and not hmac.compare_digest(appname, user.name)):
        raise Unauthenticated("unknown credentials")
    roles = {r.projectid: r.role for r in Role.select().where(Role.user_id == user.id)}
    name = f"{user.name}@app" if appname is not None else user.name
    return Principal(
        name=name, user_id=user.id, admin=user.admin, roles=roles, via_app=appname is not None
    )


def require(principal, projectid, role):
    """Raise unless ``principal`` holds ``role`` on ``projectid`` and the project exists."""
    if not principal.allows(projectid, role):
        raise Forbidden(
            f"not allowed: {role} on project {projectid} is required"
            if role != ADMIN
            else "not allowed: admin is required"
        )
    if projectid is not None and Project.get_or_none(Project.id == int(projectid)) is None:
        raise NotFound(f"projectid: project {projectid} does not exist")


def user_exists(name):
    """Tell whether a user called ``name`` exists."""
    return User.get_or_none(User.name == name) is not None
