"""Assemble the Falcon app: middleware, error handlers and every route group."""

import falcon

from api.http import envelope
from api.http.params import BoundedInt, ParseParameters
from api.routes.audit import Audit
from api.server import openapi
from api.server.metrics import RequestContext
from api.server.middleware import Authentication, DatabaseConnection
from api.server.routing import GROUPS
from engine import boot
from engine.access import signon
from engine.ops import logformat
from engine.store import schema
from engine.store.db import open_database
from engine.store.settings import Settings


def create_app(settings: Settings) -> falcon.App:
    """Return the WSGI app for ``settings``, with the database bound and its schema current."""
    logformat.configure(settings)
    open_database(settings.database)
    schema.upgrade()
    boot.start(settings)
    signon.configure(settings)
    app = falcon.App(
        middleware=(
            RequestContext(),  # first in, last out: it times the whole request
            DatabaseConnection(),
            Authentication(),
            ParseParameters(),
            Audit(),  # its entry is written while the request's connection is open
        )
    )
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = True
    app.router_options.converters["int"] = BoundedInt
    envelope.install(app)
    for group in GROUPS:
        for template, resource in group.ROUTES:
            app.add_route(template, resource)
    app.add_route("/openapi.json", openapi.Document(GROUPS))
    return app


def get_app() -> falcon.App:
    """Return the app configured from the environment (the gunicorn entry point)."""
    return create_app(Settings.from_env())
