"""The one response envelope, and the one mapping from errors to HTTP statuses."""

import logging
import sys
from typing import Any

import falcon

from engine import errors
from engine.store import db, faults

log = logging.getLogger(__name__)

STATUS = {
    errors.InvalidInput: falcon.HTTP_400,
    errors.Unauthenticated: falcon.HTTP_401,
    errors.Forbidden: falcon.HTTP_403,
    errors.NotFound: falcon.HTTP_404,
    errors.Conflict: falcon.HTTP_409,
    errors.TooLarge: falcon.HTTP_413,
    errors.Unavailable: falcon.HTTP_503,
    errors.InsufficientStorage: falcon.HTTP_507,
}


def ok(resp: falcon.Response, data: Any = None, **extra: Any) -> None:
    """Answer ``{"stat": true, "data": data}`` plus any top-level ``extra`` keys."""
    body: dict[str, Any] = {"stat": True}
    body.update(extra)
    if data is not None or "info" not in extra:
        body["data"] = data
    resp.media = body


def fail(resp: falcon.Response, status: str | int, info: str | None) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON  # even when a page or a file was being answered
    resp.media = {"stat": False, "info": info}


# OpenC3's tools and JOBX (the appname/appkey callers) check the HTTP status first and retry a
# non-2xx answer (JOBX starting a batch retries it forever), then read `stat`. So a refusal they
# can act on reaches them as OpenC3 sent it: HTTP 200 with stat false.
OPENC3_REFUSALS = (errors.InvalidInput, errors.Forbidden, errors.NotFound, errors.Conflict)


def handle_opsjob_error(
    req: falcon.Request, resp: falcon.Response, ex: errors.OpsjobError, params: dict[str, Any]
) -> None:
    if isinstance(ex, errors.InsufficientStorage):
        # The log file may sit on the full disk: say it on stderr as well.
        print(f"opsjob: {req.method} {req.path}: {ex.info}", file=sys.stderr, flush=True)
    principal = getattr(req.context, "principal", None)
    if principal is not None and principal.via_app and isinstance(ex, OPENC3_REFUSALS):
        return fail(resp, falcon.HTTP_200, ex.info)
    for cls in type(ex).__mro__:
        if cls in STATUS:
            return fail(resp, STATUS[cls], ex.info)
    fail(resp, falcon.HTTP_400, ex.info)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    info = ex.description or ex.title
    if isinstance(ex, falcon.MediaMalformedError):
        info = "body: malformed JSON"
    elif isinstance(ex, falcon.HTTPNotFound) and not ex.description:
        info = f"no route {req.method} {req.path}"
    elif isinstance(ex, falcon.HTTPMethodNotAllowed):
        info = f"method {req.method} is not allowed on {req.path}"
    fail(resp, ex.status, info)
    for name, value in dict(ex.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if db.is_transient(ex):  # the thread's held connection may be dead: the next request opens one
        db.drop_connection()
    known = faults.translate(ex, detail=False)
    if known is not None:
        log.warning("%s %s: %s (%s)", req.method, req.path, known.info, faults.first_line(ex))
        return handle_opsjob_error(req, resp, known, params)
    log.exception("unhandled error on %s %s", req.method, req.path)
    fail(resp, falcon.HTTP_500, "internal error; see the server log")


def install(app: falcon.App) -> None:
    """Register the error handlers on ``app`` (most specific wins)."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.OpsjobError, handle_opsjob_error)
