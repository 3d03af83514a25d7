"""/nodelist: machines attached to a project by hand (writes need admin)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.machines import nodelist
from engine.store import listing


class Collection:
    """Machines attached to a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING, nodelist.FILTERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List attached machines (filters: name, inip, exip, creator, editor, dates; paging)."""
        ok(resp, nodelist.list_nodes(projectid, params(req)))

    @requires("admin")
    @takes(nodelist.NODE, nested={"hostvars": nodelist.HOSTVARS})
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Attach a machine: name (IPv4, hostname::inip[::exip]), hostvars, credential."""
        ok(resp, True, id=nodelist.add_node(projectid, params(req), req.context.principal.name))


class Item:
    """One attached machine."""

    @requires("admin")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, nodeid: str
    ) -> None:
        """Detach a machine (soft: its name becomes free again)."""
        ok(resp, nodelist.delete_node(projectid, nodeid, req.context.principal.name))


ROUTES = [
    ("/nodelist/{projectid:int}", Collection()),
    ("/nodelist/{projectid:int}/{nodeid}", Item()),
]
