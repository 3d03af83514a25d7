"""/jobs: jobs and their ordered steps."""

import falcon

from api.http.access import requires
from api.http.declare import object_schema, takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import jobs, steps
from engine.store import listing

# Each item of `data` is a cmd, scp or playbook step (plugin_type says which).
STEP = {
    "anyOf": [
        object_schema({**steps.COMMON, **steps.CMD}),
        object_schema({**steps.COMMON, **steps.SCP}),
        object_schema({**steps.COMMON, **steps.PLAYBOOK}),
    ]
}


class Collection:
    """Jobs of a project."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List permanent jobs (filters: name, create_user, edit_user, date ranges; paging)."""
        ok(resp, jobs.list_jobs(projectid, params(req)))

    @requires("write")
    @takes(jobs.JOB, nested={"data": STEP})
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create a job: name, permanent, data (ordered cmd/scp/playbook steps)."""
        ok(
            resp,
            True,
            uuid=jobs.create_job(
                projectid,
                params(req),
                req.context.principal.name,
                admin=req.context.principal.admin,
            ),
        )


class Count:
    """Number of jobs."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count permanent jobs."""
        ok(resp, jobs.count_jobs(projectid))


class Item:
    """One job, by uuid (or ``byname?name=`` for GET)."""

    @requires("read")
    @takes(jobs.BYNAME)
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """Show a job with its steps in order; `/jobs/{projectid}/byname?name=` finds it by name."""
        ok(resp, jobs.get_job(projectid, jobuuid, name=req.get_param("name")))

    @requires("write")
    @takes(jobs.JOB, nested={"data": STEP})
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """Replace a job's name and steps (same body as create)."""
        ok(
            resp,
            jobs.edit_job(
                projectid,
                jobuuid,
                params(req),
                req.context.principal.name,
                admin=req.context.principal.admin,
            ),
            uuid=jobuuid,
        )

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """Delete a job (soft: its name becomes free again)."""
        ok(resp, jobs.delete_job(projectid, jobuuid, req.context.principal.name))


class ByName:
    """One job, by name."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """Delete a job by its name (the path segment holds the name)."""
        ok(resp, jobs.delete_job(projectid, jobuuid, req.context.principal.name, byname=True))


class Copy:
    """Copy a job by name."""

    @requires("write")
    @takes(jobs.COPY)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Copy a job: fromname, toname, optional fromprojectid/toprojectid."""
        ok(resp, True, uuid=jobs.copy_job(projectid, params(req), req.context.principal))


ROUTES = [
    ("/jobs/{projectid:int}", Collection()),
    ("/jobs/{projectid:int}/count", Count()),
    ("/jobs/{projectid:int}/copy/byname", Copy()),
    ("/jobs/{projectid:int}/{jobuuid}", Item()),
    ("/jobs/{projectid:int}/{jobuuid}/byname", ByName()),
]
