"""Per-request plumbing: a database connection, and who the caller is."""

import falcon

from api.server.health import PATHS as PROBES
from engine.access import auth
from engine.store import db


class DatabaseConnection:
    """Give each request its thread's database connection, held from one request to the next."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in PROBES:  # liveness must not depend on the database
            return
        db.hold_connection()


class Authentication:
    """Resolve ``Authorization: Bearer`` or OpenC3's ``appname``/``appkey`` into a Principal.

    No credentials leaves the principal empty (responders decide with ``@requires``);
    wrong credentials are refused at once.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = None
        if req.path in PROBES:
            return
        header = req.get_header("Authorization") or ""
        appkey, appname = req.get_header("appkey"), req.get_header("appname")
        if header.lower().startswith("bearer "):
            req.context.principal = auth.authenticate(header[7:].strip())
        elif appkey or appname:
            req.context.principal = auth.authenticate(appkey, appname=appname or "")
