"""Per-request plumbing: a database connection, and who the caller is."""

from engine import auth
from engine.db import database

PUBLIC_PATHS = {"/openapi.json"}


class DatabaseConnection:
    """Open a connection for each request and give it back afterwards."""

    def process_request(self, req, resp):
        database.connect(reuse_if_open=True)

    def process_response(self, req, resp, resource, req_succeeded):
        if not database.is_closed():
            database.close()


class Authentication:
    """Resolve ``Authorization: Bearer`` or OpenC3's ``appname``/``appkey`` into a Principal."""

    def process_request(self, req, resp):
        req.context.principal = None
        if req.path in PUBLIC_PATHS or req.method == "OPTIONS":
            return
        header = req.get_header("Authorization") or ""
        if header.lower().startswith("bearer "):
            req.context.principal = auth.authenticate(header[7:].strip())
        else:
            appkey, appname = req.get_header("appkey"), req.get_header("appname")
            req.context.principal = auth.authenticate(appkey, appname=appname or "")
