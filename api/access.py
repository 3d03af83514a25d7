"""The role a responder needs, declared once per responder and checked before it runs."""

import functools

from engine import auth


def requires(role):
    """Decorate a responder so it runs only for callers holding ``role`` on ``projectid``.

    ``role`` is one of read, control, write, delete, admin, or ``login`` (any known caller).
    """

    def decorate(responder):
        @functools.wraps(responder)
        def checked(self, req, resp, **fields):
            if role != "login":
                projectid = fields.get("projectid")
                auth.require(req.context.principal, projectid, role)
            return responder(self, req, resp, **fields)

        checked.role = role
        return checked

    return decorate
