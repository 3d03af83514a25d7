"""/healthz and /readyz: probes for load balancers and orchestrators (no key needed)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from engine.ops import readiness

PATHS = ("/healthz", "/readyz")  # served without a database connection or authentication


class Health:
    """Liveness."""

    @requires("public")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 while the process serves requests; touches neither database nor queue."""
        ok(resp, {"status": "alive"})


class Ready:
    """Readiness."""

    @requires("public")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check the database and the queue (a few seconds each at most): 200 when both answer,
        else 503 whose `info` names what failed."""
        checks = readiness.check()
        failed = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
        if failed:
            resp.status = falcon.HTTP_503
            resp.media = {"stat": False, "info": "not ready: " + "; ".join(failed), "data": checks}
            return
        ok(resp, checks)


ROUTES = [("/healthz", Health()), ("/readyz", Ready())]
