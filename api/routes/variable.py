"""/variable: a job's variables (defaults, descriptions, dropdown options)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import jobs, variables, varlinks


class Collection:
    """Variables of a project's jobs, addressed by ``jobuuid`` in the body."""

    @requires("write")
    @takes(variables.UPSERT)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Create or replace one variable: jobuuid, name, value, describe, option."""
        ok(resp, variables.upsert_variable(projectid, params(req), req.context.principal.name))

    @requires("delete")
    @takes(variables.DELETE)
    def on_delete(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Delete one variable: jobuuid, name."""
        ok(resp, variables.delete_variable(projectid, params(req)))


class Bulk:
    """Bulk update."""

    @requires("write")
    @takes(variables.BULK, nested={"data": variables.BULK_ITEM})
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Update many: jobuuid, data [{name, value, describe, option}]; special names are added."""
        variables.update_variables(projectid, params(req), req.context.principal.name)
        ok(resp, None)


class OfJob:
    """Variables of one job."""

    @requires("read")
    @takes(variables.LIST)
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """List a job's variables sorted by describe (filters: empty, exclude, env)."""
        ok(resp, variables.list_variables(projectid, jobuuid, params(req)))


class MonitorTrigger:
    """A job's monitoring trigger, as the job page saves it."""

    @requires("write")
    @takes(jobs.MON)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Set a job's monitoring trigger: jobuuid, status (mon_status, 0/1 or a boolean),
        mon_ids (the ids `POST /task/{projectid}/job/bymon` accepts)."""
        ok(resp, jobs.update_mon(projectid, params(req), req.context.principal.name))


class Token:
    """The link token of one variable."""

    @requires("admin")
    @takes(varlinks.TOKEN)
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, jobuuid: str
    ) -> None:
        """Answer the token that lets another system set variable `name` of the job, without
        a key, through `/variable/update/...` (admin)."""
        ok(resp, varlinks.token(projectid, jobuuid, params(req)))


class UpdateByToken:
    """Set a variable through its token (no key)."""

    def _update(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        projectid: int,
        jobuuid: str,
        token: str,
        name: str,
        option: str,
    ) -> None:
        fields = {**params(req), "jobuuid": jobuuid, "token": token, "name": name}
        ok(resp, varlinks.update(projectid, {**fields, "option": option}))

    @requires("public")
    @takes(varlinks.UPDATE, answers=(403,))
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        projectid: int,
        jobuuid: str,
        token: str,
        name: str,
        option: str,
    ) -> None:
        """Replace the variable's dropdown `option` list (its value with `updatevalue=1`);
        the token from `/variable/{projectid}/{jobuuid}/token` is the only credential."""
        self._update(req, resp, projectid, jobuuid, token, name, option)

    @requires("public")
    @takes(varlinks.UPDATE, answers=(403,))
    def on_post(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        projectid: int,
        jobuuid: str,
        token: str,
        name: str,
        option: str,
    ) -> None:
        """Same as GET."""
        self._update(req, resp, projectid, jobuuid, token, name, option)


class ById:
    """Variables of a job addressed by its numeric id."""

    @requires("login")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, jobid: int) -> None:
        """List the variables of the job with this id (read on its project)."""
        ok(resp, varlinks.list_by_id(jobid, req.context.principal))

    @requires("login")
    @takes(varlinks.BYID)
    def on_delete(self, req: falcon.Request, resp: falcon.Response, jobid: int) -> None:
        """Delete variable `name` of the job with this id (delete on its project); answers
        how many were deleted."""
        ok(resp, varlinks.delete_by_id(jobid, params(req), req.context.principal))


ROUTES = [
    ("/variable/{projectid:int}", Collection()),
    ("/variable/{projectid:int}/update", Bulk()),
    ("/variable/{projectid:int}/update_mon", MonitorTrigger()),
    ("/variable/byid/{jobid:int}", ById()),
    ("/variable/update/{projectid:int}/{jobuuid}/{token}/{name}/{option}", UpdateByToken()),
    ("/variable/{projectid:int}/{jobuuid}", OfJob()),
    ("/variable/{projectid:int}/{jobuuid}/token", Token()),
]
