"""/variable: a job's variables (defaults, descriptions, dropdown options)."""

from engine import variables

from .access import requires
from .envelope import ok
from .params import params


class Collection:
    """Variables of a project's jobs, addressed by ``jobuuid`` in the body."""

    @requires("write")
    def on_post(self, req, resp, projectid):
        """Create or replace one variable: jobuuid, name, value, describe, option."""
        ok(resp, variables.upsert_variable(projectid, params(req), req.context.principal.name))

    @requires("delete")
    def on_delete(self, req, resp, projectid):
        """Delete one variable: jobuuid, name."""
        ok(resp, variables.delete_variable(projectid, params(req)))


class Bulk:
    """Bulk update."""

    @requires("write")
    def on_post(self, req, resp, projectid):
        """Update many: jobuuid, data [{name, value, describe, option}]; special names are added."""
        ok(resp, variables.update_variables(projectid, params(req), req.context.principal.name))


class OfJob:
    """Variables of one job."""

    @requires("read")
    def on_get(self, req, resp, projectid, jobuuid):
        """List a job's variables sorted by describe (filters: empty, exclude, env)."""
        ok(resp, variables.list_variables(projectid, jobuuid, params(req)))


ROUTES = [
    ("/variable/{projectid:int}", Collection()),
    ("/variable/{projectid:int}/update", Bulk()),
    ("/variable/{projectid:int}/{jobuuid}", OfJob()),
]
