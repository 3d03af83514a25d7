"""Each request's id and latency, and GET /metrics (Prometheus text, an admin key)."""

import re
import time
import uuid

import falcon

from api.http.access import requires
from api.http.declare import takes
from engine.insight import metrics
from engine.ops import logformat

HEADER = "X-Request-Id"
SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RequestContext:
    """Give each request an id (a sane incoming ``X-Request-Id``, else a new one) that its log
    lines carry and its reply echoes, and time it by route template and status."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = req.get_header(HEADER) or ""
        rid = given if SANE_ID.fullmatch(given) else uuid.uuid4().hex
        req.context.request_id = rid
        req.context.request_token = logformat.request_id.set(rid)
        req.context.request_started = time.perf_counter()
        resp.set_header(HEADER, rid)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header(HEADER, str(req.context.get("request_id", "")))
        started = req.context.get("request_started")
        if started is not None:
            metrics.observe_request(
                req.method,
                req.uri_template or "unmatched",
                resp.status_code,
                time.perf_counter() - started,
            )
        token = req.context.get("request_token")
        if token is not None:
            logformat.request_id.reset(token)


class Metrics:
    """Prometheus metrics of this machine's opsjob processes."""

    @requires("admin")
    @takes(produces=("text/plain",))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer every metric in the Prometheus text format (an admin key is required)."""
        resp.content_type, resp.text = metrics.scrape()


ROUTES = [("/metrics", Metrics())]
