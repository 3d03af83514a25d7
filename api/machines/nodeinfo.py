"""/nodeinfo: the machines of a project (its own, project 0's, and its node groups' hosts)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.machines import nodeinfo


class Machines:
    """The machines of a project."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List the project's machines: id (1..n), name, type, inip, exip."""
        ok(resp, nodeinfo.machines(projectid))


class Check:
    """Whether nodes belong to a project."""

    @requires("read")
    @takes(nodeinfo.CHECK)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Check a comma list of nodes: data is null when all belong, else the others."""
        ok(resp, nodeinfo.check_nodes(projectid, params(req)))


class Count:
    """How many machines a project has."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count the project's machines: {node: n}."""
        ok(resp, nodeinfo.count(projectid))


ROUTES = [
    ("/nodeinfo/{projectid:int}", Machines()),
    ("/nodeinfo/{projectid:int}/check", Check()),
    ("/nodeinfo/{projectid:int}/count", Count()),
]
