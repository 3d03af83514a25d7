"""/notify: who is told about a project's tasks (`_` means whoever triggered the task)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import notify
from engine.store import listing


class Collection:
    """Notified users of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List notified users (filters: name on user, create_user, edit_user, dates; paging)."""
        ok(resp, notify.list_notify(projectid, params(req)))

    @requires("write")
    @takes(notify.NOTIFY)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Add a notified user: user (A-Za-z0-9.@_-; `_` is whoever triggered the task)."""
        ok(resp, True, id=notify.add_notify(projectid, params(req), req.context.principal.name))


class Item:
    """One notified user."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, notifyid: str
    ) -> None:
        """Stop notifying a user (soft: the user can be added again)."""
        ok(resp, notify.delete_notify(projectid, notifyid, req.context.principal.name))


ROUTES = [
    ("/notify/{projectid:int}", Collection()),
    ("/notify/{projectid:int}/{notifyid}", Item()),
]
