"""/crontab: scheduled runs of a project's jobs."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import crontabs
from engine.store import listing


class Collection:
    """Crontabs of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List crontabs (filters: name, create_user, edit_user, date ranges; paging)."""
        ok(resp, crontabs.list_crontabs(projectid, params(req)))

    @requires("write")
    @takes(crontabs.CRONTAB)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create a crontab, switched off: name, jobuuid, cron (5 fields), mutex,
        mutex_policy (fail|skip|queue)."""
        ok(resp, True, id=crontabs.save_crontab(projectid, params(req), req.context.principal.name))


class Count:
    """How many crontabs a project has, by status."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count crontabs switched on (available) and off (unavailable)."""
        ok(resp, crontabs.count_crontabs(projectid))


class Item:
    """One crontab."""

    @requires("read")
    @takes()
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, crontabid: str
    ) -> None:
        """Show a crontab with its next 5 fire times in the schedule time zone (tz)."""
        ok(resp, crontabs.get_crontab(projectid, crontabid))

    @requires("write")
    @takes(crontabs.CRONTAB)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, crontabid: str
    ) -> None:
        """Edit a crontab: name, jobuuid, cron, mutex, mutex_policy (kept when absent)."""
        crontabs.save_crontab(projectid, params(req), req.context.principal.name, crontabid)
        ok(resp, True)

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, crontabid: str
    ) -> None:
        """Delete a crontab (soft: its name gets a deletion suffix)."""
        ok(resp, crontabs.delete_crontab(projectid, crontabid, req.context.principal.name))


class Status:
    """Whether a crontab fires."""

    @requires("write")
    @takes(crontabs.STATUS)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, crontabid: str
    ) -> None:
        """Switch a crontab on or off: status (available|unavailable)."""
        ok(resp, crontabs.set_status(projectid, crontabid, params(req), req.context.principal.name))


ROUTES = [
    ("/crontab/{projectid:int}", Collection()),
    ("/crontab/{projectid:int}/count", Count()),
    ("/crontab/{projectid:int}/{crontabid}", Item()),
    ("/crontab/{projectid:int}/{crontabid}/status", Status()),
]
