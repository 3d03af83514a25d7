"""/nodegroup: named node groups of a project, resolved by a plugin."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.machines import nodegroups
from engine.store import listing


class Collection:
    """Node groups of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING, nodegroups.LIST_FILTERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List node groups and jobs using each (filters: name, plugin, jobname, users, dates)."""
        ok(resp, nodegroups.list_nodegroups(projectid, params(req)))

    @requires("write")
    @takes(nodegroups.NODEGROUP)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create a node group: name, plugin (an inventory plugin), params, credential."""
        principal = req.context.principal
        ok(
            resp,
            True,
            id=nodegroups.save_nodegroup(
                projectid, params(req), principal.name, admin=principal.admin
            ),
        )


class Item:
    """One node group."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str) -> None:
        """Show a node group with its params."""
        ok(resp, nodegroups.get_nodegroup(projectid, id))

    @requires("write")
    @takes(nodegroups.NODEGROUP)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str) -> None:
        """Edit a node group: name, plugin, params, credential."""
        principal = req.context.principal
        nodegroups.save_nodegroup(projectid, params(req), principal.name, id, admin=principal.admin)
        ok(resp, True)

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str
    ) -> None:
        """Delete a node group (soft: its name becomes free again)."""
        ok(resp, nodegroups.delete_nodegroup(projectid, id, req.context.principal.name))


class Nodes:
    """The hosts a node group resolves to."""

    @requires("read")
    @takes(nodegroups.NODELIST)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, id: str) -> None:
        """Resolve a node group to its host names (hostvars=1: with connection variables)."""
        ok(resp, nodegroups.nodelist(projectid, id, params(req)))


ROUTES = [
    ("/nodegroup/{projectid:int}", Collection()),
    ("/nodegroup/{projectid:int}/{id}", Item()),
    ("/nodegroup/{projectid:int}/{id}/nodelist", Nodes()),
]
