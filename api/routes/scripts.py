"""/scripts: stored scripts of a project (and the global ones)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import scripts
from engine.store import listing


class Collection:
    """Scripts of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING, scripts.LIST_FILTERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List scripts (filters: name, type, create_user, edit_user, date ranges; paging)."""
        ok(resp, scripts.list_scripts(projectid, params(req)))

    @requires("write")
    @takes(scripts.SCRIPT)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create a script: name, type (shell|perl|python|php|auto), cont."""
        ok(resp, True, id=scripts.save_script(projectid, params(req), req.context.principal.name))


class Item:
    """One script."""

    @requires("read")
    @takes()
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, scriptsid: str
    ) -> None:
        """Show a script with its content."""
        ok(resp, scripts.get_script(projectid, scriptsid))

    @requires("write")
    @takes(scripts.SCRIPT)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, scriptsid: str
    ) -> None:
        """Replace a script of this project: name, type, cont."""
        scripts.save_script(projectid, params(req), req.context.principal.name, scriptsid)
        ok(resp, True)

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, scriptsid: str
    ) -> None:
        """Delete a script (soft: its name becomes free again)."""
        ok(resp, scripts.delete_script(projectid, scriptsid, req.context.principal.name))


ROUTES = [
    ("/scripts/{projectid:int}", Collection()),
    ("/scripts/{projectid:int}/{scriptsid}", Item()),
]
