"""/userlist: remote OS accounts offered in the step forms of a project."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.access import userlist
from engine.store import listing


class Collection:
    """Accounts of a project, with the global ones."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List the project's and the global accounts (filters: name, users, dates; paging)."""
        ok(resp, userlist.list_accounts(projectid, params(req)))

    @requires("write")
    @takes(userlist.ACCOUNT)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Add an account: username ([A-Za-z0-9_-]+)."""
        ok(resp, True, id=userlist.add_account(projectid, params(req), req.context.principal.name))


class Item:
    """One account of the project."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str
    ) -> None:
        """Delete an account of this project (soft: the username becomes free again)."""
        ok(resp, userlist.delete_account(projectid, id, req.context.principal.name))


ROUTES = [
    ("/userlist/{projectid:int}", Collection()),
    ("/userlist/{projectid:int}/{id}", Item()),
]
