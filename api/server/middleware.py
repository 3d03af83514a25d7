"""Per-request plumbing: a database connection, and who the caller is."""

import falcon

from api.server.health import PATHS as PROBES
from engine.access import auth, signon
from engine.errors import OpsjobError
from engine.store import db


class DatabaseConnection:
    """Give each request its thread's database connection, held from one request to the next."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in PROBES:  # liveness must not depend on the database
            return
        db.hold_connection()


class Authentication:
    """Resolve ``Authorization: Bearer`` or OpenC3's ``appname``/``appkey`` into a Principal;
    without a key, a sign-on (a trusted proxy's user header, OpenC3's cookie), if configured.

    No credentials leaves the principal empty (responders decide with ``@requires``);
    wrong keys are refused at once. A sign-on that fails is kept as ``req.context.signon_error``
    and raised only where a route needs a caller, so a stale cookie never breaks a public route.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = None
        req.context.signon_error = None
        if req.path in PROBES:
            return
        header = req.get_header("Authorization") or ""
        appkey, appname = req.get_header("appkey"), req.get_header("appname")
        if header.lower().startswith("bearer "):
            req.context.principal = auth.authenticate(header[7:].strip())
        elif appkey or appname:
            req.context.principal = auth.authenticate(appkey, appname=appname or "")
        elif signon.config().enabled:
            headers = {name.lower(): value for name, value in req.headers.items()}
            try:
                req.context.principal = signon.principal(
                    req.remote_addr or "", headers, req.cookies
                )
            except OpsjobError as e:
                req.context.signon_error = e
