"""/task: launch runs and read them back."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import steps
from engine.messages import notifications
from engine.run import control, tasks
from engine.store import listing

# A step run on its own: the server sets plugin_type from the route.
DIRECT = {k: v for k, v in steps.COMMON.items() if k != "plugin_type"}


class Collection:
    """Tasks of a project."""

    @requires("read")
    @takes(tasks.LIST, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List tasks, newest first (filters: name, user, status, taskuuid, jobtype,
        time_start, time_end; paging)."""
        ok(resp, tasks.list_tasks(projectid, params(req)))


class Count:
    """Task counts."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count tasks started this month, by status."""
        ok(resp, tasks.count_tasks(projectid))


class TotalCount:
    """Task counts over a date range."""

    @requires("read")
    @takes(tasks.TOTAL)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Count tasks by status that started from time_start to time_end (YYYY-MM-DD)."""
        ok(resp, tasks.total_count(projectid, params(req)))


class Authorization:
    """Whether a job may be run by a JOBX group with the control role."""

    @requires("read")
    @takes(tasks.AUTHORIZATION)
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, group: str, jobname: str
    ) -> None:
        """Answer 1 when the job's `_authorization_` variable is `true` or names the group,
        else 0 (JOBX asks before every grouped run)."""
        ok(resp, tasks.authorization(projectid, {"group": group, "jobname": jobname}))


class RunJobByMonitor:
    """Run a job for a monitoring alert."""

    def _run(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        ok(resp, 1, uuid=tasks.run_job_bymon(projectid, params(req), req.context.principal))

    @requires("write")
    @takes(tasks.BYMON)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Start a job whose monitor trigger is on: jobname, endpoint (variable `ip`), tpl_id,
        exp_id (one must be in the job's mon_ids); refused while the job runs."""
        self._run(req, resp, projectid)

    @requires("write")
    @takes(tasks.BYMON)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Same as GET."""
        self._run(req, resp, projectid)


class Item:
    """One task."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, uuid: str) -> None:
        """Show a task: status, times, reason, variables (YAML text)."""
        ok(resp, tasks.get_task(projectid, uuid))


class Hosts:
    """What each host did in a task."""

    @requires("read")
    @takes(control.HOST_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, uuid: str) -> None:
        """List a task's per-host results in the order they ran (jobs and single steps):
        step, attempt, host, status, rc, times, stdout, stderr. `status` keeps one status;
        `page`/`pagesize` give one page (without either: every row). Next to `data`, `total`
        counts the rows `status` selects and `counts` the task's rows per status."""
        page = control.task_hosts(projectid, uuid, params(req))
        ok(resp, page["rows"], total=page["total"], counts=page["counts"])


class Notifications:
    """Delivery attempts of a task's notifications."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, uuid: str) -> None:
        """List every notification delivery attempt of a task: event, status, channel,
        attempt, outcome (ok|skipped|failed|refused|error), recipients, detail."""
        ok(resp, notifications.attempts(projectid, uuid))


class RunJob:
    """Run a job by uuid."""

    @requires("control")
    @takes(tasks.LAUNCH)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Start a job: jobuuid, variable {name: value}, optional mutex and
        mutex_policy (fail|skip|queue). Needs write, or control when the job's
        `_authorization_` variable is true."""
        ok(resp, 1, uuid=tasks.run_job(projectid, params(req), req.context.principal))


class RunJobByName:
    """Run a job by name, idempotently when the caller gives the task uuid."""

    @requires("write")
    @takes(tasks.BYNAME)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Start a job by name: jobname, variable, optional uuid (12 letters/digits),
        mutex and mutex_policy (fail|skip|queue)."""
        uuid = tasks.run_job_byname(projectid, params(req), req.context.principal)
        if uuid is None:
            ok(resp, info="This task has been successfully created")
        else:
            ok(resp, 1, uuid=uuid)


class RunCmd:
    """Run one command step on its own."""

    @requires("write")
    @takes(DIRECT, steps.DIRECT_CMD, tasks.VARIABLE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Run a script on nodes: name, user, node_type (builtin|group), node_cont,
        scripts_type, scripts_cont, scripts_argv, timeout, variable; rolling and max_fail run
        the nodes in batches."""
        ok(resp, tasks.run_step(projectid, "cmd", params(req), req.context.principal))


class RunScp:
    """Run one file-copy step on its own."""

    @requires("write")
    @takes(DIRECT, steps.DIRECT_SCP, tasks.VARIABLE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Copy files: src_type, src, sp, dst_type, dst, dp, chown, chmod, scp_delete, timeout;
        rolling and max_fail copy to the nodes in batches."""
        ok(resp, tasks.run_step(projectid, "scp", params(req), req.context.principal))


class RunApproval:
    """Ask for an approval on its own."""

    @requires("write")
    @takes(DIRECT, steps.APPROVAL, tasks.VARIABLE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Ask approvers: name, cont, approver, everyone (on|off), relaxed (on|off|nervous),
        timeout (default 60), variable; the task waits until they decide."""
        ok(resp, tasks.run_step(projectid, "approval", params(req), req.context.principal))


class Redo:
    """Run a task again."""

    @requires("write")
    @takes(tasks.REDO)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Start a task again with the same job, variables and mutex: taskuuid."""
        ok(resp, 1, uuid=tasks.redo(projectid, params(req), req.context.principal))


ROUTES = [
    ("/task/{projectid:int}", Collection()),
    ("/task/{projectid:int}/count", Count()),
    ("/task/{projectid:int}/total_count", TotalCount()),
    ("/task/{projectid:int}/authorization/{group}/{jobname}", Authorization()),
    ("/task/{projectid:int}/job/bymon", RunJobByMonitor()),
    ("/task/{projectid:int}/job", RunJob()),
    ("/task/{projectid:int}/job/byname", RunJobByName()),
    ("/task/{projectid:int}/plugin_cmd", RunCmd()),
    ("/task/{projectid:int}/plugin_scp", RunScp()),
    ("/task/{projectid:int}/plugin_approval", RunApproval()),
    ("/task/{projectid:int}/redo", Redo()),
    ("/task/{projectid:int}/{uuid}", Item()),
    ("/task/{projectid:int}/{uuid}/hosts", Hosts()),
    ("/task/{projectid:int}/{uuid}/notify", Notifications()),
]
