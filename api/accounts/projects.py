"""/project: a project's name and status (inactive projects fire no crontabs)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import projects


class Item:
    """One project."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Show a project: id, name, status (active|inactive)."""
        ok(resp, projects.get_project(projectid))

    @requires("write")
    @takes(projects.PROJECT)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Set a project's status (active|inactive), name, or notification webhook
        (an http(s) URL; "" removes it)."""
        ok(resp, projects.update_project(projectid, params(req), req.context.principal.name))


ROUTES = [("/project/{projectid:int}", Item())]
