"""The role a responder needs, declared once per responder and checked before it runs."""

import functools
from collections.abc import Callable
from typing import Any

import falcon

from engine.access import auth
from engine.errors import Unauthenticated

Responder = Callable[..., None]


def requires(role: str) -> Callable[[Responder], Responder]:
    """Decorate a responder so it runs only for callers holding ``role`` on ``projectid``.

    ``role`` is one of read, control, write, delete, admin, ``login`` (any known caller), or
    ``public`` (no credentials needed; the responder checks what it serves).
    """

    def decorate(responder: Responder) -> Responder:
        @functools.wraps(responder)
        def checked(
            self: object, req: falcon.Request, resp: falcon.Response, **fields: Any
        ) -> None:
            if role == "public":
                return responder(self, req, resp, **fields)
            if req.context.principal is None:
                if req.context.get("signon_error") is not None:
                    raise req.context.signon_error
                raise Unauthenticated(
                    "missing credentials: send 'Authorization: Bearer <key>' "
                    "or the appname and appkey headers"
                )
            if role != "login":
                projectid = fields.get("projectid")
                auth.require(req.context.principal, projectid, role)
            return responder(self, req, resp, **fields)

        marked: Any = checked  # mypy does not model attributes set on a function
        marked.role = role
        return checked

    return decorate
