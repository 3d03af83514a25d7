"""/token: upload tokens of a project; a token is shown only masked."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.access import tokens
from engine.store import listing


class Info:
    """The project's tokens, masked (OpenC3 answers GET and POST alike)."""

    @requires("write")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List tokens, masked (filters: create_user, edit_user, dates; paging)."""
        ok(resp, tokens.list_tokens(projectid, params(req)))

    @requires("write")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List tokens, masked (filters: create_user, edit_user, dates; paging)."""
        ok(resp, tokens.list_tokens(projectid, params(req)))


class Collection:
    """Adding a token."""

    @requires("write")
    @takes(tokens.TOKEN)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Add a token: token (8-64 of A-Za-z0-9._-), describe, isjob (boolean), jobname."""
        ok(resp, True, id=tokens.add_token(projectid, params(req), req.context.principal.name))


class Item:
    """One token."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, tokenid: str
    ) -> None:
        """Revoke a token (soft: the same token can be added again)."""
        ok(resp, tokens.delete_token(projectid, tokenid, req.context.principal.name))


ROUTES = [
    ("/token/{projectid:int}", Collection()),
    ("/token/{projectid:int}/info", Info()),
    ("/token/{projectid:int}/{tokenid}", Item()),
]
