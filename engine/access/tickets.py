"""Single-use tickets that open one websocket: a browser cannot set headers on a websocket,
so a page trades its key (sent in a header) for a ticket it puts in the socket's URL.

A ticket lives ``TTL`` seconds, opens one socket, and carries no more than its key: the key
must still be valid when the ticket is used, and the roles are read again then. Only the
ticket's hash is stored, so the database never holds a usable ticket.
"""

import datetime
import hashlib
import secrets
from typing import Any

from engine.access import auth
from engine.errors import Unauthenticated
from engine.store.clock import now
from engine.store.models import ApiKey, Role, SocketTicket, User

TTL = datetime.timedelta(seconds=30)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue(
    principal: auth.Principal, key: str, projectid: int | str, role: str = "read"
) -> dict[str, Any]:
    """Return a new ticket for the holder of ``key`` (already authenticated as
    ``principal``), who must hold ``role`` on ``projectid``: ``{ticket, expires}``."""
    auth.require(principal, projectid, role)
    row = ApiKey.get_or_none(ApiKey.key_hash == _hash(key))
    if row is None:
        raise Unauthenticated("unknown credentials")
    ticket = "wt_" + secrets.token_urlsafe(24)
    t = now()
    # Expired tickets of anyone go with each new one, so the table stays small.
    SocketTicket.delete().where(SocketTicket.expires < t).execute()
    SocketTicket.create(
        ticket_hash=_hash(ticket),
        user_id=principal.user_id,
        key_id=row.id,
        via_app=principal.via_app,
        projectid=int(projectid),
        expires=t + TTL,
    )
    return {"ticket": ticket, "expires": int(TTL.total_seconds())}


def redeem(ticket: str | None, projectid: int | str | None) -> auth.Principal:
    """Use ``ticket`` up (it opens one socket) and return the Principal it stands for.

    The ticket must be unused, unexpired, issued for ``projectid``, and its key still valid.
    """
    if not ticket:
        raise Unauthenticated("missing credentials: send a key or a ticket")
    h = _hash(ticket)
    t = now()
    row = SocketTicket.get_or_none(SocketTicket.ticket_hash == h)
    # One delete decides which of two racing uses wins (no read-then-write transaction).
    used = SocketTicket.delete().where(SocketTicket.ticket_hash == h).execute() if row else 0
    if row is None or not used or row.expires <= t:
        raise Unauthenticated("unknown or expired ticket (a ticket opens one socket)")
    if projectid is None or row.projectid != int(projectid):
        raise Unauthenticated("the ticket was issued for another project")
    user = User.get_or_none(User.id == row.user_id)
    try:
        auth.check_key(row.key_id)
        if user is None:
            raise Unauthenticated("unknown credentials")
    except Unauthenticated:
        raise Unauthenticated("the key that asked for the ticket is no longer valid") from None
    roles = {r.projectid: r.role for r in Role.select().where(Role.user_id == user.id)}
    return auth.Principal(
        name=f"{user.name}@app" if row.via_app else user.name,
        user_id=user.id,
        admin=user.admin,
        roles=roles,
        via_app=row.via_app,
    )
