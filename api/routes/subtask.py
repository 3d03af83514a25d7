"""/subtask: the steps of a task, and the decision/pause controls."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.run import control


class Control:
    """Operate a waiting step."""

    @requires("control")
    @takes(control.CONTROL)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Control a step: taskuuid, subtaskuuid, subtasktype, control next|running|ignore|fail
        (needs write, or control when the job's `_authorization_` variable is true).
        `running` retries the hosts known to have failed; retry_unknown=1 also retries those
        whose outcome is unknown (they may have run the step)."""
        ok(resp, control.control(projectid, params(req), req.context.principal))

    @requires("control")
    @takes(control.CONTROL)
    def on_put(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Release a pause or retry failed hosts: taskuuid, subtaskuuid, subtasktype,
        control (next|running), retry_unknown (0|1: also the hosts of unknown outcome)."""
        ok(
            resp,
            control.control(
                projectid,
                params(req),
                req.context.principal,
                allowed=("next", "running"),
                role="control",
            ),
        )


class OfTask:
    """Steps of one task."""

    @requires("read")
    @takes()
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, taskuuid: str
    ) -> None:
        """List a task's steps in order, with their definitions and latest host results."""
        ok(resp, control.list_subtasks(projectid, taskuuid))


class Item:
    """One step of a task."""

    @requires("read")
    @takes()
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        projectid: int,
        taskuuid: str,
        subtaskuuid: str,
    ) -> None:
        """Show one step of a task with the host results of every attempt."""
        ok(resp, control.get_subtask(projectid, taskuuid, subtaskuuid))


ROUTES = [
    ("/subtask/{projectid:int}", Control()),
    ("/subtask/{projectid:int}/{taskuuid}", OfTask()),
    ("/subtask/{projectid:int}/{taskuuid}/{subtaskuuid}", Item()),
]
