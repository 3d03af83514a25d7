"""/environment: platform-wide key/value settings (reading needs a login, writing admin)."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.catalog import environment

# Every key of the body is a setting; its value is text.
VALUE = {
    "type": "string",
    "maxLength": environment.MAX_VALUE,
    "pattern": f"^(?:{environment.VALUE.pattern})$",
}


class Collection:
    """The whole key/value store."""

    @requires("login")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Show every key and its value as one object."""
        ok(resp, environment.get_all())

    @requires("admin")
    @takes(free=VALUE)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Set keys: every parameter is a key ([A-Za-z0-9]+) and its string value; upserts."""
        ok(resp, environment.set_values(params(req), req.context.principal.name))

    @requires("admin")
    @takes(free={})
    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Delete keys: the parameter names are the keys to delete."""
        ok(resp, environment.delete_keys(list(params(req))))


ROUTES = [("/environment", Collection())]
