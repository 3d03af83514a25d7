"""/third: the interface for external orchestrators. The project is the ``project_id``
parameter, so every responder checks the caller's role on it in the engine."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.run import third


class JobNames:
    """Jobs a caller can start."""

    @requires("login")
    @takes(third.PROJECT)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the permanent jobs of project_id (needs read on it)."""
        ok(resp, third.job_names(params(req), req.context.principal))


class JobVariables:
    """Variables a caller has to fill in."""

    @requires("login")
    @takes(third.VARIABLES)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the empty-valued variables of a job: project_id, jobname, exclude (needs read)."""
        ok(resp, third.job_variables(params(req), req.context.principal))


class DryRun:
    """Check a run without starting it."""

    @requires("login")
    @takes(third.INVOKE, nested={"params": third.JOB_PARAMS})
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check a run: project_id, uuid, retry_count, params {jobname, variable}; answer the
        plan (steps, nodes, arguments) or a 400 listing what would stop it (needs write)."""
        report = third.dry_run(params(req), req.context.principal)
        if report["ok"]:
            ok(resp, report["plan"], uuid=report["uuid"], msg=report["msg"])
            return
        resp.status = falcon.HTTP_400
        resp.media = {
            "stat": False,
            "info": report["msg"],
            "uuid": report["uuid"],
            "data": report["plan"],
        }


class Invoke:
    """Start a run once."""

    @requires("login")
    @takes(third.INVOKE, nested={"params": third.JOB_PARAMS})
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Start a job once per uuid and retry_count: project_id, uuid, retry_count,
        params {jobname, variable} (needs write)."""
        uuid = third.invoke(params(req), req.context.principal)
        if uuid is None:
            ok(resp, info="This task has been successfully created")
        else:
            ok(resp, 1, uuid=uuid)


class Query:
    """A run's state."""

    @requires("login")
    @takes(third.LOOKUP)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Show a run: status complete|fail|running, msg, progress, link, ctrl while it
        waits: uuid, retry_count, optional project_id (needs read on the task's project)."""
        ok(resp, None, **third.query(params(req), req.context.principal))


class Stop:
    """Stop a run."""

    @requires("login")
    @takes(third.LOOKUP)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Stop a run: uuid, retry_count, optional project_id (needs write on the task's
        project); stat true once it stopped."""
        uuid, info = third.stop(params(req), req.context.principal)
        ok(resp, info=info, uuid=uuid)


ROUTES = [
    ("/third/option/jobname", JobNames()),
    ("/third/option/variable", JobVariables()),
    ("/third/interface/dry-run", DryRun()),
    ("/third/interface/invoke", Invoke()),
    ("/third/interface/query", Query()),
    ("/third/interface/stop", Stop()),
]
